"""``rhocore train``: dataset.h5 + model/training options -> run directory.

The validation structures come from the dataset's seeded random split, or from a second
dataset of the same backend, target and metric (``--validation-dataset``) when the
structures were divided beforehand, e.g. by molecule identity so that no conformer of a
validation molecule is trained on.

The run directory gets ``options_restart.yaml`` (the fully expanded configuration),
``split.json``, ``train.log``, ``checkpoint.ckpt`` (resumable) and ``model.pt`` (the
metatomic model file, :mod:`rhocore.models.file`) with its ``extensions/`` folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from rhocore.data.dataset import Dataset
from rhocore.data.loader import load_samples as read_samples
from rhocore.data.provenance import data_target
from rhocore.data.samples import Sample
from rhocore.descriptors.features import LambdaSoap
from rhocore.errors import InputError
from rhocore.models.file import save_model_file
from rhocore.plugins.registry import PluginError, get_registry
from rhocore.training import distributed
from rhocore.training.options import TrainingOptions
from rhocore.training.scorers import Scorers
from rhocore.training.trainer import TrainingResult, train
from rhocore.workflows.config import ResolvedConfig
from rhocore.workflows.dataset_merge import merged_metadata

log = logging.getLogger(__name__)


@dataclass
class Split:
    """Dataset indices for training, validation and the held-out test set.

    ``validation`` indexes ``validation_dataset`` when one is given, else the training
    dataset, like ``train`` and ``test``.
    """

    train: list[int]
    validation: list[int]
    test: list[int]
    validation_dataset: Path | None = None

    def as_dict(self) -> dict[str, list[int] | str]:
        """JSON-ready."""
        out: dict[str, list[int] | str] = {
            "train": self.train,
            "validation": self.validation,
            "test": self.test,
        }
        if self.validation_dataset is not None:
            out["validation_dataset"] = str(self.validation_dataset)
        return out


def split_indices(
    indices: list[int], test_fraction: float, validation_fraction: float, seed: int
) -> Split:
    """A seeded random split; test and validation get at least one structure when asked."""
    order = np.random.default_rng(seed).permutation(sorted(indices)).tolist()
    n_test = int(round(test_fraction * len(order))) if test_fraction > 0 else 0
    n_test = max(n_test, 1) if test_fraction > 0 else 0
    rest = order[n_test:]
    n_val = max(int(round(validation_fraction * len(rest))), 1) if validation_fraction > 0 else 0
    if len(rest) - n_val < 1:
        raise InputError(
            f"{len(indices)} finished structures are too few for test fraction "
            f"{test_fraction} and validation fraction {validation_fraction}"
        )
    return Split(
        train=sorted(rest[n_val:]), validation=sorted(rest[:n_val]), test=sorted(order[:n_test])
    )


def load_samples(
    dataset: Dataset,
    indices: list[int],
    options: TrainingOptions | None = None,
    progress: bool = False,
) -> list[Sample]:
    """Structures, reference coefficients and atom-pair metric blocks of ``indices``.

    Only the blocks within ``options.metric_cutoff`` are read (all without options);
    ``options.num_workers`` data-loader processes read the file in parallel.
    """
    options = options or TrainingOptions()
    return read_samples(
        dataset,
        indices,
        metric_cutoff=options.metric_cutoff,
        num_workers=options.num_workers,
        progress=progress,
    )


@distributed.session()
def train_run(
    config: ResolvedConfig,
    dataset_path: Path,
    run_dir: Path,
    *,
    split: Split | None = None,
    validation_dataset: Path | None = None,
    progress: bool = True,
    scorers: Scorers | None = None,
) -> TrainingResult:
    """Train the configured model on a dataset and export it to ``run_dir/model.pt``.

    ``split`` overrides the seeded random split of the config's ``split`` section. With
    ``validation_dataset`` (or a ``split`` that names one) every structure of that dataset
    validates, and the training dataset is split into training and test structures only. Under
    ``torchrun`` the processes share the training and process 0 alone writes ``run_dir``.
    ``scorers`` are the validation scorers ``training.ridge_selection`` may name (default:
    every registered scorer).
    """
    run_dir = Path(run_dir)
    main = distributed.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    dataset = Dataset(Path(dataset_path))
    if validation_dataset is None and split is not None:
        validation_dataset = split.validation_dataset
    validation_path = Path(validation_dataset or dataset_path)
    validation_set = Dataset(validation_path) if validation_dataset else dataset
    metadata = (
        merged_metadata([dataset, validation_set]) if validation_dataset else dataset.metadata
    )
    if split is None:
        split_options = config.raw.split
        split = split_indices(
            dataset.indices(),
            split_options.test_fraction,
            0.0 if validation_dataset else split_options.validation_fraction,
            split_options.seed,
        )
        if validation_dataset:
            split.validation = validation_set.indices()
    if validation_dataset:
        split.validation_dataset = validation_path
    restart = config.to_dict()
    restart["backend"] = {"name": metadata.backend_name, "options": metadata.backend_options}
    restart["target"] = {"name": metadata.target_name, "options": metadata.target_options}
    if main:
        (run_dir / "split.json").write_text(json.dumps(split.as_dict(), indent=1))
        (run_dir / "options_restart.yaml").write_text(yaml.safe_dump(restart, sort_keys=False))

    species = metadata.layout.species
    descriptor = LambdaSoap(config.descriptor_options, metadata.layout, species)
    model = config.model_cls(config.model_options, metadata.layout, descriptor.feature_sizes())
    log.info(
        "training %s on %d structures (%d validation, %d held out) from %s",
        config.model_cls.name,
        len(split.train),
        len(split.validation),
        len(split.test),
        dataset_path,
    )
    options = config.training_options
    scorers = scorers or Scorers(get_registry().classes("scorer"))
    score = scorers.build(
        options.ridge_selection,
        options.ridge_selection_options,
        validation_path,
        split.validation,
    )
    result = train(
        model,
        descriptor,
        load_samples(dataset, split.train, options, progress),
        load_samples(validation_set, split.validation, options, progress),
        options,
        run_dir,
        progress=progress,
        validation_score=score,
    )
    if main:
        save_model_file(
            run_dir / "model.pt",
            model,
            config.descriptor_options,
            species,
            metadata,
            split.as_dict(),
            net_charges(dataset, split.train),
            descriptor.projection,
        )
    return result


def net_charges(dataset: Dataset, indices: list[int]) -> list[int] | None:
    """Distinct nuclear charge minus electron count of the structures ``indices`` of a
    total-density dataset (recorded in the model file); None for other fields, or where an
    electron count is missing."""
    try:
        if not data_target(dataset.metadata).is_total_density:
            return None
    except PluginError:
        return None
    charges = set()
    for index in indices:
        electrons = dataset.expected_integral(index)
        if electrons is None:
            return None
        charges.add(round(int(dataset.atoms(index).numbers.sum()) - electrons))
    return sorted(charges)
