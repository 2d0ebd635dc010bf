"""Molecules: PySCF molecules, Kohn-Sham SCF, RI fits, fields on grids and derived quantities."""
