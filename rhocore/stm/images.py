"""STM images from a field on the real-space grid of a surface cell.

The field behind an STM image is the ILDOS: the density of the Kohn-Sham states between
the Fermi level and the bias (Tersoff-Hamann). Given it on a regular grid of the cell,
this module makes the two classic images:

* constant height: the field on a plane z = const, linearly interpolated between grid
  planes (the CLI's ``--height`` is measured above the topmost atom, so the plane is
  ``z_top + height``);
* constant current: for each (x, y) column the height where the field equals an
  isovalue, searched from the vacuum side downwards as a tip approaches, linearly
  interpolated between the two grid points that bracket the crossing. This is the scan
  of ASE's ``ase.dft.stm.STM.scan``, so both agree on the same data.

Cells must have the surface normal along z: a and b in the xy plane, c along z. All
lengths are in angstrom; field values in the unit of the field (bohr^-3 for rhocore
fields), except in the ASE file, which holds e/angstrom^3 as ASE's STM tools expect.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ase
import numpy as np
from ase.io.jsonio import write_json

from rhocore.errors import InputError
from rhocore.fields.grids import nmae_percent
from rhocore.parallel.progress import progress_bar
from rhocore.qc.units import BOHR_IN_ANGSTROM

#: Lengths (angstrom) below which a cell component counts as zero.
CELL_TOLERANCE = 1e-6
#: Points handed to ``evaluate`` at once: bounds memory, paces the progress bar.
CHUNK_POINTS = 20_000


class StmWarning(UserWarning):
    """Columns of a constant-current image where the tip found no height."""


def check_surface_cell(cell: np.ndarray) -> np.ndarray:
    """The 3x3 cell (rows a, b, c) if the surface normal is along z, else a ValueError."""
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < CELL_TOLERANCE:
        raise InputError(
            "STM images need a structure with a 3D cell (rows a, b, c, in angstrom); "
            f"got {cell.tolist()}"
        )
    tilted = np.abs(cell[:2, 2]).max() > CELL_TOLERANCE or np.abs(cell[2, :2]).max() > (
        CELL_TOLERANCE
    )
    if tilted or cell[2, 2] <= 0:
        raise InputError(
            "STM images need the surface normal along +z: cell vectors a and b in the xy "
            f"plane and c along z. This cell has a = {_vector(cell[0])}, "
            f"b = {_vector(cell[1])}, c = {_vector(cell[2])}; rotate the slab so that its "
            "surface lies in the xy plane with the vacuum above it (e.g. ase.build.surface)"
        )
    return cell


def _vector(row: np.ndarray) -> str:
    return "(" + ", ".join(f"{value:.3f}" for value in row) + ")"


@dataclass
class CellGrid:
    """A field on the regular grid of a surface cell, or on a band of its z planes.

    ``values[i, j, k]`` is the field at ``origin + i/nx a + j/ny b + k dz z``: x and y
    cover the whole cell (periodic, end point excluded, as a plane-wave code's grid), and
    z the planes ``k0 .. k0 + nz - 1`` of the ``nz_cell`` planes that divide c, so that
    ``dz = c_z / nz_cell`` and ``origin = (0, 0, k0 dz)``. ``nz_cell`` None: all of them.
    """

    values: np.ndarray
    cell: np.ndarray
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    nz_cell: int | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=float)
        self.cell = check_surface_cell(self.cell)
        self.origin = np.asarray(self.origin, dtype=float)
        if self.values.ndim != 3 or self.values.shape[2] < 2:
            raise ValueError(
                f"a cell grid holds (nx, ny, nz >= 2) values, got shape {self.values.shape}"
            )
        if self.nz_cell is None:
            self.nz_cell = self.values.shape[2]
        if self.nz_cell < self.values.shape[2]:
            raise ValueError(f"{self.values.shape[2]} z planes of a cell that has {self.nz_cell}")

    @property
    def dz(self) -> float:
        """Distance between z planes (angstrom)."""
        assert self.nz_cell is not None
        return float(self.cell[2, 2]) / self.nz_cell

    @property
    def z(self) -> np.ndarray:
        """Heights of the z planes (angstrom)."""
        return self.origin[2] + self.dz * np.arange(self.values.shape[2])

    @property
    def voxel_volume_bohr3(self) -> float:
        """Volume of one grid cell in bohr^3: the quadrature weight of each point."""
        nx, ny, _ = self.values.shape
        volume = abs(np.linalg.det(self.cell)) / (nx * ny * self.nz_cell)
        return float(volume / BOHR_IN_ANGSTROM**3)

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y (angstrom) of every column, each of shape (nx, ny)."""
        x, y = plane_coordinates(self.cell, self.values.shape[:2])
        return x + self.origin[0], y + self.origin[1]

    def points(self) -> np.ndarray:
        """All grid points (angstrom), shape (nx * ny * nz, 3), in the order of ``values``."""
        nx, ny, nz = self.values.shape
        x, y = self.xy()
        columns = np.stack([x, y], axis=-1).reshape(nx * ny, 1, 2)
        out = np.empty((nx * ny, nz, 3))
        out[..., :2] = columns
        out[..., 2] = self.z[None, :]
        return out.reshape(-1, 3)


def plane_coordinates(
    cell: np.ndarray, shape: tuple[int, int], repeat: tuple[int, int] = (1, 1)
) -> tuple[np.ndarray, np.ndarray]:
    """x, y (angstrom) of the points ``i/nx a + j/ny b`` of ``repeat`` tiled cells."""
    nx, ny = shape
    fractions_a = np.arange(nx * repeat[0]) / nx
    fractions_b = np.arange(ny * repeat[1]) / ny
    cell = np.asarray(cell, dtype=float)
    x = fractions_a[:, None] * cell[0, 0] + fractions_b[None, :] * cell[1, 0]
    y = fractions_a[:, None] * cell[0, 1] + fractions_b[None, :] * cell[1, 1]
    return x, y


def topmost_z(atoms: ase.Atoms) -> float:
    """Height (angstrom) of the topmost atom: the zero of the CLI's ``--height``."""
    return float(atoms.positions[:, 2].max())


def vacuum_z_range(atoms: ase.Atoms, below: float = 2.0) -> tuple[float, float]:
    """The z range (angstrom) an image needs: ``below`` under the topmost atom up to the
    middle of the vacuum above it, where a tip starts its approach (at most the cell top).
    """
    cell = check_surface_cell(atoms.cell)
    heights = atoms.positions[:, 2]
    top, height = float(heights.max()), float(cell[2, 2])
    if top >= height:
        raise InputError(
            f"the topmost atom (z = {top:.3f} angstrom) is not below the top of the cell "
            f"(c_z = {height:.3f} angstrom): STM images need vacuum above the surface"
        )
    vacuum = height - (top - float(heights.min()))
    return top - below, min(top + vacuum / 2, height)


def empty_cell_grid(
    atoms: ase.Atoms, spacing: float, z_range: tuple[float, float] | None = None
) -> CellGrid:
    """A zero field on the grid of ``atoms.cell`` with about ``spacing`` angstrom steps.

    ``z_range`` (angstrom, absolute) keeps only the planes that cover it, to save cost.
    """
    if spacing <= 0:
        raise InputError(f"the grid spacing must be positive, got {spacing} angstrom")
    cell = check_surface_cell(atoms.cell)
    nx, ny, nz_cell = (max(2, math.ceil(length / spacing)) for length in atoms.cell.lengths())
    first, last = 0, nz_cell - 1
    if z_range is not None:
        first, last = _plane_range(z_range, cell[2, 2] / nz_cell, nz_cell)
    origin = np.array([0.0, 0.0, first * cell[2, 2] / nz_cell])
    return CellGrid(np.zeros((nx, ny, last - first + 1)), cell, origin, nz_cell)


def _plane_range(z_range: tuple[float, float], dz: float, nz_cell: int) -> tuple[int, int]:
    """First and last plane index whose planes cover ``z_range``, clipped to the cell."""
    low, high = z_range
    if not low < high:
        raise ValueError(f"empty z range ({low}, {high}) angstrom")
    first = max(0, math.floor(low / dz + 1e-9))
    last = min(nz_cell - 1, math.ceil(high / dz - 1e-9))
    if last - first < 1:
        raise InputError(
            f"the z range ({low:.3f}, {high:.3f}) angstrom holds fewer than two grid planes "
            f"of the cell (0 to {nz_cell * dz:.3f} angstrom)"
        )
    return first, last


def cell_grid_points(
    atoms: ase.Atoms, spacing: float, z_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Points (angstrom, shape (N, 3)) of the cell grid of :func:`empty_cell_grid`."""
    return empty_cell_grid(atoms, spacing, z_range).points()


def field_on_cell_grid(
    atoms: ase.Atoms,
    evaluate: Callable[[np.ndarray], np.ndarray],
    spacing: float,
    z_range: tuple[float, float] | None = None,
    *,
    progress: bool = False,
) -> CellGrid:
    """The field ``evaluate(points)`` on the cell grid, evaluated in chunks."""
    grid = empty_cell_grid(atoms, spacing, z_range)
    points = grid.points()
    values = np.empty(len(points))
    starts = range(0, len(points), CHUNK_POINTS)
    quiet = not progress or len(starts) < 2  # a single chunk is quick
    for start in progress_bar(starts, desc="field", unit="chunk", disable=quiet):
        chunk = points[start : start + CHUNK_POINTS]
        values[start : start + len(chunk)] = np.asarray(evaluate(chunk), dtype=float)
    grid.values = values.reshape(grid.values.shape)
    return grid


def constant_height(grid: CellGrid, z: float) -> np.ndarray:
    """The field on the plane at height ``z`` (angstrom, absolute), shape (nx, ny).

    Linear interpolation between the two grid planes around ``z``.
    """
    position = (z - grid.z[0]) / grid.dz
    nz = grid.values.shape[2]
    if position < -1e-9 or position > nz - 1 + 1e-9:
        raise InputError(
            f"height z = {z:.3f} angstrom is outside the grid's z range "
            f"({grid.z[0]:.3f} to {grid.z[-1]:.3f} angstrom)"
        )
    below = min(max(math.floor(position), 0), nz - 2)
    fraction = position - below
    return (1 - fraction) * grid.values[..., below] + fraction * grid.values[..., below + 1]


def constant_current(grid: CellGrid, isovalue: float) -> np.ndarray:
    """Tip heights (angstrom, absolute) where the field equals ``isovalue``, shape (nx, ny).

    Each column is searched from its top plane downwards for the first grid point where
    the field exceeds the isovalue; the height is interpolated linearly between it and
    the point above it. A column without such a crossing (the field exceeds the isovalue
    already at the top plane, or never reaches it) gets NaN, and a :class:`StmWarning`
    says how many there are and why.
    """
    values = grid.values
    nz = values.shape[2]
    above = values > isovalue
    # index of the topmost plane where the field exceeds the isovalue
    lower = nz - 1 - np.argmax(above[..., ::-1], axis=2)
    crosses = above.any(axis=2) & (lower < nz - 1)
    lower = np.where(crosses, lower, 0)
    inside = np.take_along_axis(values, lower[..., None], axis=2)[..., 0]
    outside = np.take_along_axis(values, lower[..., None] + 1, axis=2)[..., 0]
    drop = np.where(crosses, inside - outside, 1.0)
    heights = grid.z[lower] + grid.dz * (inside - isovalue) / drop
    heights[~crosses] = np.nan
    _warn_without_crossing(grid, above, crosses, isovalue)
    return heights


def _warn_without_crossing(
    grid: CellGrid, above: np.ndarray, crosses: np.ndarray, isovalue: float
) -> None:
    missing = int(np.count_nonzero(~crosses))
    if missing == 0:
        return
    at_top = int(np.count_nonzero(above[..., -1]))
    warnings.warn(
        f"{missing} of {crosses.size} columns have no crossing of the isovalue "
        f"{isovalue:.4g} and get NaN heights: in {at_top} the field exceeds it already at "
        f"the top grid plane (z = {grid.z[-1]:.2f} angstrom; raise the isovalue or scan a "
        f"higher region), in {missing - at_top} it never reaches it (lower the isovalue)",
        StmWarning,
        stacklevel=3,
    )


def ase_stm_values(grid: CellGrid) -> np.ndarray:
    """The field on all ``nz_cell`` planes of the cell, in e/angstrom^3 (ASE's unit).

    Planes outside the grid's z range are zero, so a scan from the top of the cell finds
    the same crossings as on the grid.
    """
    first = grid.origin[2] / grid.dz
    if np.abs(grid.origin[:2]).max() > CELL_TOLERANCE or abs(first - round(first)) > 1e-6:
        raise ValueError(
            "ASE's STM file holds the whole cell from its origin: the grid must start at "
            f"(0, 0, k dz), got origin {_vector(grid.origin)} with dz = {grid.dz:.4f}"
        )
    nx, ny, nz = grid.values.shape
    assert grid.nz_cell is not None
    full = np.zeros((nx, ny, grid.nz_cell))
    full[..., round(first) : round(first) + nz] = grid.values
    return full / BOHR_IN_ANGSTROM**3


def write_ase_stm_file(path: Path | str, grid: CellGrid, bias: float) -> None:
    """Write the field as the JSON file ``ase.dft.stm.STM(filename)`` reads.

    The file holds [ldos (nx, ny, nz_cell) in e/angstrom^3, bias (V), cell (3x3,
    angstrom)]; hand ASE's ``STM.scan`` isovalues in e/angstrom^3 (bohr^-3 values times
    ``1 / BOHR_IN_ANGSTROM**3``) and the same ``bias``.
    """
    with open(path, "w") as handle:
        write_json(handle, (ase_stm_values(grid), float(bias), np.array(grid.cell)))


def height_rmse_pm(predicted: np.ndarray, reference: np.ndarray) -> float:
    """Root-mean-square difference of two height maps (angstrom in, picometres out).

    Columns where either map is NaN are left out.
    """
    difference = np.asarray(predicted, dtype=float) - np.asarray(reference, dtype=float)
    finite = np.isfinite(difference)
    if not finite.any():
        raise ValueError("the height maps share no column with a finite height")
    return 100.0 * float(np.sqrt(np.mean(difference[finite] ** 2)))


def pearson_r(image_a: np.ndarray, image_b: np.ndarray) -> float:
    """Pearson correlation of two images over the pixels finite in both."""
    a, b = np.asarray(image_a, dtype=float).ravel(), np.asarray(image_b, dtype=float).ravel()
    finite = np.isfinite(a) & np.isfinite(b)
    a, b = a[finite] - a[finite].mean(), b[finite] - b[finite].mean()
    norm = float(np.sqrt(np.sum(a**2) * np.sum(b**2)))
    if norm == 0.0:
        raise ValueError("an image is constant: the Pearson correlation is undefined")
    return float(np.sum(a * b)) / norm


def nmae_percent_above(
    predicted: np.ndarray, reference: np.ndarray, grid: CellGrid, z_min: float
) -> float:
    """NMAE (%) of a field on ``grid``'s points at heights >= ``z_min`` (angstrom).

    Each point weighs the volume of its grid cell, so the value approximates
    ``100 * integral |pred - ref| / integral |ref|`` over the region above ``z_min``.
    """
    predicted, reference = np.asarray(predicted), np.asarray(reference)
    if predicted.shape != grid.values.shape or reference.shape != grid.values.shape:
        raise ValueError(
            f"fields of shape {predicted.shape} and {reference.shape} are not on the grid "
            f"of shape {grid.values.shape}"
        )
    planes = grid.z >= z_min - 1e-9
    if not planes.any():
        raise ValueError(f"no grid plane lies above z = {z_min:.3f} angstrom")
    weights = np.full(reference[..., planes].shape, grid.voxel_volume_bohr3)
    return nmae_percent(predicted[..., planes], reference[..., planes], weights)
