"""The field an STM image is made of: a structure with RI coefficients or an exact field.

The backend that made the data puts the field on the cell grid, from just below the
topmost atom to the middle of the vacuum above it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np

from rhocore.data.dataset import Dataset, DatasetMetadata
from rhocore.data.provenance import backend_with
from rhocore.errors import InputError
from rhocore.plugins.registry import Registry
from rhocore.qc.backend import QCBackend
from rhocore.stm.images import CellGrid, field_on_cell_grid, vacuum_z_range
from rhocore.stm.settings import StmSettings

log = logging.getLogger(__name__)

#: How far (angstrom) below the topmost atom the field is evaluated: the tip dips into
#: hollows a little, never this deep at useful isovalues.
DEPTH_BELOW_TOP = 2.0


@dataclass
class FieldSource:
    """A structure and the field to image: RI coefficients, or an exact field's state."""

    atoms: ase.Atoms
    metadata: DatasetMetadata
    description: str
    coefficients: np.ndarray | None = None
    field_state: dict[str, np.ndarray] | None = None

    def evaluator(self, backend: QCBackend) -> Callable[[np.ndarray], np.ndarray]:
        """``points (angstrom) -> field (bohr^-3)`` through ``backend``."""
        if self.field_state is not None:
            state = self.field_state
            return lambda points: backend.evaluate_exact(self.atoms, state, points)
        assert self.coefficients is not None
        coefficients = self.coefficients
        return lambda points: backend.evaluate_fitted(self.atoms, coefficients, points)


def dataset_source(path: Path, index: int, exact: bool = False) -> FieldSource:
    """Entry ``index`` of the dataset at ``path``: its RI reference, or its exact field."""
    dataset = Dataset(path)
    entry = dataset.entry(index)
    if entry.fit is None:
        raise InputError(f"entry {index} of {path} failed: {entry.reason}")
    kind = "exact field" if exact else "RI reference"
    return FieldSource(
        atoms=entry.atoms,
        metadata=dataset.metadata,
        description=f"{kind} of entry {index} of {path.name}",
        coefficients=None if exact else entry.fit.coefficients,
        field_state=entry.fit.field_state if exact else None,
    )


def field_grid(
    source: FieldSource, settings: StmSettings, registry: Registry | None, progress: bool
) -> CellGrid:
    """The source's field on the cell grid from below the surface to mid-vacuum."""
    backend = backend_with(source.metadata, "evaluates_fields", "STM images", registry)
    evaluate = source.evaluator(backend)
    z_range = vacuum_z_range(source.atoms, DEPTH_BELOW_TOP)
    log.info("evaluating the %s on the cell grid", source.description)
    return field_on_cell_grid(source.atoms, evaluate, settings.spacing, z_range, progress=progress)
