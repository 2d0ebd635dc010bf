"""The metric loss of RI coefficients.

The error of a fitted field, integrated over space in the metric of the auxiliary basis,
is ``(d_pred - d_ref)^T S (d_pred - d_ref)``: with S the overlap matrix it is the squared
L2 error of the field, with the Coulomb metric its Coulomb self-energy. Training on it
weighs every coefficient by what it contributes to the field, not by its raw size.
A metric is a dense (n, n) tensor or a :class:`~rhocore.qc.metric.TorchBlockMetric`,
whose loss is summed over atom-pair blocks without a dense n x n tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rhocore.qc.metric import TorchBlockMetric

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
