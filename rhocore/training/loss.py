"""The metric loss of RI coefficients.

The error of a fitted field, integrated over space in the metric of the auxiliary basis,
is ``(d_pred - d_ref)^T S (d_pred - d_ref)``: with S the overlap matrix it is the squared
L2 error of the field, with the Coulomb metric its Coulomb self-energy. Training on it
weighs every coefficient by what it contributes to the field, not by its raw size.
A metric is a dense (n, n) tensor or a :class:`TorchBlockMetric`,
whose loss is summed over atom-pair blocks without a dense n x n tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rhocore.qc.metric import BlockMetric


@dataclass
class _ShapeGroup:
    """The blocks of one shape (n_a, n_b): values (p, n_a, n_b), the functions they span."""

    rows: torch.Tensor
    columns: torch.Tensor
    values: torch.Tensor
    weights: torch.Tensor


@dataclass
class TorchBlockMetric:
    """A :class:`BlockMetric` ready for torch: one stack of blocks per block shape."""

    n_functions: int
    groups: list[_ShapeGroup]

    @classmethod
    def from_blocks(cls, metric: BlockMetric) -> TorchBlockMetric:
        """Group the blocks of ``metric`` by shape (one group per pair of elements, mostly)."""
        sizes = np.diff(metric.offsets)
        pairs = metric.pairs
        starts = metric.block_starts()[:-1]
        first, second = sizes[pairs[:, 0]], sizes[pairs[:, 1]]
        groups = []
        for size_a, size_b in sorted(set(zip(first.tolist(), second.tolist(), strict=True))):
            chosen = np.flatnonzero((first == size_a) & (second == size_b))
            values = np.empty((len(chosen), size_a, size_b))
            flat = values.reshape(len(chosen), -1)
            for row, start in enumerate(starts[chosen]):
                flat[row] = metric.values[start : start + size_a * size_b]
            i, j = pairs[chosen, 0], pairs[chosen, 1]
            groups.append(
                _ShapeGroup(
                    rows=torch.from_numpy(metric.offsets[i][:, None] + np.arange(size_a)),
                    columns=torch.from_numpy(metric.offsets[j][:, None] + np.arange(size_b)),
                    values=torch.from_numpy(values),
                    weights=torch.from_numpy(np.where(i == j, 1.0, 2.0)),
                )
            )
        return cls(metric.n_functions, groups)

    def to_dense(self) -> np.ndarray:
        """The dense symmetric S (dropped pairs are zero)."""
        out = np.zeros((self.n_functions, self.n_functions))
        for group in self.groups:
            rows, columns = group.rows.numpy(), group.columns.numpy()
            values = group.values.numpy()
            out[rows[:, :, None], columns[:, None, :]] = values
            out[columns[:, :, None], rows[:, None, :]] = values.transpose(0, 2, 1)
        return out

    def quadratic(self, vector: torch.Tensor) -> torch.Tensor:
        """``v^T S v`` (differentiable in ``v``), block by block."""
        total = vector.new_zeros(())
        for group in self.groups:
            left = torch.bmm(vector[group.rows].unsqueeze(1), group.values).squeeze(1)
            total = total + torch.sum(group.weights * torch.sum(left * vector[group.columns], 1))
        return total


Metric = torch.Tensor | TorchBlockMetric


def metric_loss_per_structure(
    predictions: Sequence[torch.Tensor],
    references: Sequence[torch.Tensor],
    metrics: Sequence[Metric],
) -> torch.Tensor:
    """``Δ_i^T S_i Δ_i`` of every structure i, shape (n_structures,).

    Vectors are flat canonical coefficients, ``metrics[i]`` the (n, n) metric of structure
    i in the same order (dense or atom-pair blocks). Units: those of the field squared
    times volume (overlap metric).
    """
    if not len(predictions) == len(references) == len(metrics):
        raise ValueError(
            f"got {len(predictions)} predictions, {len(references)} references and "
            f"{len(metrics)} metric matrices; one of each per structure is needed"
        )
    losses = []
    for index, (prediction, reference, metric) in enumerate(
        zip(predictions, references, metrics, strict=True)
    ):
        blocks = isinstance(metric, TorchBlockMetric)
        shape = (metric.n_functions,) * 2 if blocks else tuple(metric.shape)
        if prediction.shape != reference.shape or shape != (len(reference),) * 2:
            raise ValueError(
                f"structure {index}: prediction {tuple(prediction.shape)}, reference "
                f"{tuple(reference.shape)} and metric {shape} do not match"
            )
        delta = prediction - reference
        losses.append(metric.quadratic(delta) if blocks else delta @ (metric @ delta))
    if not losses:
        return torch.zeros(0, dtype=torch.float64)
    return torch.stack(losses)


def metric_loss(
    predictions: Sequence[torch.Tensor],
    references: Sequence[torch.Tensor],
    metrics: Sequence[Metric],
) -> torch.Tensor:
    """Sum over structures of ``Δ^T S Δ`` (see :func:`metric_loss_per_structure`)."""
    return metric_loss_per_structure(predictions, references, metrics).sum()
