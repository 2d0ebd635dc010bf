"""rhocore targets: the total electron density and single-orbital densities.

Each target is a weight function W(a) over Kohn-Sham orbitals (see :mod:`rhocore.target`):
``density`` weighs every orbital by its occupation, ``homo``/``lumo``/``orbital`` put
unit weight on one orbital (or one degenerate shell), so their fields integrate to one.
"""

from rhocore_targets.density import DensityTarget
from rhocore_targets.frontier import HomoTarget, LumoTarget
from rhocore_targets.orbital import OrbitalTarget

__version__ = "0.1.0"

__all__ = ["DensityTarget", "HomoTarget", "LumoTarget", "OrbitalTarget"]
