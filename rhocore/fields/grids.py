"""Fields on grids and the accuracy metrics of predicted coefficients.

Plain functions over arrays: a field is values on points (a.u.), a grid carries its
quadrature weights in bohr^3, a metric matrix S measures coefficient errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import ase
import ase.io.cube
import numpy as np

from rhocore.qc.backend import IntegrationGrid, QCBackend


def nmae_percent(predicted: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> float:
    """100 * integral |pred - ref| / integral |ref| on a quadrature grid."""
    denominator = float(np.sum(weights * np.abs(reference)))
    if denominator == 0.0:
        raise ValueError("the reference field is zero on the grid: NMAE is undefined")
    return 100.0 * float(np.sum(weights * np.abs(predicted - reference))) / denominator


def metric_error_percent(predicted: np.ndarray, reference: np.ndarray, metric: np.ndarray) -> float:
    """Relative error in the metric of the fit: 100 * sqrt(dd^T S dd / d_ref^T S d_ref)."""
    delta = np.asarray(predicted) - np.asarray(reference)
    return 100.0 * float(
        np.sqrt(max(delta @ metric @ delta, 0.0) / (reference @ metric @ reference))
    )


@dataclass
class StructureMetrics:
    """Accuracy of one predicted field; grid metrics are None when unavailable."""

    index: int
    metric_error_percent: float
    nmae_percent_vs_ri: float | None = None
    nmae_percent_vs_dft: float | None = None
    ri_floor_nmae_percent: float | None = None
    predicted_integral: float | None = None
    reference_integral: float | None = None
    electron_count_error_percent: float | None = None
    #: errors of derived quantities (rhocore.qc.properties.property_errors) vs DFT, with
    #: ``ri_floor_`` and ``vs_ri_`` variants: the RI reference vs DFT, prediction vs RI
    properties: dict[str, float] | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready values."""
        return asdict(self)


def grid_metrics(
    backend: QCBackend,
    atoms: ase.Atoms,
    predicted: np.ndarray,
    reference: np.ndarray,
    field_state: dict[str, np.ndarray],
    grid: IntegrationGrid | None = None,
) -> dict[str, float]:
    """NMAE of the prediction vs the RI reference and vs the exact field, and the RI floor."""
    grid = grid or backend.integration_grid(atoms)
    rho_pred = backend.evaluate_fitted(atoms, predicted, grid.points)
    rho_ri = backend.evaluate_fitted(atoms, reference, grid.points)
    rho_exact = backend.evaluate_exact(atoms, field_state, grid.points)
    return {
        "nmae_percent_vs_ri": nmae_percent(rho_pred, rho_ri, grid.weights),
        "nmae_percent_vs_dft": nmae_percent(rho_pred, rho_exact, grid.weights),
        "ri_floor_nmae_percent": nmae_percent(rho_ri, rho_exact, grid.weights),
    }


def cube_grid(atoms: ase.Atoms, spacing: float = 0.2, padding: float = 4.0) -> tuple:
    """A regular grid around ``atoms`` (or over its cell if periodic), in angstrom.

    Returns (origin, axes (3x3, one step vector per row), shape, points (N, 3)).
    """
    if atoms.pbc.any():
        origin = np.zeros(3)
        lengths = atoms.cell.lengths()
        shape = tuple(int(np.ceil(length / spacing)) for length in lengths)
        axes = np.array(atoms.cell) / np.array(shape)[:, None]
    else:
        low = atoms.positions.min(axis=0) - padding
        high = atoms.positions.max(axis=0) + padding
        shape = tuple(int(np.ceil(extent / spacing)) + 1 for extent in high - low)
        origin = low
        axes = np.diag([spacing] * 3)
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    points = origin + index.reshape(-1, 3) @ axes
    return origin, axes, shape, points


def write_cube(
    path: Path,
    atoms: ase.Atoms,
    backend: QCBackend,
    coefficients: np.ndarray,
    spacing: float = 0.2,
    *,
    potential: bool = False,
) -> None:
    """Write the fitted field of ``coefficients`` to a Gaussian cube file (values in a.u.).

    With ``potential`` the values are the electrostatic potential of the nuclei and the
    fitted density instead (hartree/e; infinite on a nucleus that falls on a grid point).
    """
    origin, axes, shape, points = cube_grid(atoms, spacing)
    evaluate = backend.electrostatic_potential if potential else backend.evaluate_fitted
    values = evaluate(atoms, coefficients, points).reshape(shape)
    framed = atoms.copy()
    framed.cell = axes * np.array(shape)[:, None]
    with open(path, "w") as handle:
        ase.io.cube.write_cube(handle, framed, data=values, origin=origin)
