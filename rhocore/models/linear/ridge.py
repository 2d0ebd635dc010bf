"""Closed-form training of the ``linear`` model: ridge regression in the fit's metric.

The linear model's loss  sum_s (B_s w - y_s)^T S_s (B_s w - y_s) + r |w|^2  is quadratic
in its weights w, so its minimum is a linear solve instead of thousands of gradient steps
(which stall on the ill-conditioned lambda-SOAP features). Solved in the dual:
w = B^T a with (K + r S^-1) a = y, K = B B^T the block-sparse linear kernel between the
training coefficients (non-zero only for equal element, l and radial index n). With
S = L L^T per structure and a = L g it becomes (L^T K L + r I) g = L^T y, one symmetric
eigendecomposition serving every regularisation strength r. The eigendecomposition costs
about 17 Cholesky factorisations of the same matrix, so above ``EIGH_MAX_SIZE``
coefficients each strength gets its own factorisation instead.

The ``kernel`` model is solved the same way: its kernel is the linear one times the
invariant factor k(i, j) of the two atoms, and its weights are the dual-weighted feature
sums per support atom instead of one sum over all atoms.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import scipy.linalg
from metatensor.torch import TensorMap

from rhocore.errors import InputError
from rhocore.models.base import Model
from rhocore.models.layers import DualRows, EquivariantLinear, key_selection
from rhocore.models.linear.dense import cholesky_in_place, cholesky_solve

#: The largest dense dual problem: 23 000² doubles are 4.2 GB. Above 4 GiB per matrix
#: the OpenBLAS 0.3.31 that the pinned numpy bundles crashes (segmentation fault) in its
#: multithreaded matrix products, measured with 2 threads on 29 200²; the factorisations
#: run on PyTorch's LAPACK instead (:mod:`rhocore.models.linear.dense`).
MAX_DUAL_SIZE = 23000
#: Up to this many training coefficients one eigendecomposition serves every strength.
EIGH_MAX_SIZE = 12000

Group = tuple[int, int, int]  # (l, Z, n)


class UnsolvableStrength(ValueError):
    """A ridge strength too weak for a Cholesky factorisation of the regularised kernel."""


def structure_rows(
    model: Model, features: TensorMap, numbers: np.ndarray, support_offsets: dict[int, int]
) -> tuple[list[Group], list[np.ndarray], list[int]]:
    """Per coefficient of one structure: its (l, Z, n) group, feature vector and target.

    The target is the support atom whose projection the coefficient's dual weight adds to
    (``kernel``: the atom itself, counted over the training set per element from
    ``support_offsets``, which is advanced), or 0 (``linear``: one weight matrix).
    """
    layout = model.layout
    blocks = {}
    for l, z in model.output_keys():
        block = features.block(key_selection(l, z))
        atoms = block.samples.column("atom").tolist()
        values = block.values.detach().numpy()
        blocks[(l, z)] = {atom: values[row] for row, atom in enumerate(atoms)}
    support = {}
    for z in {z for _, z in model.output_keys()}:
        atoms = features.block(key_selection(0, z)).samples.column("atom").tolist()
        support.update({atom: support_offsets[z] + row for row, atom in enumerate(atoms)})
        support_offsets[z] += len(atoms)
    groups, vectors, targets = [], [], []
    for atom, z, l, n, m in layout.function_table(numbers):
        layer = layer_of(model, l, z)
        vector = blocks[(l, z)][atom][m + l]
        if layer.bias is not None:
            vector = np.append(vector, 1.0)
        groups.append((l, z, n))
        vectors.append(vector)
        targets.append(support[atom] if layer.dual_per_atom else 0)
    return groups, vectors, targets


def layer_of(model: Model, l: int, z: int) -> EquivariantLinear:
    """The layer that predicts the (l, Z) block: an :class:`EquivariantLinear` or a layer
    with the same ridge methods (``dual_per_atom``, ``dual_similarity``,
    ``set_dual_weights``)."""
    return model.layers[f"{l}_{z}"]


class RidgeProblem:
    """The dual ridge problem of a linear model on a training set, ready to solve."""

    def __init__(
        self,
        model: Model,
        features: list[TensorMap],
        numbers: list[np.ndarray],
        references: list[np.ndarray],
        metrics: list[np.ndarray],
    ):
        self.model = model
        size = sum(len(reference) for reference in references)
        if size > MAX_DUAL_SIZE:
            raise InputError(
                f"closed-form ridge training needs a dense {size}x{size} matrix; with more than "
                f"{MAX_DUAL_SIZE} training coefficients fit on a support (support_ridge)"
            )
        self.groups, self.vectors, self.row_targets, structure_groups = dual_rows(
            model, features, numbers
        )
        targets = [
            reference - baseline_of(model, groups)
            for reference, groups in zip(references, structure_groups, strict=True)
        ]
        kernel = dual_kernel(model, self.groups, self.vectors, self.row_targets)
        self.factors = [np.linalg.cholesky(metric) for metric in metrics]
        self.offsets = np.cumsum([0] + [len(metric) for metric in metrics])
        self._transform_in_place(kernel)
        self.right_side = self._times_factors(np.concatenate(targets)[:, None]).ravel()
        self.matrix: np.ndarray | None = None
        if size > EIGH_MAX_SIZE:
            self.matrix = kernel
        else:
            self.eigenvalues, self.eigenvectors = scipy.linalg.eigh(kernel, overwrite_a=True)
            self.projected_targets = self.eigenvectors.T @ self.right_side

    def _transform_in_place(self, kernel: np.ndarray) -> None:
        """Overwrite K with L^T K L, structure block by structure block.

        In place, so that the largest problems hold two dense matrices (K and its
        eigenvectors or its factorised copy), not four.
        """
        blocks = list(zip(self.factors, self.offsets[:-1], self.offsets[1:], strict=True))
        for factor, start, stop in blocks:
            kernel[start:stop] = factor.T @ kernel[start:stop]
        for factor, start, stop in blocks:
            kernel[:, start:stop] = kernel[:, start:stop] @ factor

    def _times_factors(self, matrix: np.ndarray, transpose: bool = True) -> np.ndarray:
        """Block-diagonal L^T @ matrix (or L @ matrix), structure by structure."""
        out = np.empty_like(matrix)
        for factor, start, stop in zip(
            self.factors, self.offsets[:-1], self.offsets[1:], strict=True
        ):
            out[start:stop] = (factor.T if transpose else factor) @ matrix[start:stop]
        return out

    def _solve(self, regularization: float) -> np.ndarray:
        """g of (L^T K L + r I) g = L^T y."""
        if self.matrix is None:
            return self.eigenvectors @ (
                self.projected_targets / (np.clip(self.eigenvalues, 0.0, None) + regularization)
            )
        shifted = self.matrix.copy()
        shifted[np.diag_indices_from(shifted)] += regularization
        if not cholesky_in_place(shifted):
            raise UnsolvableStrength(
                f"ridge strength {regularization:g} is too weak for {len(shifted)} training "
                "coefficients: the regularised kernel is not positive definite in floating "
                "point; give training.ridge_regularizations larger values"
            )
        return cholesky_solve(shifted, self.right_side)

    def apply(self, regularization: float) -> None:
        """Set the model's weights to the ridge solution for ``regularization``."""
        gamma = self._solve(regularization)
        alpha = self._times_factors(gamma[:, None], transpose=False).ravel()
        set_dual_weights(self.model, self.groups, self.vectors, self.row_targets, alpha)


def dual_rows(
    model: Model, features: list[TensorMap], numbers: list[np.ndarray]
) -> tuple[dict[Group, list[int]], list[np.ndarray], list[int], list[list[Group]]]:
    """Every coefficient of the structures as a dual row: the rows of each (l, Z, n) group,
    each row's feature vector and support atom (see :func:`structure_rows`), and each structure's
    groups in coefficient order."""
    groups: dict[Group, list[int]] = defaultdict(list)
    vectors: list[np.ndarray] = []
    row_targets: list[int] = []
    structure_groups = []
    support_offsets: dict[int, int] = defaultdict(int)
    for structure_features, structure_numbers in zip(features, numbers, strict=True):
        structure, rows, targets = structure_rows(
            model, structure_features, structure_numbers, support_offsets
        )
        for group, vector in zip(structure, rows, strict=True):
            groups[group].append(len(vectors))
            vectors.append(vector)
        row_targets.extend(targets)
        structure_groups.append(structure)
    return groups, vectors, row_targets, structure_groups


def dual_kernel(
    model: Model, groups: dict[Group, list[int]], vectors: list[np.ndarray], row_targets: list[int]
) -> np.ndarray:
    """K between the rows of ``groups``: feature products times k(i, M) for kernel layers."""
    kernel = np.zeros((len(vectors), len(vectors)))
    factors: dict[tuple[int, int], np.ndarray | None] = {}
    for (l, z, _), indices in groups.items():
        stacked = np.array([vectors[i] for i in indices])
        block = stacked @ stacked.T
        if (l, z) not in factors:
            factors[(l, z)] = layer_of(model, l, z).dual_similarity()
        factor = factors[(l, z)]
        if factor is not None:
            support = [row_targets[i] for i in indices]
            block *= factor[np.ix_(support, support)]
        kernel[np.ix_(indices, indices)] = block
    return kernel


def baseline_of(model: Model, groups: list[Group]) -> np.ndarray:
    """The fixed invariant offset of each coefficient (zero outside l = 0)."""
    out = np.zeros(len(groups))
    for index, (l, z, n) in enumerate(groups):
        baseline = layer_of(model, l, z).baseline
        if baseline is not None:
            out[index] = float(baseline[n])
    return out


def set_dual_weights(
    model: Model,
    groups: dict[Group, list[int]],
    vectors: list[np.ndarray],
    row_targets: list[int],
    alpha: np.ndarray,
) -> None:
    """Set the model's weights from dual weights ``alpha`` of the rows of ``groups``."""
    rows: dict[tuple[int, int], dict[int, DualRows]] = defaultdict(dict)
    for (l, z, n), indices in groups.items():
        stacked = np.array([vectors[i] for i in indices])
        support = [row_targets[i] for i in indices]
        rows[(l, z)][n] = (stacked, alpha[indices], support)
    for (l, z), layer_rows in rows.items():
        layer_of(model, l, z).set_dual_weights(layer_rows)
