"""The backend of a model's or dataset's metadata, for derived quantities and SCF guesses.

Derived quantities (:mod:`rhocore.qc.properties`) and SCF guesses are quantities of a total
electron density: other fields (an orbital density, an LDOS) are refused here with the
reason, before any prediction runs.
"""

from __future__ import annotations

from rhocore.data.dataset import DatasetMetadata
from rhocore.data.provenance import backend_with, data_target
from rhocore.errors import InputError
from rhocore.plugins.registry import Registry
from rhocore.qc.backend import Capability, QCBackend


def density_backend(
    metadata: DatasetMetadata,
    capability: Capability,
    what: str,
    registry: Registry | None = None,
) -> QCBackend:
    """The backend that made the data, with ``capability``, for ``what`` (e.g. 'derived
    quantities'). Refuses fields other than the total density."""
    if not data_target(metadata, registry).is_total_density:
        raise InputError(
            f"{what} are computed from the total electron density, but the model was "
            f"trained on the '{metadata.target_name}' field; use a model of a total-density "
            "target"
        )
    return backend_with(metadata, capability, what, registry)
