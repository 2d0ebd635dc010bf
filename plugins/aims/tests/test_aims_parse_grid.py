"""Grid (partition_tab.out, rho_*.out) and cube files, on fields with known integrals.

The grid files are written in FHI-aims' layout (rows x y z value, atomic units) with a
normalised Gaussian density on a Gauss-Legendre product grid in bohr, the field file's
rows shuffled; the cube file is written with ASE.
"""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io.cube
import numpy as np
import pytest
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.cube import cube_integral, parse_cube
from rhocore_aims.parsers.grid import (
    align_to_grid,
    field_integral,
    parse_field_on_grid,
    parse_partition_tab,
)

from rhocore.qc.units import BOHR_IN_ANGSTROM

ELECTRONS = 10.0
CENTER_BOHR = np.array([0.3, -0.2, 0.1])
EXPONENT = 1.3  # bohr^-2


def gaussian_density(points_bohr: np.ndarray) -> np.ndarray:
    """A density of ELECTRONS electrons (bohr^-3) centred on CENTER_BOHR."""
    r2 = np.sum((points_bohr - CENTER_BOHR) ** 2, axis=-1)
    return ELECTRONS * (EXPONENT / np.pi) ** 1.5 * np.exp(-EXPONENT * r2)


def product_grid(order: int = 26, half_width: float = 4.5) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre product grid on a cube of half-width bohr: points, weights (bohr^3)."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    nodes, weights = nodes * half_width, weights * half_width
    points = np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), axis=-1).reshape(-1, 3)
    cube_weights = np.einsum("i,j,k->ijk", weights, weights, weights).reshape(-1)
    return points, cube_weights


def write_rows(path: Path, points: np.ndarray, values: np.ndarray) -> Path:
    np.savetxt(path, np.column_stack([points, values]), fmt="%22.15E")
    return path


@pytest.fixture
def grid_files(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """partition_tab.out, rho_scf.out (rows shuffled) and the grid points in bohr."""
    points, weights = product_grid()
    partition = write_rows(tmp_path / "partition_tab.out", points, weights)
    shuffle = np.random.default_rng(3).permutation(len(points))
    rho = write_rows(tmp_path / "rho_scf.out", points[shuffle], gaussian_density(points[shuffle]))
    return partition, rho, points


def test_grid_units_alignment_and_integral(grid_files) -> None:
    partition, rho, points = grid_files
    grid = parse_partition_tab(partition)
    np.testing.assert_allclose(grid.points, points * BOHR_IN_ANGSTROM, rtol=1e-15)
    assert grid.weights.sum() == pytest.approx(9.0**3, rel=1e-12)
    values = align_to_grid(grid, parse_field_on_grid(rho))
    np.testing.assert_allclose(values, gaussian_density(points), rtol=1e-14, atol=0)
    assert field_integral(grid, values) == pytest.approx(ELECTRONS, rel=1e-9)


def test_field_on_other_points_is_refused(grid_files) -> None:
    partition, rho, points = grid_files
    moved = points.copy()
    moved[17, 2] += 1e-5
    write_rows(rho, moved, gaussian_density(moved))
    with pytest.raises(AimsFileError, match=r"rho_scf\.out: its points are not those"):
        align_to_grid(parse_partition_tab(partition), parse_field_on_grid(rho))


def test_field_with_other_point_count_is_refused(grid_files) -> None:
    partition, rho, points = grid_files
    write_rows(rho, points[:-1], gaussian_density(points[:-1]))
    with pytest.raises(AimsFileError, match=r"rho_scf\.out: has 17575 points"):
        align_to_grid(parse_partition_tab(partition), parse_field_on_grid(rho))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0 0 1 2\n", r"expected 4 values per line, found 5"),
        ("0 0 0 1\n0 0 1 nan\n", r"non-finite value .* row 2"),
        ("", r"empty"),
    ],
)
def test_bad_grid_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "partition_tab.out"
    path.write_text(text)
    with pytest.raises(AimsFileError, match=r"partition_tab\.out: " + message):
        parse_partition_tab(path)


def test_missing_grid_file(tmp_path: Path) -> None:
    with pytest.raises(AimsFileError, match=r"rho_rebuilt_ri\.out: missing"):
        parse_field_on_grid(tmp_path / "rho_rebuilt_ri.out")


# ----- cube files -----


def gaussian_cube(path: Path, scale: float = 1.0) -> tuple[ase.Atoms, np.ndarray, np.ndarray]:
    """A cube of the Gaussian density (values times ``scale``) written by ASE (bohr header)."""
    spacing, shape = 0.12, (64, 60, 62)  # angstrom
    origin = CENTER_BOHR * BOHR_IN_ANGSTROM - spacing * (np.array(shape) - 1) / 2 + 0.013
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    points = origin + spacing * index
    values = gaussian_density(points / BOHR_IN_ANGSTROM) * scale
    atoms = ase.Atoms("OH2", positions=[[0.1, 0.0, 0.0], [0.9, 0.2, 0.0], [-0.2, 0.9, 0.1]])
    atoms.cell = np.diag(spacing * np.array(shape))
    with open(path, "w") as handle:
        ase.io.cube.write_cube(handle, atoms, data=values, origin=origin)
    return atoms, origin, values


def test_cube_lengths_and_integral(tmp_path: Path) -> None:
    atoms, origin, values = gaussian_cube(tmp_path / "total_density.cube")
    cube = parse_cube(tmp_path / "total_density.cube")
    np.testing.assert_allclose(cube.origin, origin, atol=1e-5)
    np.testing.assert_allclose(cube.axes, np.diag([0.12] * 3), atol=1e-6)
    np.testing.assert_allclose(cube.atoms.positions, atoms.positions, atol=1e-5)
    assert cube.atoms.get_chemical_symbols() == ["O", "H", "H"]
    np.testing.assert_allclose(cube.values, values, rtol=1e-4)
    assert cube_integral(cube, content_unit="bohr") == pytest.approx(ELECTRONS, rel=1e-4)


def test_cube_per_cubic_angstrom(tmp_path: Path) -> None:
    """FHI-aims' default cube content: the density per angstrom^3."""
    gaussian_cube(tmp_path / "legacy.cube", scale=BOHR_IN_ANGSTROM**-3)
    cube = parse_cube(tmp_path / "legacy.cube")
    assert cube_integral(cube, content_unit="angstrom") == pytest.approx(ELECTRONS, rel=1e-4)


def test_cube_in_angstrom_by_negative_counts(tmp_path: Path) -> None:
    path = tmp_path / "angstrom.cube"
    path.write_text(
        "comment\ncomment\n    1    0.5   0.0   0.0\n   -2   0.5   0.0   0.0\n"
        "   -2   0.0   0.5   0.0\n   -2   0.0   0.0   0.25\n    1   0.0   1.0   2.0   3.0\n"
        " 1.0 2.0 3.0 4.0\n 5.0 6.0 7.0 8.0\n"
    )
    cube = parse_cube(path)
    np.testing.assert_array_equal(cube.origin, [0.5, 0, 0])
    np.testing.assert_array_equal(cube.atoms.positions, [[1.0, 2.0, 3.0]])
    assert cube.values[1, 0, 1] == 6.0
    assert cube_integral(cube, content_unit="angstrom") == pytest.approx(36 * 0.0625)


def test_cube_errors(tmp_path: Path) -> None:
    gaussian_cube(tmp_path / "short.cube")
    path = tmp_path / "short.cube"
    path.write_text("\n".join(path.read_text().splitlines()[:-3]) + "\n")
    with pytest.raises(AimsFileError, match=r"short\.cube: holds \d+ values, the header"):
        parse_cube(path)
    path.write_text("only a comment\n")
    with pytest.raises(AimsFileError, match=r"short\.cube: not a readable cube file"):
        parse_cube(path)
    with pytest.raises(AimsFileError, match=r"absent\.cube: missing"):
        parse_cube(tmp_path / "absent.cube")
