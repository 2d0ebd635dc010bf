"""Training samples prepared once: descriptors, torch references and metrics, and the
metric losses of a model over them.

Descriptors are computed once per run; every epoch (and every closed-form strength)
evaluates the model on these cached features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from metatensor.torch import TensorMap

from rhocore.data.samples import Sample
from rhocore.descriptors.features import LambdaSoap
from rhocore.descriptors.tensormaps import (
    split_structures,
    stack_structures,
    tensormap_to_coefficients,
)
from rhocore.models.base import Model
from rhocore.parallel.progress import progress_bar
from rhocore.qc.basis import BasisLayout
from rhocore.qc.metric import BlockMetric
from rhocore.training import distributed
from rhocore.training.loss import Metric, TorchBlockMetric, metric_loss
from rhocore.training.run_log import log

#: Structures per descriptor computation (bounds the memory of featomic's work).
DESCRIPTOR_CHUNK = 64


@dataclass
class Prepared:
    """Cached features and torch references of a set of samples."""

    features: list  # one single-structure TensorMap per sample
    numbers: list[np.ndarray]
    references: list[torch.Tensor]
    metrics: list[Metric]
    stacked: dict[tuple[int, ...], TensorMap] = field(default_factory=dict)

    def batch_features(self, batch: list[int]) -> TensorMap:
        """Features of ``batch`` as one TensorMap; the full batch (this process's share of
        it under torchrun) is stacked only once."""
        if batch == distributed.share(range(len(self.features))):  # all, or this process's
            key = tuple(batch)
            if key not in self.stacked:
                self.stacked[key] = stack_structures([self.features[i] for i in batch])
            return self.stacked[key]
        return stack_structures([self.features[i] for i in batch])


def prepare(
    descriptor: LambdaSoap,
    samples: Sequence[Sample],
    what: str,
    progress: bool,
    metric_cutoff: float | None = None,
) -> Prepared:
    """Descriptors, references and metrics of ``samples`` (the ``what`` set), with the
    metric cut off at ``metric_cutoff`` angstrom when given."""
    features = []
    for start in progress_bar(
        range(0, len(samples), DESCRIPTOR_CHUNK),
        desc=f"descriptors ({what})",
        disable=not progress or not samples,
    ):
        chunk = samples[start : start + DESCRIPTOR_CHUNK]
        computed = descriptor.compute([sample.atoms for sample in chunk])
        features.extend(split_structures(computed, len(chunk)))
    metrics = []
    errors = []
    for index, sample in enumerate(samples):
        size = descriptor.layout.size(sample.atoms.numbers)
        metric = sample.metric
        shape = (metric.n_functions,) * 2 if isinstance(metric, BlockMetric) else metric.shape
        if sample.coefficients.shape != (size,) or shape != (size, size):
            raise ValueError(
                f"{what} structure {index}: coefficients {sample.coefficients.shape} and "
                f"metric {shape} do not match the {size} RI basis functions of its atoms"
            )
        if metric_cutoff is not None:
            if not isinstance(metric, BlockMetric):
                metric = BlockMetric.from_dense(
                    metric, descriptor.layout, sample.atoms, coefficients=sample.coefficients
                )
            metric = metric.truncated(metric_cutoff)
            if metric.norm is not None:
                errors.append(metric.cutoff_error(sample.coefficients))
        if isinstance(metric, BlockMetric):
            metrics.append(TorchBlockMetric.from_blocks(metric))
        else:
            metrics.append(torch.tensor(metric, dtype=torch.float64))
    if errors:
        log.info(
            "%s metric cut off at %g angstrom: d^T S d changes by %.2e on average, %.2e at most "
            "(relative)",
            what,
            metric_cutoff,
            float(np.mean(errors)),
            float(np.max(errors)),
        )
    return Prepared(
        features=features,
        numbers=[np.asarray(sample.atoms.numbers) for sample in samples],
        references=[torch.tensor(s.coefficients, dtype=torch.float64) for s in samples],
        metrics=metrics,
    )


def evaluate_loss(
    model: Model, layout: BasisLayout, prepared: Prepared, batch_size: int
) -> float | None:
    """Mean metric loss over prepared samples (None when there are none)."""
    if not prepared.features:
        return None
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(prepared.features), batch_size):
            batch = list(range(start, min(start + batch_size, len(prepared.features))))
            total += float(shared_loss(model, layout, prepared, batch))
    total = float(distributed.sum_values(torch.tensor(total, dtype=torch.float64)))
    return total / len(prepared.features)


def shared_loss(
    model: Model, layout: BasisLayout, prepared: Prepared, batch: list[int]
) -> torch.Tensor:
    """Sum of the metric losses of this process's share of ``batch`` (all of it in one).

    An empty share gives a zero that backpropagates to no parameter.
    """
    mine = distributed.share(batch)
    if not mine:
        return torch.zeros((), dtype=torch.float64, requires_grad=True)
    return _batch_loss(model, layout, prepared, mine)


def _batch_loss(
    model: Model, layout: BasisLayout, prepared: Prepared, batch: list[int]
) -> torch.Tensor:
    """Sum of the metric losses of the structures ``batch`` of ``prepared``."""
    predictions = tensormap_to_coefficients(
        model(prepared.batch_features(batch)), [prepared.numbers[i] for i in batch], layout
    )
    return metric_loss(
        predictions,
        [prepared.references[i] for i in batch],
        [prepared.metrics[i] for i in batch],
    )
