"""The ridge's dense symmetric algebra on PyTorch's LAPACK, against numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from rhocore.models.linear import dense


def _positive_definite(size: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(size + 3, size))
    return rows.T @ rows + 0.1 * np.eye(size)


def test_the_factor_is_numpys_and_only_the_lower_triangle_is_read():
    matrix = _positive_definite(40, seed=1)
    expected = np.linalg.cholesky(matrix)
    scrambled = matrix.copy()
    scrambled[np.triu_indices(40, 1)] = np.nan
    assert dense.cholesky_in_place(scrambled)
    assert np.allclose(np.tril(scrambled), expected, atol=1e-12 * np.abs(expected).max())


def test_the_solution_solves_the_system():
    matrix = _positive_definite(50, seed=2)
    right_side = np.random.default_rng(3).normal(size=50)
    factor = matrix.copy()
    assert dense.cholesky_in_place(factor)
    solution = dense.cholesky_solve(factor, right_side)
    assert np.allclose(solution, np.linalg.solve(matrix, right_side), rtol=1e-9, atol=1e-12)


def test_an_indefinite_matrix_is_reported_not_factorised():
    matrix = _positive_definite(20, seed=4)
    matrix[5, 5] = -1.0
    assert not dense.cholesky_in_place(matrix)


def test_a_fortran_ordered_matrix_is_refused():
    with pytest.raises(ValueError, match="C-ordered"):
        dense.cholesky_in_place(np.asfortranarray(_positive_definite(6, seed=5)))


@pytest.mark.parametrize("block", [2048, 3])
def test_the_gram_update_fills_the_lower_triangle(monkeypatch, block):
    """Block by block of columns, as in one product."""
    monkeypatch.setattr(dense, "COLUMN_BLOCK", block)
    rows = np.random.default_rng(6).normal(size=(9, 11))
    start = np.random.default_rng(7).normal(size=(11, 11))
    matrix = start.copy()
    dense.add_gram_lower(matrix, rows)
    lower = np.tril_indices(11)
    assert np.allclose(matrix[lower], (start + rows.T @ rows)[lower])
    # above the diagonal blocks nothing is written
    above = [(i, j) for i in range(11) for j in range(11) if j >= (i // block + 1) * block]
    assert all(matrix[i, j] == start[i, j] for i, j in above)
