"""``model.pt``: a trained model as one TorchScript file plus the metadata to use it.

The model module is scripted and saved with ``torch.jit.save``; a JSON document stored as
an extra file of the archive carries what prediction needs besides it: the RI basis
layout, the descriptor hyper-parameters and species, the target and backend that made the
training data, and the held-out test indices of the training dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch

from rhocore.data.dataset import DatasetMetadata
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.descriptors.tensormaps import join_samples, tensormap_to_coefficients
from rhocore.qc.basis import BasisLayout

METADATA_FILE = "rhocore.json"
MODEL_FILE_VERSION = 1


@dataclass
class ModelFile:
    """A loaded ``model.pt``: scripted model, descriptor and metadata."""

    model: torch.jit.ScriptModule
    descriptor: LambdaSoap
    layout: BasisLayout
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset_metadata(self) -> DatasetMetadata:
        """Backend and target of the data the model was trained on."""
        return DatasetMetadata.from_attrs(self.metadata["dataset"], source="model file")

    @property
    def test_indices(self) -> list[int]:
        """Indices of the training dataset that were held out from training."""
        return list(self.metadata.get("split", {}).get("test", []))

    def predict(self, frames: list[ase.Atoms]) -> list[np.ndarray]:
        """Canonical coefficient vectors predicted for ``frames``."""
        with torch.no_grad():
            pieces = self.descriptor.compute_chunks(frames)
            output = join_samples([self.model(piece) for piece in pieces])
        return [
            np.asarray(vector.detach().numpy())
            for vector in tensormap_to_coefficients(
                output, [atoms.numbers for atoms in frames], self.layout
            )
        ]


class PredictionError(ValueError):
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


def save_model_file(
    path: Path,
    model: torch.nn.Module,
    descriptor_options: DescriptorOptions,
    species: list[int],
    dataset: DatasetMetadata,
    split: dict[str, list[int]],
) -> None:
    """Script ``model`` and write it with its metadata to ``path``."""
    metadata = {
        "model_file_version": MODEL_FILE_VERSION,
        "model_name": type(model).name,
        "model_hypers": model.hypers(),
        "layout": json.loads(dataset.layout.to_json()),
        "descriptor": descriptor_options.model_dump(mode="json"),
        "species": [int(z) for z in species],
        "dataset": dataset.to_attrs(),
        "split": split,
    }
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def load_model_file(path: Path) -> ModelFile:
    """Read ``model.pt`` (or the ``model.pt`` inside a run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"no model file at '{path}': train one with `rhocore train`")
    extra = {METADATA_FILE: ""}
    try:
        model = torch.jit.load(str(path), _extra_files=extra)
    except RuntimeError as error:
        raise ValueError(f"'{path}' is not a rhocore model file: {error}") from None
    if not extra[METADATA_FILE]:
        raise ValueError(f"'{path}' is a TorchScript file without rhocore metadata")
    metadata = json.loads(extra[METADATA_FILE])
    version = metadata.get("model_file_version", 0)
    if version > MODEL_FILE_VERSION:
        raise ValueError(
            f"'{path}' has model file version {version}; this rhocore reads up to "
            f"{MODEL_FILE_VERSION}. Upgrade rhocore to use it."
        )
    layout = BasisLayout({int(z): tuple(c) for z, c in metadata["layout"].items()})
    options = DescriptorOptions.model_validate(metadata["descriptor"])
    descriptor = LambdaSoap(options, layout, metadata["species"])
    return ModelFile(model=model, descriptor=descriptor, layout=layout, metadata=metadata)
