"""Backend-independent numerics of an RI fit: solve S d = w, optionally with a charge.

Every backend that computes the metric S and the projections w itself (from its own
integrals) finishes its fit here, so conditioning checks and the charge constraint
behave the same for every QC code.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from rhocore.errors import RhocoreError


class IllConditionedMetricError(RhocoreError, ValueError):
    """The auxiliary basis is (nearly) linearly dependent: S cannot be inverted reliably."""


def metric_condition_number(metric: np.ndarray) -> float:
    """2-norm condition number of a symmetric positive (semi)definite matrix."""
    eigenvalues = np.linalg.eigvalsh(metric)
    if eigenvalues[0] <= 0:
        return float("inf")
    return float(eigenvalues[-1] / eigenvalues[0])


def factorise_metric(metric: np.ndarray, condition_limit: float = 1e12):
    """Cholesky factor of S, refusing a metric whose condition number exceeds the limit."""
    condition = metric_condition_number(metric)
    if condition > condition_limit:
        raise IllConditionedMetricError(
            f"the auxiliary-basis metric has condition number {condition:.3g} > "
            f"{condition_limit:.3g}: its functions are nearly linearly dependent. Use a "
            "smaller or less diffuse auxiliary basis, or raise the backend's condition_limit."
        )
    try:
        return scipy.linalg.cho_factor(metric, lower=True)
    except np.linalg.LinAlgError as error:
        raise IllConditionedMetricError(
            f"the auxiliary-basis metric is not positive definite ({error})"
        ) from None


def solve_fit(
    metric: np.ndarray,
    projections: np.ndarray,
    integrals: np.ndarray,
    n_electrons: float | None = None,
    condition_limit: float = 1e12,
) -> np.ndarray:
    """Coefficients d minimising the metric error of the fit.

    Without ``n_electrons``: d = S^-1 w. With it, the same minimum under the exact
    constraint ``integrals . d = n_electrons`` (a Lagrange multiplier):
    d = S^-1 (w + mu q), mu = (N - q S^-1 w) / (q S^-1 q).
    """
    factor = factorise_metric(metric, condition_limit)
    coefficients = scipy.linalg.cho_solve(factor, projections)
    if n_electrons is None:
        return coefficients
    direction = scipy.linalg.cho_solve(factor, integrals)
    curvature = float(integrals @ direction)
    if curvature <= 0:
        raise ValueError("cannot impose the electron count: no basis function has an integral")
    multiplier = (n_electrons - float(integrals @ coefficients)) / curvature
    return coefficients + multiplier * direction
