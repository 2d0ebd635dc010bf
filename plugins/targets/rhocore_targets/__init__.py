"""rhocore targets: the total electron density, single-orbital densities, LDOS and ILDOS.

Each target is a weight function W(a) over Kohn-Sham orbitals (see :mod:`rhocore.qc.target`):
``density`` weighs every orbital by its occupation, ``homo``/``lumo``/``orbital`` put
unit weight on one orbital (or one degenerate shell), so their fields integrate to one;
``ldos``/``ildos`` weigh each orbital by its Gaussian-broadened level at one energy or
within an energy window.
"""

from rhocore_targets.density import DensityTarget
from rhocore_targets.frontier import HomoTarget, LumoTarget
from rhocore_targets.orbital import OrbitalTarget
from rhocore_targets.window import IldosTarget, LdosTarget

__version__ = "0.1.0"

__all__ = [
    "DensityTarget",
    "HomoTarget",
    "IldosTarget",
    "LdosTarget",
    "LumoTarget",
    "OrbitalTarget",
]
