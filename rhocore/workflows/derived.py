"""The backend of a model's or dataset's metadata, for derived quantities and SCF guesses.

Derived quantities (:mod:`rhocore.qc.properties`) and SCF guesses are quantities of a total
electron density: other fields (an orbital density, an LDOS) are refused here with the
reason, before any prediction runs.
"""

from __future__ import annotations

from rhocore.data.dataset import DatasetMetadata
from rhocore.plugins.registry import PluginError, Registry, get_registry
from rhocore.qc.backend import QCBackend


def is_total_density(target_name: str, registry: Registry) -> bool:
    """Whether the target's field integrates to the electron count (the total density)."""
    try:
        return bool(registry.get("target", target_name).is_total_density)
    except PluginError:
        return target_name == "density"


def density_backend(
    metadata: DatasetMetadata, what: str, registry: Registry | None = None
) -> QCBackend:
    """The backend that made the data, for ``what`` (e.g. 'derived quantities').

    Refuses fields other than the total density, and backends that are not installed.
    """
    registry = registry or get_registry()
    if not is_total_density(metadata.target_name, registry):
        raise ValueError(
            f"{what} are computed from the total electron density, but the model was "
            f"trained on the '{metadata.target_name}' field; use a model of the 'density' "
            "target"
        )
    return registry.get("backend", metadata.backend_name)(metadata.backend_options)
