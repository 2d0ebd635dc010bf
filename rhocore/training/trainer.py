"""Training a model on RI coefficients with the metric loss, resumable from a checkpoint.

Descriptors are computed once; the model is fitted by Adam on the mean over structures
of ``(d_pred - d_ref)^T S (d_pred - d_ref)``, with a plateau learning-rate scheduler,
early stopping on the validation loss and the best weights kept. After every epoch the
run directory gets ``checkpoint.ckpt`` (everything needed to continue or to rebuild the
model) and a line in ``train.log``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import ase
import numpy as np
import torch
from metatensor.torch import TensorMap
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from rhocore import __version__
from rhocore.data.batching import AtomBatchSampler
from rhocore.data.versions import Updater, upgrade
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.descriptors.tensormaps import (
    join_samples,
    split_structures,
    stack_structures,
    tensormap_to_coefficients,
)
from rhocore.models.base import Model
from rhocore.plugins.registry import get_registry
from rhocore.qc.backend import PluginOptions
from rhocore.qc.basis import BasisLayout
from rhocore.qc.metric import BlockMetric, TorchBlockMetric
from rhocore.training import distributed
from rhocore.training.loss import Metric, metric_loss

log = logging.getLogger(__name__)
#: Per-epoch lines go to ``train.log`` only; the progress bar shows them on the terminal.
epoch_log = logging.getLogger(f"{__name__}.epochs")
epoch_log.propagate = False

CHECKPOINT_FILE = "checkpoint.ckpt"
LOG_FILE = "train.log"
#: Format of ``checkpoint.ckpt`` this rhocore writes.
CHECKPOINT_FORMAT_VERSION = 1
#: ``UPDATERS[n]`` turns a format-n checkpoint into format n+1 (none needed yet).
UPDATERS: dict[int, Updater] = {}
#: Structures per descriptor computation (bounds the memory of featomic's work).
DESCRIPTOR_CHUNK = 64


class StmSelectionOptions(PluginOptions):
    """The validation images that choose the ridge strength (``training.stm_selection``)."""

    height: float = Field(
        3.0,
        gt=0,
        description="Set point of the constant-current images: the reference's mean field "
        "this far above the topmost atom (angstrom) is the isovalue of both images.",
    )
    height_scale_pm: float = Field(
        10.0,
        gt=0,
        description="Tip-height RMSE (pm) that counts as much as nmae_scale_percent of field "
        "NMAE in the score max(height RMSE / height_scale_pm, NMAE / nmae_scale_percent).",
    )
    nmae_scale_percent: float = Field(
        10.0, gt=0, description="Field NMAE above the topmost atom (%) that counts as one."
    )
    spacing: float = Field(0.15, gt=0, description="In-plane grid spacing (angstrom).")


class TrainingOptions(PluginOptions):
    """How a model is fitted (the ``training`` section of a configuration)."""

    optimizer: Literal["adam", "lbfgs", "ridge"] = Field(
        "adam",
        description="'adam': mini-batch Adam; 'lbfgs': full-batch L-BFGS with a strong-Wolfe "
        "line search, one step of up to lbfgs_iterations iterations per epoch; 'ridge': the "
        "exact least-squares solution of the linear model (closed form, regularisation "
        "chosen on the validation set; up to a few hundred small molecules).",
    )
    ridge_warm_start: bool = Field(
        True,
        description="With 'adam' or 'lbfgs', start from the closed-form linear solution when "
        "the model starts out linear (the 'nonlinear' model with one head does).",
    )
    ridge_regularizations: list[float] = Field(
        [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4],
        min_length=1,
        description="Ridge strengths tried by optimizer 'ridge' (units of the metric loss "
        "per squared weight); the one with the lowest validation loss (or, with "
        "ridge_selection 'stm-images', the best validation images) is kept.",
    )
    ridge_max_support: int | None = Field(
        None,
        ge=1,
        description="Most training coefficients that span the closed-form ridge solution (the "
        "support; for the 'kernel' model its support atoms). A larger training set keeps its "
        "first structures up to this many coefficients as the support and fits on every "
        "structure (subset-of-regressors ridge: N M^2 time, 3 M^2 memory). None: as many as "
        "one dense matrix holds (23 000: the solver holds three such matrices, 12.7 GB).",
    )
    ridge_selection: Literal["loss", "stm-images"] = Field(
        "loss",
        description="How optimizer 'ridge' chooses among ridge_regularizations: 'loss', the "
        "validation metric loss; 'stm-images' (ILDOS targets), constant-current images of "
        "the validation structures against their RI references, scored as set in "
        "stm_selection. Use 'stm-images' with the squared relative metric, whose "
        "validation loss is dominated by the far vacuum that no image sees.",
    )
    stm_selection: StmSelectionOptions = Field(
        default_factory=StmSelectionOptions,
        description="Images and score of ridge_selection 'stm-images'.",
    )
    epochs: int = Field(300, ge=1, description="Maximum number of passes over the training set.")
    learning_rate: float = Field(
        1e-2, gt=0, description="Initial learning rate (Adam), step scale (L-BFGS, use 1)."
    )
    batch_size: int = Field(8, ge=1, description="Structures per optimisation step (Adam).")
    batch_atoms: int | None = Field(
        None,
        ge=1,
        description="When set, Adam batches hold up to this many atoms instead of batch_size "
        "structures (a larger structure is a batch of its own), which bounds the memory of "
        "a step for structures of very different sizes.",
    )
    metric_cutoff: float | None = Field(
        None,
        gt=0,
        description="Keep only the metric blocks of atom pairs at most this far apart "
        "(angstrom; minimum image in periodic cells); None keeps all pairs. Memory then grows "
        "linearly with the atoms; the relative change of d^T S d it causes is logged.",
    )
    num_workers: int = Field(
        0,
        ge=0,
        description="Data-loader worker processes that read the dataset file (0: read in "
        "the main process).",
    )
    lbfgs_iterations: int = Field(20, ge=1, description="L-BFGS iterations per epoch.")
    weight_decay: float = Field(
        0.0, ge=0, description="L2 penalty on the parameters (per structure-mean loss)."
    )
    scheduler_factor: float = Field(
        0.5, gt=0, lt=1, description="Learning-rate factor when the monitored loss plateaus."
    )
    scheduler_patience: int = Field(
        10, ge=0, description="Epochs without improvement before the learning rate is reduced."
    )
    early_stopping_patience: int = Field(
        50, ge=1, description="Epochs without improvement before training stops."
    )
    seed: int = Field(0, description="Seed of parameter initialisation and batch order.")
    device: Literal["cpu"] = Field("cpu", description="Torch device.")
    dtype: Literal["float64"] = Field("float64", description="Floating-point precision.")

    @model_validator(mode="after")
    def _images_choose_ridge_strengths_only(self) -> TrainingOptions:
        if self.ridge_selection == "stm-images" and self.optimizer != "ridge":
            raise ValueError(
                "training.ridge_selection 'stm-images' chooses among the ridge strengths of "
                f"optimizer 'ridge', not for optimizer '{self.optimizer}': set "
                "training.optimizer: ridge, or ridge_selection: loss"
            )
        return self


class ValidationScore(Protocol):
    """Scores of a trained model on the validation structures; the lowest "score" wins."""

    def __call__(self, model: Model, descriptor: LambdaSoap) -> dict[str, float]: ...


@dataclass
class Sample:
    """One training structure: atoms (angstrom), reference coefficients d and metric S.

    The metric is dense (n, n) or atom-pair blocks (:class:`~rhocore.qc.metric.BlockMetric`).
    """

    atoms: ase.Atoms
    coefficients: np.ndarray
    metric: np.ndarray | BlockMetric


@dataclass
class TrainingResult:
    """Outcome of :func:`train`; the model passed in holds the best weights."""

    history: list[dict[str, float]]
    best_epoch: int
    best_loss: float
    stopped_early: bool
    checkpoint: Path


@dataclass
class _Prepared:
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
        raise ValueError("no training structures: the training set is empty")
    if options.optimizer == "ridge" and distributed.world_size() > 1:
        raise ValueError(
            "training.optimizer 'ridge' is one closed-form solve, not shared between "
            f"processes: run it without torchrun (here {distributed.world_size()} processes), "
            "or choose 'adam' or 'lbfgs'"
        )
    run_dir = Path(run_dir)
    progress = progress and distributed.is_main()
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
    with _logging_into(run_dir):
        torch.manual_seed(options.seed)
        _reset_parameters(model)
        model.to(dtype=torch.float64)
        model.set_baseline(invariant_means(train_samples, descriptor.layout))
        cutoff = options.metric_cutoff
        training = _prepare(descriptor, train_samples, "training", progress, cutoff)
        validation = _prepare(descriptor, validation_samples, "validation", progress, cutoff)
        model.prepare(training.features[: _support_count(training, options)])
        path = run_dir / CHECKPOINT_FILE
        if options.optimizer == "ridge":
            score = None
            if validation_score is not None:
                score = functools.partial(validation_score, descriptor=descriptor)
            return _ridge(model, descriptor, training, validation, options, path, score)
        return _gradient_training(
            model, descriptor, training, validation, options, path, resume, progress
        )


def _support_count(training: _Prepared, options: TrainingOptions) -> int:
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


@contextlib.contextmanager
def _logging_into(run_dir: Path) -> Iterator[None]:
    """Send this module's log lines (per-epoch ones included) to ``run_dir/train.log``."""
    if not distributed.is_main():
        yield
        return
    handler = logging.FileHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    for logger in (log, epoch_log):
        logger.addHandler(handler)
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger in (log, epoch_log):
            logger.removeHandler(handler)
        handler.close()


def _gradient_training(
    model: Model,
    descriptor: LambdaSoap,
    training: _Prepared,
    validation: _Prepared,
    options: TrainingOptions,
    path: Path,
    resume: bool,
    progress: bool,
) -> TrainingResult:
    """Adam or L-BFGS epochs, warm-started in closed form when the model starts linear."""
    warm_start = options.ridge_warm_start and model.starts_linear() and not path.exists()
    warm_loss = float("inf")
    if warm_start:
        warm_loss = _fit_ridge(model, descriptor.layout, training, validation, options)["best_loss"]
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
        _check_same_run(checkpoint, model, descriptor, path)
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        scheduler.load_state_dict(checkpoint["scheduler_state"])
        state = {name: checkpoint[name] for name in state}
        log.info("resuming from %s after epoch %d", path, state["epoch"])

    stopped_early = _stopping(state, options)
    bar = tqdm(total=options.epochs, initial=state["epoch"], disable=not progress, desc="training")
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
                path, _checkpoint(model, descriptor, options, optimizer, scheduler, state)
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
    return TrainingResult(
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_loss=state["best_loss"],
        stopped_early=stopped_early,
        checkpoint=path,
    )


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


def evaluate_loss(
    model: Model, layout: BasisLayout, prepared: _Prepared, batch_size: int
) -> float | None:
    """Mean metric loss over prepared samples (None when there are none)."""
    if not prepared.features:
        return None
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(prepared.features), batch_size):
            batch = list(range(start, min(start + batch_size, len(prepared.features))))
            total += float(_shared_loss(model, layout, prepared, batch))
    total = float(distributed.sum_values(torch.tensor(total, dtype=torch.float64)))
    return total / len(prepared.features)


def predict(
    model: Model | torch.jit.ScriptModule,
    descriptor: LambdaSoap,
    frames: Sequence[ase.Atoms],
    batch_size: int = 32,
) -> list[np.ndarray]:
    """Predicted flat canonical coefficient vectors of ``frames``."""
    out: list[np.ndarray] = []
    frames = list(frames)
    with torch.no_grad():
        for start in range(0, len(frames), batch_size):
            chunk = frames[start : start + batch_size]
            pieces = descriptor.compute_chunks(chunk)
            prediction = join_samples([model(piece) for piece in pieces])
            vectors = tensormap_to_coefficients(
                prediction, [atoms.numbers for atoms in chunk], descriptor.layout
            )
            out.extend(vector.numpy().copy() for vector in vectors)
    return out


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` atomically, so an interrupted write leaves the previous one."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(checkpoint, partial)
    os.replace(partial, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint and update it to the current format version."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at '{path}'; train a model with `rhocore train`")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    version = checkpoint.get("format_version") if isinstance(checkpoint, dict) else None
    if not isinstance(version, int):
        raise ValueError(f"'{path}' is not a rhocore checkpoint (no format_version)")
    if version > CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"'{path}' has checkpoint format version {version}, written by rhocore "
            f"{checkpoint.get('rhocore_version', 'unknown')}; this rhocore {__version__} reads "
            f"format versions up to {CHECKPOINT_FORMAT_VERSION}. Install rhocore>="
            f"{checkpoint.get('rhocore_version', 'unknown')} to read it."
        )
    checkpoint = upgrade(
        checkpoint, version, CHECKPOINT_FORMAT_VERSION, UPDATERS, f"'{path}' has checkpoint"
    )
    return checkpoint


def load_model(path: Path) -> tuple[Model, LambdaSoap, BasisLayout]:
    """The best model of a checkpoint, its descriptor and basis layout, ready to predict."""
    checkpoint = load_checkpoint(path)
    model_cls = get_registry().get("model", checkpoint["model"]["name"])
    model = model_cls.from_hypers(checkpoint["model"]["hypers"])
    model.load_state_dict(checkpoint["best_state"])
    model.eval()
    layout = BasisLayout.from_json(checkpoint["layout"])
    options = DescriptorOptions.model_validate(checkpoint["descriptor"]["options"])
    descriptor = LambdaSoap(options, layout, checkpoint["descriptor"]["species"])
    return model, descriptor, layout


def _checkpoint(
    model: Model,
    descriptor: LambdaSoap,
    options: TrainingOptions,
    optimizer: torch.optim.Optimizer | None,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
    state: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "rhocore_version": __version__,
        "model": {"name": type(model).name, "hypers": model.hypers()},
        "layout": descriptor.layout.to_json(),
        "descriptor": {
            "options": descriptor.options.model_dump(mode="json"),
            "species": descriptor.species,
        },
        "training_options": options.model_dump(mode="json"),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer else {},
        "scheduler_state": scheduler.state_dict() if scheduler else {},
        **state,
    }


def _check_same_run(
    checkpoint: dict[str, Any], model: Model, descriptor: LambdaSoap, path: Path
) -> None:
    found = (
        checkpoint["model"]["name"],
        checkpoint["model"]["hypers"],
        checkpoint["descriptor"]["options"],
        checkpoint["descriptor"]["species"],
    )
    wanted = (
        type(model).name,
        model.hypers(),
        descriptor.options.model_dump(mode="json"),
        descriptor.species,
    )
    if found != wanted:
        raise ValueError(
            f"'{path}' belongs to a different model, descriptor or dataset (model "
            f"'{found[0]}' with {found[1]}); use a new run directory, or resume=False "
            "(`--no-resume`) to start over in this one"
        )


def _stopping(state: dict[str, Any], options: TrainingOptions) -> bool:
    return state["epoch"] - state["best_epoch"] >= options.early_stopping_patience


def _fit_ridge(
    model: Model,
    layout: BasisLayout,
    training: _Prepared,
    validation: _Prepared,
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
        raise ValueError(
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
        raise ValueError(
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


def _ridge(
    model: Model,
    descriptor: LambdaSoap,
    training: _Prepared,
    validation: _Prepared,
    options: TrainingOptions,
    path: Path,
    score: Callable[[Model], dict[str, float]] | None = None,
) -> TrainingResult:
    """Train a linear model in closed form (optimizer 'ridge')."""
    if not model.starts_linear():
        raise ValueError(
            f"training.optimizer 'ridge' solves the linear model only; train "
            f"'{type(model).name}' with 'adam' or 'lbfgs'"
        )
    state = _fit_ridge(model, descriptor.layout, training, validation, options, score)
    model.eval()
    save_checkpoint(path, _checkpoint(model, descriptor, options, None, None, state))
    return TrainingResult(
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_loss=state["best_loss"],
        stopped_early=False,
        checkpoint=path,
    )


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
    training: _Prepared,
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
        loss = _shared_loss(model, layout, training, batch)
        (loss / len(batch)).backward()
        loss = distributed.sum_gradients(model, loss)
        optimizer.step()
        total += float(loss.detach())
    return total / len(sizes)


def _lbfgs_epoch(
    model: Model,
    layout: BasisLayout,
    training: _Prepared,
    optimizer: torch.optim.Optimizer,
    options: TrainingOptions,
) -> float:
    """One full-batch L-BFGS step; returns the mean training loss before it."""
    everything = list(range(len(training.numbers)))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _shared_loss(model, layout, training, everything) / len(everything)
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


def _prepare(
    descriptor: LambdaSoap,
    samples: Sequence[Sample],
    what: str,
    progress: bool,
    metric_cutoff: float | None = None,
) -> _Prepared:
    features = []
    for start in tqdm(
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
            metrics.append(metric.to_torch())
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
    return _Prepared(
        features=features,
        numbers=[np.asarray(sample.atoms.numbers) for sample in samples],
        references=[torch.tensor(s.coefficients, dtype=torch.float64) for s in samples],
        metrics=metrics,
    )


def _shared_loss(
    model: Model, layout: BasisLayout, prepared: _Prepared, batch: list[int]
) -> torch.Tensor:
    """Sum of the metric losses of this process's share of ``batch`` (all of it in one).

    An empty share gives a zero that backpropagates to no parameter.
    """
    mine = distributed.share(batch)
    if not mine:
        return torch.zeros((), dtype=torch.float64, requires_grad=True)
    return _batch_loss(model, layout, prepared, mine)


def _dense(metric: Metric) -> np.ndarray:
    """A prepared metric as a dense array (closed-form solvers need the whole matrix)."""
    if isinstance(metric, TorchBlockMetric):
        return metric.to_dense()
    return metric.numpy()


def _batch_loss(
    model: Model, layout: BasisLayout, prepared: _Prepared, batch: list[int]
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
