"""Closed-form ridge fit of a model that starts out linear.

Optimizer 'ridge' is this fit alone; 'adam' and 'lbfgs' start from it (``ridge_warm_start``).
One least-squares problem in the metric is set up once and solved for every strength of
``training.ridge_regularizations``; the validation loss, or a validation score, chooses one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rhocore.descriptors.features import LambdaSoap
from rhocore.errors import InputError
from rhocore.models.base import Model
from rhocore.qc.basis import BasisLayout
from rhocore.training.checkpoints import build_checkpoint, save_checkpoint
from rhocore.training.loss import Metric, TorchBlockMetric
from rhocore.training.options import TrainingOptions
from rhocore.training.prepared import Prepared, evaluate_loss
from rhocore.training.run_log import epoch_log, log


def support_count(training: Prepared, options: TrainingOptions) -> int:
    """How many leading training structures a ``kernel`` model takes its support atoms
    from: all, unless closed-form ridge needs a smaller support (``ridge_max_support``)."""
    from rhocore.models.linear.support_ridge import support_structures

    sizes = [len(reference) for reference in training.references]
    if options.optimizer != "ridge" and not options.ridge_warm_start:
        return len(sizes)
    count = support_structures(sizes, options.ridge_max_support)
    if count < len(sizes):
        log.info(
            "closed-form ridge: the first %d of %d training structures (%d coefficients) "
            "span the solution; every structure enters the fit",
            count,
            len(sizes),
            sum(sizes[:count]),
        )
    return count


def fit_ridge(
    model: Model,
    layout: BasisLayout,
    training: Prepared,
    validation: Prepared,
    options: TrainingOptions,
    score: Callable[[Model], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Closed-form linear fit for each regularisation; the model keeps the best one.

    The best has the lowest validation loss, or the lowest ``score(model)["score"]`` when
    a score is given (its other entries go into the history). Returns the training state
    (history, best epoch, the loss of the best, its state) of this search.
    """
    from rhocore.models.linear.ridge import UnsolvableStrength
    from rhocore.models.linear.support_ridge import ridge_problem

    if not validation.features and len(options.ridge_regularizations) > 1:
        raise InputError(
            "the closed-form ridge fit chooses its regularisation on validation structures: "
            "set split.validation_fraction > 0 or give one training.ridge_regularizations value"
        )
    began = time.perf_counter()
    problem = ridge_problem(
        model,
        training.features,
        training.numbers,
        [reference.numpy() for reference in training.references],
        [_dense(metric) for metric in training.metrics],
        options.ridge_max_support,
    )
    log.info("closed-form ridge: problem set up in %.1f s", time.perf_counter() - began)
    state: dict[str, Any] = {"epoch": 0, "history": [], "best_epoch": 0, "best_loss": float("inf")}
    best_rank = float("inf")
    for step, regularization in enumerate(options.ridge_regularizations, start=1):
        try:
            problem.apply(regularization)
        except UnsolvableStrength as error:
            log.warning("skipped: %s", error)
            continue
        train_loss = evaluate_loss(model, layout, training, options.batch_size)
        validation_loss = evaluate_loss(model, layout, validation, options.batch_size)
        monitored = train_loss if validation_loss is None else validation_loss
        scores = {} if score is None else score(model)
        state["history"].append(
            {
                "epoch": step,
                "train_loss": train_loss,
                "validation_loss": validation_loss,
                "regularization": regularization,
                **{f"validation_{name}": value for name, value in scores.items()},
            }
        )
        epoch_log.info(
            "ridge %.1e train_loss %.6e validation_loss %s%s",
            regularization,
            train_loss,
            "n/a" if validation_loss is None else f"{validation_loss:.6e}",
            "".join(f" {name} {value:.4g}" for name, value in scores.items()),
        )
        rank = scores["score"] if scores else monitored
        if rank < best_rank:
            best_rank = rank
            state.update(best_loss=monitored, best_epoch=step)
            state["best_state"] = copy.deepcopy(model.state_dict())
        state["epoch"] = step
    if "best_state" not in state:
        raise InputError(
            "no ridge strength of training.ridge_regularizations could be solved; "
            "give larger values"
        )
    model.load_state_dict(state["best_state"])
    log.info(
        "closed-form linear fit: regularisation %.1e kept (loss %.3e%s)",
        options.ridge_regularizations[state["best_epoch"] - 1],
        state["best_loss"],
        "" if score is None else f", validation score {best_rank:.4g}",
    )
    return state


def train_ridge(
    model: Model,
    descriptor: LambdaSoap,
    training: Prepared,
    validation: Prepared,
    options: TrainingOptions,
    path: Path,
    score: Callable[[Model], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Train a linear model in closed form (optimizer 'ridge') and checkpoint it at ``path``;
    returns the training state of the search, as :func:`fit_ridge` does."""
    if not model.starts_linear():
        raise InputError(
            f"training.optimizer 'ridge' solves the linear model only; train "
            f"'{type(model).name}' with 'adam' or 'lbfgs'"
        )
    state = fit_ridge(model, descriptor.layout, training, validation, options, score)
    model.eval()
    save_checkpoint(path, build_checkpoint(model, descriptor, options, None, None, state))
    return state


def _dense(metric: Metric) -> np.ndarray:
    """A prepared metric as a dense array (closed-form solvers need the whole matrix)."""
    if isinstance(metric, TorchBlockMetric):
        return metric.to_dense()
    return metric.numpy()
