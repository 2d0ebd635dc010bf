"""Training a model on RI coefficients with the metric loss, resumable from a checkpoint.

Descriptors are computed once; the model is fitted by Adam on the mean over structures
of ``(d_pred - d_ref)^T S (d_pred - d_ref)``, with a plateau learning-rate scheduler,
early stopping on the validation loss and the best weights kept. After every epoch the
run directory gets ``checkpoint.ckpt`` (everything needed to continue or to rebuild the
model) and a line in ``train.log``. Optimizer 'ridge' is the closed-form fit of
:mod:`rhocore.training.closed_form` alone.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch

from rhocore.data.batching import AtomBatchSampler
from rhocore.data.samples import Sample
from rhocore.descriptors.features import LambdaSoap
from rhocore.errors import InputError
from rhocore.models.atomistic import CoefficientModel, output_name, predict_coefficients
from rhocore.models.base import Model
from rhocore.parallel.progress import progress_bar
from rhocore.qc.basis import BasisLayout
from rhocore.training import distributed
from rhocore.training.checkpoints import (
    CHECKPOINT_FILE,
    build_checkpoint,
    check_same_run,
    load_checkpoint,
    restore_projection,
    save_checkpoint,
)
from rhocore.training.closed_form import fit_ridge, support_count, train_ridge
from rhocore.training.options import TrainingOptions
from rhocore.training.prepared import Prepared, evaluate_loss, prepare, shared_loss
from rhocore.training.run_log import epoch_log, log, logging_into
from rhocore.training.scorers import ValidationScore


@dataclass
class TrainingResult:
    """Outcome of :func:`train`; the model passed in holds the best weights."""

    history: list[dict[str, float]]
    best_epoch: int
    best_loss: float
    stopped_early: bool
    checkpoint: Path

    @classmethod
    def of(cls, state: dict[str, Any], stopped_early: bool, checkpoint: Path) -> TrainingResult:
        """The result of a run that ended in training ``state`` (history and best epoch)."""
        return cls(
            history=state["history"],
            best_epoch=state["best_epoch"],
            best_loss=state["best_loss"],
            stopped_early=stopped_early,
            checkpoint=checkpoint,
        )


@distributed.session()
def train(
    model: Model,
    descriptor: LambdaSoap,
    train_samples: Sequence[Sample],
    validation_samples: Sequence[Sample],
    options: TrainingOptions,
    run_dir: Path,
    resume: bool = True,
    progress: bool = True,
    validation_score: ValidationScore | None = None,
) -> TrainingResult:
    """Fit ``model`` to ``train_samples``; checkpoint and log into ``run_dir``.

    The monitored loss (validation, or training when there is no validation sample) drives
    the scheduler, early stopping and the choice of the best weights. With ``resume`` and
    an existing checkpoint of the same model, training continues after its last epoch.
    Losses are means over structures of ``Δ^T S Δ``. Under ``torchrun`` the processes
    share every step (:mod:`rhocore.training.distributed`) and process 0 alone writes ``run_dir``.
    ``validation_score`` replaces the validation loss in optimizer 'ridge''s choice of
    strength (see :class:`ValidationScore`).
    """
    if not train_samples:
        raise InputError("no training structures: the training set is empty")
    if options.optimizer == "ridge" and distributed.world_size() > 1:
        raise InputError(
            "training.optimizer 'ridge' is one closed-form solve, not shared between "
            f"processes: run it without torchrun (here {distributed.world_size()} processes), "
            "or choose 'adam' or 'lbfgs'"
        )
    run_dir = Path(run_dir)
    progress = progress and distributed.is_main()
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
    with logging_into(run_dir):
        torch.manual_seed(options.seed)
        _reset_parameters(model)
        model.to(dtype=torch.float64)
        model.set_baseline(invariant_means(train_samples, descriptor.layout))
        path = run_dir / CHECKPOINT_FILE
        if descriptor.options.compression is not None:
            resuming = resume and path.exists() and options.optimizer != "ridge"
            checkpoint = path if resuming else None
            _fit_compression(model, descriptor, train_samples, checkpoint, options.seed)
        cutoff = options.metric_cutoff
        training = prepare(descriptor, train_samples, "training", progress, cutoff)
        validation = prepare(descriptor, validation_samples, "validation", progress, cutoff)
        model.prepare(training.features[: support_count(training, options)])
        if options.optimizer == "ridge":
            score = None
            if validation_score is not None:
                score = functools.partial(validation_score, descriptor=descriptor)
            state = train_ridge(model, descriptor, training, validation, options, path, score)
            return TrainingResult.of(state, stopped_early=False, checkpoint=path)
        return _gradient_training(
            model, descriptor, training, validation, options, path, resume, progress
        )


def _gradient_training(
    model: Model,
    descriptor: LambdaSoap,
    training: Prepared,
    validation: Prepared,
    options: TrainingOptions,
    path: Path,
    resume: bool,
    progress: bool,
) -> TrainingResult:
    """Adam or L-BFGS epochs, warm-started in closed form when the model starts linear."""
    warm_start = options.ridge_warm_start and model.starts_linear() and not path.exists()
    warm_loss = float("inf")
    if warm_start:
        warm_loss = fit_ridge(model, descriptor.layout, training, validation, options)["best_loss"]
    distributed.broadcast_state(model)
    optimizer = _optimizer(model, options)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=options.scheduler_factor, patience=options.scheduler_patience
    )
    state: dict[str, Any] = {
        "epoch": 0,
        "history": [],
        "best_state": copy.deepcopy(model.state_dict()),
        "best_epoch": 0,
        "best_loss": warm_loss,
    }
    if resume and path.exists():
        checkpoint = load_checkpoint(path)
        check_same_run(checkpoint, model, descriptor, path)
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        scheduler.load_state_dict(checkpoint["scheduler_state"])
        state = {name: checkpoint[name] for name in state}
        log.info("resuming from %s after epoch %d", path, state["epoch"])

    stopped_early = _stopping(state, options)
    bar = progress_bar(
        desc="training", total=options.epochs, initial=state["epoch"], disable=not progress
    )
    while state["epoch"] < options.epochs and not stopped_early:
        epoch = state["epoch"] + 1
        model.train()
        if options.optimizer == "lbfgs":
            train_loss = _lbfgs_epoch(model, descriptor.layout, training, optimizer, options)
        else:
            train_loss = _adam_epoch(model, descriptor.layout, training, optimizer, options, epoch)
        validation_loss = evaluate_loss(model, descriptor.layout, validation, options.batch_size)
        monitored = train_loss if validation_loss is None else validation_loss
        learning_rate = optimizer.param_groups[0]["lr"]
        scheduler.step(monitored)
        state["history"].append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "validation_loss": validation_loss,
                "learning_rate": learning_rate,
            }
        )
        if monitored < state["best_loss"]:
            state["best_loss"] = monitored
            state["best_epoch"] = epoch
            state["best_state"] = copy.deepcopy(model.state_dict())
        state["epoch"] = epoch
        if distributed.is_main():
            save_checkpoint(
                path, build_checkpoint(model, descriptor, options, optimizer, scheduler, state)
            )
        epoch_log.info(
            "epoch %d train_loss %.6e validation_loss %s lr %.3e",
            epoch,
            train_loss,
            "n/a" if validation_loss is None else f"{validation_loss:.6e}",
            learning_rate,
        )
        bar.update(1)
        bar.set_postfix(train=f"{train_loss:.3e}", val=f"{monitored:.3e}")
        stopped_early = _stopping(state, options)
    bar.close()
    if stopped_early:
        log.info(
            "early stopping after epoch %d (best epoch %d)", state["epoch"], state["best_epoch"]
        )
    model.load_state_dict(state["best_state"])
    model.eval()
    return TrainingResult.of(state, stopped_early=stopped_early, checkpoint=path)


def _fit_compression(
    model: Model,
    descriptor: LambdaSoap,
    train_samples: Sequence[Sample],
    checkpoint: Path | None,
    seed: int,
) -> None:
    """Give ``descriptor`` its compression projection: that of ``checkpoint`` when training
    resumes from one, else one fitted on the training structures (the same in every
    process)."""
    if checkpoint is not None:
        found = load_checkpoint(checkpoint)
        check_same_run(found, model, descriptor, checkpoint)
        if restore_projection(found, descriptor):
            log.info("compression projection restored from %s", checkpoint)
            return
    descriptor.fit_compression([sample.atoms for sample in train_samples], seed)
    distributed.broadcast_state(descriptor.module)


def invariant_means(samples: Sequence[Sample], layout: BasisLayout) -> dict[int, np.ndarray]:
    """Per-species mean of the l = 0 coefficients over all atoms of ``samples``."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for sample in samples:
        for (l, z), block in layout.split(sample.coefficients, sample.atoms.numbers).items():
            if l == 0:
                sums[z] = sums.get(z, 0.0) + block[:, 0, :].sum(axis=0)
                counts[z] = counts.get(z, 0) + block.shape[0]
    return {z: sums[z] / counts[z] for z in sums}


def predict(
    model: Model | torch.jit.ScriptModule,
    descriptor: LambdaSoap,
    frames: Sequence[ase.Atoms],
    batch_size: int = 32,
) -> list[np.ndarray]:
    """Predicted flat canonical coefficient vectors of ``frames``.

    The model being trained runs through the prediction path of model files
    (:func:`rhocore.models.atomistic.predict_coefficients`), so validation scores see what
    ``rhocore predict`` will.
    """
    module = CoefficientModel(descriptor.module, model, output_name("validation"))
    return predict_coefficients(
        module, frames, descriptor.layout, descriptor.options.cutoff, batch_size
    )


def _stopping(state: dict[str, Any], options: TrainingOptions) -> bool:
    return state["epoch"] - state["best_epoch"] >= options.early_stopping_patience


def _optimizer(model: Model, options: TrainingOptions) -> torch.optim.Optimizer:
    if options.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            model.parameters(),
            lr=options.learning_rate,
            max_iter=options.lbfgs_iterations,
            history_size=100,
            line_search_fn="strong_wolfe",
            # metric losses of accurate fits are ~1e-8: never stop on absolute tolerances
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
    return torch.optim.Adam(
        model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay
    )


def _adam_epoch(
    model: Model,
    layout: BasisLayout,
    training: Prepared,
    optimizer: torch.optim.Optimizer,
    options: TrainingOptions,
    epoch: int,
) -> float:
    """One seeded pass of mini-batches; returns the mean training loss."""
    sizes = [len(numbers) for numbers in training.numbers]
    batches = AtomBatchSampler(sizes, options.batch_size, options.batch_atoms, seed=options.seed)
    batches.set_epoch(epoch)
    total = 0.0
    for batch in batches:
        optimizer.zero_grad()
        loss = shared_loss(model, layout, training, batch)
        (loss / len(batch)).backward()
        loss = distributed.sum_gradients(model, loss)
        optimizer.step()
        total += float(loss.detach())
    return total / len(sizes)


def _lbfgs_epoch(
    model: Model,
    layout: BasisLayout,
    training: Prepared,
    optimizer: torch.optim.Optimizer,
    options: TrainingOptions,
) -> float:
    """One full-batch L-BFGS step; returns the mean training loss before it."""
    everything = list(range(len(training.numbers)))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = shared_loss(model, layout, training, everything) / len(everything)
        if options.weight_decay and distributed.is_main():  # once in the summed loss
            loss = loss + 0.5 * options.weight_decay * sum(
                torch.sum(parameter**2) for parameter in model.parameters()
            )
        loss.backward()
        return distributed.sum_gradients(model, loss)

    return float(optimizer.step(closure).detach())


def _reset_parameters(model: Model) -> None:
    """Seeded re-initialisation, so that a run depends only on its options."""
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()
