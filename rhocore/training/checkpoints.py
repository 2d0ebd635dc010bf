"""``checkpoint.ckpt``: the training state of a run, written after every epoch.

A checkpoint holds everything needed to continue training or to rebuild the model. It
carries a format version; an older one is upgraded on reading by the chain of
:data:`UPDATERS`, a newer one is refused naming the release that reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from rhocore import __version__
from rhocore.data.versions import Updater, upgrade
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.errors import InputError, MissingFileError
from rhocore.models.base import Model
from rhocore.plugins.registry import get_registry
from rhocore.qc.basis import BasisLayout
from rhocore.training.options import TrainingOptions

CHECKPOINT_FILE = "checkpoint.ckpt"
#: Format of ``checkpoint.ckpt`` this rhocore writes.
CHECKPOINT_FORMAT_VERSION = 1
#: ``UPDATERS[n]`` turns a format-n checkpoint into format n+1 (none needed yet).
UPDATERS: dict[int, Updater] = {}


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
        raise MissingFileError(f"no checkpoint at '{path}'; train a model with `rhocore train`")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    version = checkpoint.get("format_version") if isinstance(checkpoint, dict) else None
    if not isinstance(version, int):
        raise InputError(f"'{path}' is not a rhocore checkpoint (no format_version)")
    if version > CHECKPOINT_FORMAT_VERSION:
        raise InputError(
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
    restore_projection(checkpoint, descriptor)
    return model, descriptor, layout


def restore_projection(checkpoint: dict[str, Any], descriptor: LambdaSoap) -> bool:
    """Give ``descriptor`` the compression projection of ``checkpoint``; False when the
    checkpoint has none (no compression, or a checkpoint written before it existed)."""
    projection = checkpoint["descriptor"].get("projection")
    if projection is None:
        return False
    descriptor.load_projection(projection)
    return True


def build_checkpoint(
    model: Model,
    descriptor: LambdaSoap,
    options: TrainingOptions,
    optimizer: torch.optim.Optimizer | None,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
    state: dict[str, Any],
) -> dict[str, Any]:
    """The checkpoint of a run: what the model and descriptor are, how it is trained, the
    optimizer and scheduler states (empty without them) and the training ``state``."""
    return {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "rhocore_version": __version__,
        "model": {"name": type(model).name, "hypers": model.hypers()},
        "layout": descriptor.layout.to_json(),
        "descriptor": {
            "options": descriptor.options.model_dump(mode="json"),
            "species": descriptor.species,
        }
        | ({} if descriptor.projection is None else {"projection": descriptor.projection}),
        "training_options": options.model_dump(mode="json"),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer else {},
        "scheduler_state": scheduler.state_dict() if scheduler else {},
        **state,
    }


def check_same_run(
    checkpoint: dict[str, Any], model: Model, descriptor: LambdaSoap, path: Path
) -> None:
    """Refuse to resume from ``checkpoint`` (read from ``path``) unless it was written for
    the same model and descriptor."""
    found = (
        checkpoint["model"]["name"],
        checkpoint["model"]["hypers"],
        # validated, so that options added since the checkpoint compare by their defaults
        DescriptorOptions.model_validate(checkpoint["descriptor"]["options"]).model_dump(
            mode="json"
        ),
        checkpoint["descriptor"]["species"],
    )
    wanted = (
        type(model).name,
        model.hypers(),
        descriptor.options.model_dump(mode="json"),
        descriptor.species,
    )
    if found != wanted:
        raise InputError(
            f"'{path}' belongs to a different model, descriptor or dataset (model "
            f"'{found[0]}' with {found[1]}); use a new run directory, or resume=False "
            "(`--no-resume`) to start over in this one"
        )
