"""The public API for plugins: everything a backend, target or model plugin may import.

Plugin distributions (rhocore-pyscf, rhocore-aims, rhocore-targets, and yours) import
rhocore only from here and from :mod:`rhocore.testing` in their tests; an import-linter
contract checks it. Names leave this list only with a deprecation.

The model-file names load torch and metatomic, so they are imported on first use: a
backend plugin that never touches a model (a QC code's worker process) starts without them.
"""

import importlib
from typing import TYPE_CHECKING, Any

from rhocore import __version__
from rhocore.data.dataset import DatasetEntry, DatasetMetadata, DatasetWriter
from rhocore.data.structure_files import StructureError
from rhocore.errors import InputError, MissingFileError, RhocoreError
from rhocore.parallel.progress import progress_bar
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import Registry, get_plugin_manager, get_registry
from rhocore.qc.backend import (
    BackendSetupError,
    IntegrationGrid,
    MetricKind,
    OrbitalData,
    QCBackend,
    RIFit,
    SCFResult,
)
from rhocore.qc.basis import BasisLayout, SignedPermutation
from rhocore.qc.properties import PropertiesNotAvailableError, parse_property_names
from rhocore.qc.rifit import IllConditionedMetricError, solve_fit
from rhocore.qc.rotations import real_spherical_harmonics
from rhocore.qc.target import EnergyReference, EnergyWindow, Target
from rhocore.qc.units import BOHR_IN_ANGSTROM

if TYPE_CHECKING:
    from rhocore.models.file import ModelFile, checked_prediction, load_model_file

#: Names imported on first use, and their modules.
LAZY = {
    name: "rhocore.models.file" for name in ("ModelFile", "checked_prediction", "load_model_file")
}


def __getattr__(name: str) -> Any:
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'rhocore.api' has no attribute '{name}'")


__all__ = [
    "BOHR_IN_ANGSTROM",
    "BackendSetupError",
    "BasisLayout",
    "DatasetEntry",
    "DatasetMetadata",
    "DatasetWriter",
    "EnergyReference",
    "EnergyWindow",
    "IllConditionedMetricError",
    "InputError",
    "IntegrationGrid",
    "MetricKind",
    "MissingFileError",
    "ModelFile",
    "OrbitalData",
    "PluginOptions",
    "PropertiesNotAvailableError",
    "QCBackend",
    "RIFit",
    "Registry",
    "RhocoreError",
    "SCFResult",
    "SignedPermutation",
    "StructureError",
    "Target",
    "__version__",
    "checked_prediction",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "load_model_file",
    "parse_property_names",
    "progress_bar",
    "real_spherical_harmonics",
    "solve_fit",
]
