"""``rhocore predict``: a trained model + structures -> predicted coefficients (HDF5).

The output uses the dataset's group layout (``/structures/<index>`` with numbers,
positions, cell, pbc, coefficients) and the dataset's metadata attributes, with
``format = "rhocore-predictions"`` since it holds no references; cube files of the
predicted fields are written on request, through the backend that made the training data.
"""

from __future__ import annotations

from pathlib import Path

import ase
import h5py
import numpy as np
from tqdm import tqdm

import rhocore
from rhocore.fields import write_cube
from rhocore.modelfile import ModelFile, checked_prediction, load_model_file
from rhocore.plugins import get_registry
from rhocore.structure_files import read_structure_file

PREDICTIONS_FORMAT = "rhocore-predictions"


def read_structures(path: Path, index: str = ":") -> list[ase.Atoms]:
    """Every frame of a structure file ASE reads; unreadable or non-finite ones are errors."""
    return read_structure_file(path, index)


def write_predictions(
    path: Path, frames: list[ase.Atoms], coefficients: list[np.ndarray], model: ModelFile
) -> None:
    """Store predicted coefficients in the dataset layout."""
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = PREDICTIONS_FORMAT
        handle.attrs["format_version"] = 1
        handle.attrs.update(model.dataset_metadata.to_attrs())
        handle.attrs["rhocore_version"] = rhocore.__version__
        for index, (atoms, vector) in enumerate(zip(frames, coefficients, strict=True)):
            group = handle.create_group(f"structures/{index}")
            group["numbers"] = atoms.numbers
            group["positions"] = atoms.positions
            group["cell"] = np.array(atoms.cell)
            group["pbc"] = atoms.pbc
            group["coefficients"] = vector
            group.attrs["status"] = "done"


def predict(
    model_path: Path,
    structures: Path,
    output: Path,
    *,
    cube_dir: Path | None = None,
    cube_spacing: float = 0.2,
    progress: bool = True,
) -> list[np.ndarray]:
    """Predict coefficients for every structure in ``structures`` and write them."""
    model = load_model_file(model_path)
    backend_cls = None
    if cube_dir is not None:
        name = model.dataset_metadata.backend_name
        backend_cls = get_registry().get("backend", name)
        if not backend_cls.evaluates_fields:
            raise ValueError(
                f"cube files need the fields on points, and backend '{name}' that made the "
                "training data cannot evaluate them; predict without --cube-dir"
            )
    frames = read_structures(structures)
    coefficients = [
        checked_prediction(model, atoms, f"frame {index} of '{structures}'")
        for index, atoms in enumerate(
            tqdm(frames, desc="predict", unit="structure", disable=not progress)
        )
    ]
    write_predictions(output, frames, coefficients, model)
    if cube_dir is not None:
        assert backend_cls is not None
        backend = backend_cls(model.dataset_metadata.backend_options)
        cube_dir.mkdir(parents=True, exist_ok=True)
        for index, (atoms, vector) in enumerate(zip(frames, coefficients, strict=True)):
            write_cube(cube_dir / f"structure_{index}.cube", atoms, backend, vector, cube_spacing)
    return coefficients
