"""FHI-aims' integration grid and fields tabulated on it.

With ``ri_full_output`` FHI-aims writes text files of rows ``x y z value``, one row per
point of its integration grid, in atomic units (FHI-aims' internal units, written without
conversion):

* ``partition_tab.out``: value = quadrature weight (bohr^3), so that
  sum(weight * rho) is the integral of rho (the electron count for rho_scf);
* ``rho_scf.out`` (SCF density), ``rho_rebuilt_ri.out`` (density rebuilt from the RI
  coefficients); ``rho_ref.out`` and ``rho_ri.out`` / ``rho_rebuilt.out`` from the
  ``ri_fit_*`` builds: value = the field (bohr^-3 for densities).

The files need not list the points in the same order: fields are matched to the grid by
their coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhocore.api import BOHR_IN_ANGSTROM, IntegrationGrid
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.ri_files import read_text_table

#: Largest coordinate difference (bohr) between a field point and its grid point.
POINT_TOLERANCE = 1e-8


@dataclass(frozen=True)
class GridField:
    """A field on FHI-aims' grid: points (N, 3) in angstrom, values (N,) as written."""

    points: np.ndarray
    values: np.ndarray
    path: Path


def parse_partition_tab(path: Path | str) -> IntegrationGrid:
    """``partition_tab.out`` as a grid: points in angstrom, weights in bohr^3."""
    rows = read_text_table(path, 4)
    return IntegrationGrid(points=rows[:, :3] * BOHR_IN_ANGSTROM, weights=rows[:, 3])


def parse_field_on_grid(path: Path | str) -> GridField:
    """A field file such as ``rho_scf.out``: points in angstrom, values in the file's units."""
    rows = read_text_table(path, 4)
    return GridField(points=rows[:, :3] * BOHR_IN_ANGSTROM, values=rows[:, 3], path=Path(path))


def align_to_grid(grid: IntegrationGrid, field: GridField) -> np.ndarray:
    """The values of ``field`` in the point order of ``grid``.

    Both point sets are sorted by (x, y, z) and must then coincide point by point.
    """
    if len(field.points) != len(grid.points):
        raise AimsFileError(
            field.path,
            f"has {len(field.points)} points, the integration grid {len(grid.points)}",
        )
    grid_order, field_order = _sorted_order(grid.points), _sorted_order(field.points)
    offset = np.abs(grid.points[grid_order] - field.points[field_order]).max(initial=0.0)
    if offset > POINT_TOLERANCE * BOHR_IN_ANGSTROM:
        raise AimsFileError(
            field.path,
            f"its points are not those of the integration grid (off by up to "
            f"{offset / BOHR_IN_ANGSTROM:.3e} bohr after sorting)",
        )
    aligned = np.empty_like(field.values)
    aligned[grid_order] = field.values[field_order]
    return aligned


def field_integral(grid: IntegrationGrid, values: np.ndarray) -> float:
    """The quadrature sum(weight * value): the integral of a field aligned with ``grid``."""
    return float(np.dot(grid.weights, values))


def _sorted_order(points: np.ndarray) -> np.ndarray:
    """Point indices sorted by x, then y, then z."""
    return np.lexsort((points[:, 2], points[:, 1], points[:, 0]))
