"""rhocore QC backend on PySCF: Kohn-Sham SCF of molecules and cells, RI fits of their fields."""

from rhocore_pyscf.backend import PySCFBackend
from rhocore_pyscf.options import PySCFOptions

__all__ = ["PySCFBackend", "PySCFOptions"]
