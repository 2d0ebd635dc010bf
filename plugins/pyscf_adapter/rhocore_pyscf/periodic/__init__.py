"""Periodic cells: pyscf.pbc Kohn-Sham, RI fits of cell fields and the relative metric."""
