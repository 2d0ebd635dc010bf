"""``model.pt``: a trained model as one metatomic ``AtomisticModel`` with rhocore's metadata.

The file is what metatomic engines load (:mod:`rhocore.models.atomistic`: structures ->
lambda-SOAP -> model -> RI coefficients, output ``rhocore::<target>``); next to it, the
``extensions/`` folder holds the TorchScript extensions it needs (featomic-torch), so it
also runs where featomic is not installed. ``ModelMetadata.extra["rhocore"]`` is a JSON
document with all rhocore needs besides: the RI basis layout and coefficient order, the
descriptor hyper-parameters and species, the model's name and hyper-parameters, the
target, backend and dataset metadata of the training data, units, and the held-out test
indices of the training dataset.

Files of the earlier format (a TorchScript model with a ``rhocore.json`` extra file, model
file version 1) still load: their model is wrapped in memory as the file would hold it,
and ``rhocore export OLD.pt -o NEW.pt`` converts them.
"""

from __future__ import annotations

import copy
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch
from metatomic.torch import AtomisticModel, load_atomistic_model

from rhocore import __version__
from rhocore.data.dataset import DatasetMetadata
from rhocore.data.dataset.format import UNITS
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.errors import InputError, MissingFileError, RhocoreError
from rhocore.models.atomistic import (
    METADATA_KEY,
    CoefficientModel,
    atomistic_model,
    output_name,
    predict_coefficients,
)
from rhocore.qc.basis import BasisLayout

MODEL_FILE = "model.pt"
#: The folder next to a model file with the TorchScript extensions it needs.
EXTENSIONS_DIRECTORY = "extensions"
MODEL_FORMAT = "rhocore-model"
MODEL_FILE_VERSION = 2
#: Extra file of the version-1 format (TorchScript model + this JSON).
LEGACY_METADATA_FILE = "rhocore.json"
#: Extra file of every metatomic model (its ``ModelMetadata``).
METATOMIC_METADATA_FILE = "model-metadata"


@dataclass
class ModelFile:
    """A model file: its model and rhocore's metadata.

    ``model`` is a :class:`CoefficientModel` (a trained or version-1 model), or the
    metatomic model of a loaded file (which keeps the neighbour lists its featomic
    calculator requests, lost in its scripted modules).
    """

    model: torch.nn.Module
    layout: BasisLayout
    metadata: dict[str, Any]

    @property
    def module(self) -> torch.nn.Module:
        """The :class:`CoefficientModel` (eager or scripted) that predicts."""
        return self.model.module if isinstance(self.model, AtomisticModel) else self.model

    @property
    def dataset_metadata(self) -> DatasetMetadata:
        """Backend and target of the data the model was trained on."""
        return DatasetMetadata.from_attrs(self.metadata["dataset"], source="model file")

    @property
    def test_indices(self) -> list[int]:
        """Indices of the training dataset that were held out from training."""
        return list(self.metadata.get("split", {}).get("test", []))

    @property
    def net_charges(self) -> list[int] | None:
        """Distinct nuclear charge minus electron count of the training structures of a
        total-density model (all-electron data: their net charges); None if not recorded."""
        charges = self.metadata.get("net_charges")
        return None if charges is None else [int(q) for q in charges]

    @property
    def species(self) -> list[int]:
        """Atomic numbers the model knows."""
        return [int(z) for z in self.metadata["species"]]

    @property
    def descriptor_options(self) -> DescriptorOptions:
        """Hyper-parameters of the model's lambda-SOAP descriptor."""
        return DescriptorOptions.model_validate(self.metadata["descriptor"])

    def predict(self, frames: list[ase.Atoms]) -> list[np.ndarray]:
        """Canonical coefficient vectors predicted for ``frames``."""
        return predict_coefficients(
            self.module, frames, self.layout, self.descriptor_options.cutoff
        )

    def atomistic(self) -> AtomisticModel:
        """The metatomic model this file is (or, for a version-1 file, becomes)."""
        target = self.metadata["target"]["name"]
        backend = self.metadata["backend"]["name"]
        model_name = self.metadata["model"]["name"]
        return atomistic_model(
            self.model,
            self.metadata["output"],
            self.species,
            self.descriptor_options.cutoff,
            self.metadata,
            name=f"rhocore {model_name} model of {target}",
            description=(
                f"RI coefficients of the {target} field ({backend} backend) predicted from "
                f"lambda-SOAP features; output {self.metadata['output']}. Coefficient "
                f"layout and units: metadata extra['{METADATA_KEY}']."
            ),
        )

    def save(self, path: Path, extensions: Path | None = None) -> Path:
        """Write the model to ``path`` and the extensions it needs to ``extensions``
        (default: the ``extensions/`` folder next to it, replaced); returns that folder."""
        path = Path(path)
        extensions = path.parent / EXTENSIONS_DIRECTORY if extensions is None else extensions
        self.atomistic().save(str(path), collect_extensions=str(extensions))
        return extensions


class PredictionError(RhocoreError, ValueError):
    """A model whose prediction cannot be used (NaN or infinite coefficients)."""


def checked_prediction(model: ModelFile, atoms: ase.Atoms, label: str) -> np.ndarray:
    """The coefficients ``model`` predicts for ``atoms``, refused if any is NaN or infinite.

    ``label`` names the structure in the error, so that a broken prediction is reported
    instead of written to a file or an image.
    """
    vector = model.predict([atoms])[0]
    bad = int(np.sum(~np.isfinite(vector)))
    if bad:
        raise PredictionError(
            f"the model predicted {bad} NaN or infinite coefficients for {label} "
            f"({atoms.get_chemical_formula()}); the model is broken (diverged training?): "
            "retrain it"
        )
    return vector


def model_info(
    model_name: str,
    model_hypers: dict[str, Any],
    descriptor_options: DescriptorOptions,
    species: list[int],
    dataset: DatasetMetadata,
    split: dict[str, list[int]],
    net_charges: list[int] | None = None,
) -> dict[str, Any]:
    """The JSON document of ``ModelMetadata.extra["rhocore"]``: all a user (or rhocore)
    needs besides the file. ``net_charges``: see :attr:`ModelFile.net_charges`."""
    layout = dataset.layout
    assert layout is not None, "a model is trained on a dataset with a basis layout"
    return {
        "format": MODEL_FORMAT,
        "model_file_version": MODEL_FILE_VERSION,
        "rhocore_version": __version__,
        "output": output_name(dataset.target_name),
        "target": {"name": dataset.target_name, "options": dataset.target_options},
        "backend": {
            "name": dataset.backend_name,
            "version": dataset.backend_version,
            "options": dataset.backend_options,
        },
        "metric_kind": dataset.metric_kind,
        "basis_layout": {str(z): list(counts) for z, counts in layout.nmax.items()},
        "coefficient_order": (
            "flat vector per structure: atom -> l -> n -> m = -l..l; real spherical "
            "harmonics in featomic's lambda-SOAP convention; basis_layout[Z][l] is the "
            "number of radial functions n of angular momentum l on element Z"
        ),
        "tensormap": {
            "keys": ["o3_lambda", "o3_sigma", "center_type"],
            "samples": ["system", "atom"],
            "components": ["o3_mu"],
            "properties": ["n"],
        },
        "units": {
            "positions": UNITS["positions"],
            "cell": UNITS["cell"],
            "coefficients": UNITS["coefficients"],
        },
        "model": {"name": model_name, "hypers": model_hypers},
        "descriptor": descriptor_options.model_dump(mode="json"),
        "species": sorted(int(z) for z in species),
        "dataset": dataset.to_attrs(),
        "split": split,
    } | ({} if net_charges is None else {"net_charges": sorted(net_charges)})


def model_file_of(
    model: torch.nn.Module,
    descriptor_options: DescriptorOptions,
    species: list[int],
    dataset: DatasetMetadata,
    split: dict[str, list[int]],
    net_charges: list[int] | None = None,
    projection: torch.Tensor | None = None,
) -> ModelFile:
    """The model file of a trained ``model`` (a copy: ``model`` itself is left as it is).

    ``projection`` is the fitted compression of the descriptor
    (:attr:`rhocore.descriptors.features.LambdaSoap.projection`), needed with
    ``descriptor_options.compression``; the file keeps it in its descriptor module.
    """
    assert dataset.layout is not None
    descriptor = LambdaSoap(descriptor_options, dataset.layout, species)
    if (projection is None) != (descriptor_options.compression is None):
        raise ValueError(
            "a descriptor with compression needs its fitted projection, and only such a "
            f"descriptor takes one (compression={descriptor_options.compression})"
        )
    if projection is not None:
        descriptor.load_projection(projection)
    module = CoefficientModel(
        descriptor.module, copy.deepcopy(model), output_name(dataset.target_name)
    )
    info = model_info(
        type(model).name, model.hypers(), descriptor_options, species, dataset, split, net_charges
    )
    return ModelFile(model=module.eval(), layout=dataset.layout, metadata=info)


def save_model_file(
    path: Path,
    model: torch.nn.Module,
    descriptor_options: DescriptorOptions,
    species: list[int],
    dataset: DatasetMetadata,
    split: dict[str, list[int]],
    net_charges: list[int] | None = None,
    projection: torch.Tensor | None = None,
) -> ModelFile:
    """Write the model file of a trained ``model`` to ``path`` (extensions next to it);
    ``projection``: see :func:`model_file_of`."""
    model_file = model_file_of(
        model, descriptor_options, species, dataset, split, net_charges, projection
    )
    model_file.save(path)
    return model_file


def load_model_file(path: Path) -> ModelFile:
    """Read ``model.pt`` (or the ``model.pt`` inside a run directory), either format."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise MissingFileError(f"no model file at '{path}': train one with `rhocore train`")
    extra_files = _extra_file_names(path)
    if LEGACY_METADATA_FILE in extra_files:
        return _load_version_1(path)
    if METATOMIC_METADATA_FILE not in extra_files:
        raise InputError(f"'{path}' is a TorchScript file without rhocore metadata")
    try:
        loaded = load_atomistic_model(str(path))
    except (RuntimeError, ValueError) as error:
        raise InputError(f"'{path}' is not a loadable metatomic model: {error}") from None
    extra = loaded.metadata().extra
    if METADATA_KEY not in extra:
        raise InputError(
            f"'{path}' is a metatomic model without rhocore metadata "
            f"(ModelMetadata.extra['{METADATA_KEY}']); rhocore reads only its own models"
        )
    info = json.loads(extra[METADATA_KEY])
    version = info.get("model_file_version")
    if not isinstance(version, int) or "dataset" not in info:
        raise InputError(
            f"'{path}' was written by `rhocore export` of an earlier rhocore: metatomic "
            "engines run it, but rhocore reads the run's model.pt; give that (or run "
            "`rhocore export` on the run directory again)"
        )
    if version > MODEL_FILE_VERSION:
        raise InputError(
            f"'{path}' has model file version {version}, written by rhocore "
            f"{info.get('rhocore_version', 'unknown')}; this rhocore {__version__} reads up "
            f"to {MODEL_FILE_VERSION}. Upgrade rhocore to use it."
        )
    layout = BasisLayout({int(z): tuple(c) for z, c in info["basis_layout"].items()})
    return ModelFile(model=loaded, layout=layout, metadata=info)


def _extra_file_names(path: Path) -> set[str]:
    """Names of the extra files of the TorchScript archive ``path``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"'{path}' is not a rhocore model file: {error}") from None
    return {name.split("/extra/", 1)[1] for name in names if "/extra/" in name}


def _load_version_1(path: Path) -> ModelFile:
    """A version-1 file (TorchScript model + ``rhocore.json``) as the model file it becomes."""
    extra = {LEGACY_METADATA_FILE: ""}
    try:
        model = torch.jit.load(str(path), _extra_files=extra)
    except RuntimeError as error:
        raise InputError(f"'{path}' is not a rhocore model file: {error}") from None
    metadata = json.loads(extra[LEGACY_METADATA_FILE])
    version = metadata.get("model_file_version", 0)
    if version != 1:
        raise InputError(
            f"'{path}' has a rhocore.json of model file version {version}; this rhocore "
            f"reads version 1 there (later versions are metatomic models)"
        )
    layout = BasisLayout({int(z): tuple(c) for z, c in metadata["layout"].items()})
    options = DescriptorOptions.model_validate(metadata["descriptor"])
    species = [int(z) for z in metadata["species"]]
    dataset = DatasetMetadata.from_attrs(metadata["dataset"], source=f"model file '{path}'")
    descriptor = LambdaSoap(options, layout, species)
    module = CoefficientModel(descriptor.module, model, output_name(dataset.target_name))
    info = model_info(
        metadata["model_name"],
        metadata["model_hypers"],
        options,
        species,
        dataset,
        metadata.get("split", {}),
    )
    return ModelFile(model=module.eval(), layout=layout, metadata=info)
