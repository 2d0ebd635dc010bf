"""The generic RI solve: unconstrained, charge-constrained, and ill-conditioned metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from rhocore.qc.rifit import IllConditionedMetricError, solve_fit


def _spd(n: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


def test_unconstrained_fit_solves_the_normal_equations():
    metric = _spd(6, 0)
    projections = np.arange(6.0)
    coefficients = solve_fit(metric, projections, np.ones(6))
    np.testing.assert_allclose(metric @ coefficients, projections, atol=1e-12)


def test_constrained_fit_is_the_constrained_minimum():
    metric = _spd(5, 1)
    projections = np.linspace(1, 2, 5)
    integrals = np.array([1.0, 0.5, 0.0, 0.0, 2.0])
    coefficients = solve_fit(metric, projections, integrals, n_electrons=3.0)
    assert integrals @ coefficients == pytest.approx(3.0, abs=1e-12)
    # independent check: numerical constrained minimisation of d.S.d - 2 d.w
    result = minimize(
        lambda d: d @ metric @ d - 2 * d @ projections,
        np.zeros(5),
        constraints={"type": "eq", "fun": lambda d: integrals @ d - 3.0},
        tol=1e-12,
    )
    np.testing.assert_allclose(coefficients, result.x, atol=1e-6)


def test_ill_conditioned_metric_is_refused_with_advice():
    metric = np.array([[1.0, 1.0 - 1e-14], [1.0 - 1e-14, 1.0]])
    with pytest.raises(IllConditionedMetricError, match="nearly linearly dependent"):
        solve_fit(metric, np.ones(2), np.ones(2))
