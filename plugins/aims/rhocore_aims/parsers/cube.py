"""Gaussian cube files as FHI-aims writes them (``output cube total_density``, ...).

Header: two comment lines; ``n_atoms  origin(3)``; three lines ``n_i  step_i(3)`` (the
voxel step vectors); one line ``Z  charge  x y z`` per atom; then the n_1 n_2 n_3 values,
the last axis fastest. Lengths are in bohr, or in angstrom when the voxel counts are
negative (the Gaussian convention); FHI-aims writes bohr.

The values are returned as written. FHI-aims writes densities per angstrom^3 by default
(``cube_content_unit legacy``, with a warning in aims.out) and per bohr^3 with
``cube_content_unit bohr`` (FHI-aims source, ``output_cube_files_p2.f90``): a cube file
does not say which, so :func:`cube_integral` must be told.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ase
import numpy as np

from rhocore.api import BOHR_IN_ANGSTROM
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.text import read_text

ContentUnit = Literal["angstrom", "bohr"]


@dataclass(frozen=True)
class CubeData:
    """A cube: origin (3,) and voxel step vectors (3, 3, one per row) in angstrom."""

    origin: np.ndarray
    axes: np.ndarray
    values: np.ndarray
    atoms: ase.Atoms


def parse_cube(path: Path | str) -> CubeData:
    """Read a single-field cube file; lengths come back in angstrom."""
    path = Path(path)
    if not path.is_file():
        raise AimsFileError(path, "missing: no cube file here")
    lines = read_text(path).splitlines()
    try:
        return _parse(path, lines)
    except AimsFileError:
        raise
    except (ValueError, IndexError) as error:
        raise AimsFileError(path, f"not a readable cube file: {error}") from None


def cube_integral(cube: CubeData, *, content_unit: ContentUnit) -> float:
    """Integral of the cube's field: sum of values times the voxel volume.

    ``content_unit`` says what the values are per: ``"angstrom"`` (per angstrom^3, FHI-aims'
    default) or ``"bohr"`` (per bohr^3). A density integrates to its electron count.
    """
    volume = abs(float(np.linalg.det(cube.axes)))
    if content_unit == "bohr":
        volume /= BOHR_IN_ANGSTROM**3
    return float(cube.values.sum()) * volume


def _parse(path: Path, lines: list[str]) -> CubeData:
    first = lines[2].split()
    n_atoms = int(first[0])
    if n_atoms < 0 or (len(first) > 4 and int(first[4]) != 1):
        raise AimsFileError(path, "holds several fields per voxel; only single-field cubes")
    counts, steps = zip(*(_axis(line) for line in lines[3:6]), strict=True)
    if len({np.sign(n) for n in counts}) != 1 or 0 in counts:
        raise AimsFileError(path, f"voxel counts {counts} mix signs or are zero")
    scale = 1.0 if counts[0] < 0 else BOHR_IN_ANGSTROM
    shape = tuple(abs(n) for n in counts)
    atom_lines = lines[6 : 6 + n_atoms]
    atom_rows = np.array([line.split()[:5] for line in atom_lines], dtype=float).reshape(-1, 5)
    values = np.array(" ".join(lines[6 + n_atoms :]).split(), dtype=float)
    if len(values) != np.prod(shape):
        raise AimsFileError(
            path, f"holds {len(values)} values, the header promises {'x'.join(map(str, shape))}"
        )
    if not np.isfinite(values).all():
        raise AimsFileError(path, "holds NaN or infinite values")
    atoms = ase.Atoms(numbers=atom_rows[:, 0].astype(int), positions=atom_rows[:, 2:5] * scale)
    return CubeData(
        origin=np.array(first[1:4], dtype=float) * scale,
        axes=np.array(steps) * scale,
        values=values.reshape(shape),
        atoms=atoms,
    )


def _axis(line: str) -> tuple[int, list[float]]:
    words = line.split()
    return int(words[0]), [float(w) for w in words[1:4]]
