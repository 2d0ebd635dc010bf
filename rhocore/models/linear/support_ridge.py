"""Closed-form ridge on more structures than the dense dual holds: a support spans it.

The dual of :mod:`rhocore.models.linear.ridge` needs one dense matrix over every training
coefficient, which caps a training set at ``MAX_DUAL_SIZE`` coefficients (34 Si(100)
slabs with f functions). Beyond that the solution is spanned by the coefficients of the
first training structures only, the support (for the ``kernel`` model its support atoms):
w = B_M^T a, with a minimising

    sum_s (K_sM a - y_s)^T S_s (K_sM a - y_s) + r a^T K_MM a

over every training structure s (subset-of-regressors kernel ridge). Its normal equations
(sum_s K_Ms S_s K_sM + r K_MM) a = sum_s K_Ms S_s y_s are M x M however many structures
there are, so more data costs time (N M^2 to build them), not memory. With the whole
training set as support the solution is the full dual's.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from metatensor.torch import TensorMap

from rhocore.errors import InputError
from rhocore.models.base import Model
from rhocore.models.layers import key_selection
from rhocore.models.linear.dense import add_gram_lower, cholesky_in_place, cholesky_solve
from rhocore.models.linear.ridge import (
    MAX_DUAL_SIZE,
    Group,
    RidgeProblem,
    UnsolvableStrength,
    baseline_of,
    dual_kernel,
    dual_rows,
    layer_of,
    set_dual_weights,
    structure_rows,
)

#: Rows of L^T K_sM stacked before each rank update of the normal matrix (~1.5 GB at 23 000).
BATCH_ROWS = 8000
#: Relative diagonal added to K_MM: repeated support rows make it singular.
JITTER = 1e-10


def support_structures(sizes: list[int], max_support: int | None) -> int:
    """How many leading training structures form the support: their coefficients
    (``sizes``) add up to at most ``max_support`` (at most ``MAX_DUAL_SIZE``)."""
    limit = min(max_support or MAX_DUAL_SIZE, MAX_DUAL_SIZE)
    count = int(np.searchsorted(np.cumsum(sizes), limit, side="right"))
    if count == 0 and sizes:
        raise InputError(
            f"the first training structure alone has {sizes[0]} coefficients, more than the "
            f"closed-form ridge support of {limit} (training.ridge_max_support, at most "
            f"{MAX_DUAL_SIZE}): use training.optimizer 'lbfgs' without ridge_warm_start"
        )
    return count


def ridge_problem(
    model: Model,
    features: list[TensorMap],
    numbers: list[np.ndarray],
    references: list[np.ndarray],
    metrics: list[np.ndarray],
    max_support: int | None = None,
) -> RidgeProblem | SupportRidgeProblem:
    """The full dual when every training coefficient fits the support, else the support's."""
    count = support_structures([len(reference) for reference in references], max_support)
    if count == len(references):
        return RidgeProblem(model, features, numbers, references, metrics)
    return SupportRidgeProblem(model, features, numbers, references, metrics, count)


class SupportRidgeProblem:
    """The ridge problem spanned by the first ``support`` structures' coefficients."""

    def __init__(
        self,
        model: Model,
        features: list[TensorMap],
        numbers: list[np.ndarray],
        references: list[np.ndarray],
        metrics: list[np.ndarray],
        support: int,
    ):
        self.model = model
        self.groups, self.vectors, self.row_targets, _ = dual_rows(
            model, features[:support], numbers[:support]
        )
        size = len(self.vectors)
        self.stacked = {
            group: np.array([self.vectors[i] for i in indices])
            for group, indices in self.groups.items()
        }
        self.support_kernel = dual_kernel(model, self.groups, self.vectors, self.row_targets)
        diagonal = np.diag_indices_from(self.support_kernel)
        self.support_kernel[diagonal] += JITTER * max(np.mean(self.support_kernel[diagonal]), 1.0)
        # lower triangle only (what the Cholesky factorisation reads), filled in place
        self.normal = np.zeros((size, size))
        self.right_side = np.zeros(size)
        batch: list[np.ndarray] = []
        for structure_features, structure_numbers, reference, metric in zip(
            features, numbers, references, metrics, strict=True
        ):
            cross, groups = self._cross_kernel(structure_features, structure_numbers)
            factor = np.linalg.cholesky(metric)
            weighted = factor.T @ cross
            self.right_side += weighted.T @ (factor.T @ (reference - baseline_of(model, groups)))
            batch.append(weighted)
            if sum(len(rows) for rows in batch) >= BATCH_ROWS:
                add_gram_lower(self.normal, np.concatenate(batch))
                batch = []
        if batch:
            add_gram_lower(self.normal, np.concatenate(batch))

    def _cross_kernel(
        self, features: TensorMap, numbers: np.ndarray
    ) -> tuple[np.ndarray, list[Group]]:
        """K_sM between one structure's coefficients and the support's, and their groups."""
        groups, vectors, atoms = structure_rows(self.model, features, numbers, defaultdict(int))
        cross = np.zeros((len(vectors), len(self.vectors)))
        rows_of: dict[Group, list[int]] = defaultdict(list)
        for row, group in enumerate(groups):
            rows_of[group].append(row)
        similarities: dict[tuple[int, int], np.ndarray | None] = {}
        for group, rows in rows_of.items():
            columns = self.groups.get(group)
            if not columns:
                continue
            l, z, _ = group
            block = np.array([vectors[row] for row in rows]) @ self.stacked[group].T
            if (l, z) not in similarities:
                invariants = features.block(key_selection(0, int(z))).values
                similarities[(l, z)] = layer_of(self.model, l, z).dual_similarity(invariants)
            similarity = similarities[(l, z)]
            if similarity is not None:
                support = [self.row_targets[column] for column in columns]
                block *= similarity[np.ix_([atoms[row] for row in rows], support)]
            cross[np.ix_(rows, columns)] = block
        return cross, groups

    def apply(self, regularization: float) -> None:
        """Set the model's weights to the ridge solution for ``regularization``."""
        shifted = regularization * self.support_kernel
        shifted += self.normal
        if not cholesky_in_place(shifted):
            raise UnsolvableStrength(
                f"ridge strength {regularization:g} is too weak for a support of "
                f"{len(shifted)} coefficients: the normal matrix is not positive definite in "
                "floating point; give training.ridge_regularizations larger values"
            )
        alpha = cholesky_solve(shifted, self.right_side)
        set_dual_weights(self.model, self.groups, self.vectors, self.row_targets, alpha)
