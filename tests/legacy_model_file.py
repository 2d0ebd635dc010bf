"""The writer of version-1 model files, kept to test that rhocore still reads them.

Version 1 (rhocore before the metatomic model file) was the scripted model alone, with
the metadata prediction needs as the ``rhocore.json`` extra file of the archive.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rhocore.data.dataset import DatasetMetadata
from rhocore.descriptors.features import DescriptorOptions


def save_version_1_model_file(
    path: Path,
    model: torch.nn.Module,
    descriptor_options: DescriptorOptions,
    species: list[int],
    dataset: DatasetMetadata,
    split: dict[str, list[int]],
) -> None:
    """Write ``model`` as a version-1 ``model.pt``."""
    assert dataset.layout is not None
    metadata = {
        "model_file_version": 1,
        "model_name": type(model).name,
        "model_hypers": model.hypers(),
        "layout": json.loads(dataset.layout.to_json()),
        "descriptor": descriptor_options.model_dump(mode="json"),
        "species": [int(z) for z in species],
        "dataset": dataset.to_attrs(),
        "split": split,
    }
    extra = {"rhocore.json": json.dumps(metadata)}
    torch.jit.save(torch.jit.script(model), str(path), _extra_files=extra)
