"""rhocore: learn electronic-structure fields of molecules and materials from structure."""

from rhocore.plugins.registry import get_plugin_manager, get_registry, hookimpl
from rhocore.qc.backend import IntegrationGrid, OrbitalData, QCBackend, RIFit, SCFResult
from rhocore.qc.basis import BasisLayout
from rhocore.qc.target import Target

__version__ = "0.1.0"

__all__ = [
    "BasisLayout",
    "IntegrationGrid",
    "OrbitalData",
    "QCBackend",
    "RIFit",
    "SCFResult",
    "Target",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
]
