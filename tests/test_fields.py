"""Metrics and cube files on analytic fields."""

from __future__ import annotations

import ase
import ase.io.cube
import numpy as np
import pytest

from rhocore.fields.grids import metric_error_percent, nmae_percent, write_cube
from rhocore.qc.units import BOHR_IN_ANGSTROM


def _grid(n: int = 60, extent: float = 6.0):
    axis = np.linspace(-extent, extent, n)
    step = axis[1] - axis[0]
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    return points, np.full(len(points), step**3)


def test_scaled_field_has_the_scale_as_nmae():
    points, weights = _grid()
    reference = np.exp(-np.sum(points**2, axis=1))
    assert nmae_percent(1.1 * reference, reference, weights) == pytest.approx(10.0, rel=1e-12)


def test_nmae_of_shifted_gaussian_matches_the_analytic_value():
    points, weights = _grid(120, 7.0)
    reference = np.exp(-np.sum(points**2, axis=1))
    shifted = np.exp(-np.sum((points - [0.1, 0, 0]) ** 2, axis=1))
    # 1D: integral |g(x-a) - g(x)| / integral g = 2 erf(a/2); the other axes cancel
    from scipy.special import erf

    assert nmae_percent(shifted, reference, weights) == pytest.approx(100 * 2 * erf(0.05), rel=3e-3)


def test_zero_reference_is_refused():
    with pytest.raises(ValueError, match="undefined"):
        nmae_percent(np.ones(3), np.zeros(3), np.ones(3))


def test_metric_error_is_relative_norm_in_the_metric():
    metric = np.diag([1.0, 4.0])
    reference = np.array([1.0, 0.0])
    predicted = np.array([1.0, 0.05])
    assert metric_error_percent(predicted, reference, metric) == pytest.approx(10.0)


class _GaussianBackend:
    """Evaluates one normalised s Gaussian per coefficient at each atom."""

    def evaluate_fitted(self, atoms, coefficients, points):
        r2 = np.sum((points[:, None, :] - atoms.positions[None]) ** 2, axis=-1)
        r2 /= BOHR_IN_ANGSTROM**2
        return (np.exp(-r2) / np.pi**1.5) @ coefficients


def test_cube_file_holds_the_field_and_integrates_to_its_charge(tmp_path):
    atoms = ase.Atoms("He", positions=[[0.0, 0.0, 0.0]])
    path = tmp_path / "he.cube"
    write_cube(path, atoms, _GaussianBackend(), np.array([2.0]), spacing=0.1)
    with open(path) as handle:
        content = ase.io.cube.read_cube(handle)
    data = content["data"]
    voxel_bohr3 = (0.1 / BOHR_IN_ANGSTROM) ** 3
    assert data.sum() * voxel_bohr3 == pytest.approx(2.0, rel=3e-3)
    assert content["atoms"].positions[0] == pytest.approx([0, 0, 0], abs=1e-5)
