"""The backend and target that made a dataset (or a model's training data), from its metadata.

Workflows ask what the data's plugins can do through their typed attributes
(:data:`rhocore.qc.backend.CAPABILITIES`, :class:`rhocore.qc.target.Target`), never by a
plugin's name or option names. A plugin that is not installed gives the registry's error,
which names the distribution that provides it.
"""

from __future__ import annotations

from rhocore.data.dataset import DatasetMetadata
from rhocore.errors import InputError
from rhocore.plugins.registry import Registry, get_registry
from rhocore.qc.backend import CAPABILITIES, Capability, QCBackend
from rhocore.qc.target import Target


class MissingCapabilityError(InputError):
    """The backend that made the data cannot do what a command asks of it."""


def backend_with(
    metadata: DatasetMetadata,
    capability: Capability,
    what: str,
    registry: Registry | None = None,
) -> QCBackend:
    """The backend that made the data, built with its stored options, if it has ``capability``.

    ``what`` names what needs it and how to do without (e.g. 'cube files (predict without
    --cube-dir)'); it starts the error message.
    """
    cls = (registry or get_registry()).get("backend", metadata.backend_name)
    if not getattr(cls, capability):
        raise MissingCapabilityError(
            f"{what}: backend '{metadata.backend_name}' that made the data cannot "
            f"{CAPABILITIES[capability]}"
        )
    return cls(metadata.backend_options)


def data_target(metadata: DatasetMetadata, registry: Registry | None = None) -> Target:
    """The target whose field the data hold, built with its stored options."""
    cls = (registry or get_registry()).get("target", metadata.target_name)
    return cls(metadata.target_options)
