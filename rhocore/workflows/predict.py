"""``rhocore predict``: a trained model + structures -> predicted coefficients (HDF5).

The output uses the dataset's group layout (``/structures/<index>`` with numbers,
positions, cell, pbc, coefficients) and the dataset's metadata attributes, with
``format = "rhocore-predictions"`` since it holds no references; cube files of the
predicted fields are written on request, through the backend that made the training data.

For a total-density model the same backend also gives derived quantities
(:mod:`rhocore.qc.properties`: stored per structure under ``properties/<name>`` and in a JSON
file next to the output), the electrostatic potential as cube files, and files that
start its SCF from the predicted density (``--scf-guess``: PySCF density matrices and
chkfiles, FHI-aims RI density restarts).
"""

from __future__ import annotations

import json
from pathlib import Path

import ase
import h5py
import numpy as np

import rhocore
from rhocore.data.provenance import backend_with
from rhocore.data.structure_files import read_structure_file
from rhocore.errors import InputError
from rhocore.fields.grids import write_cube
from rhocore.models.file import ModelFile, checked_prediction, load_model_file
from rhocore.parallel.progress import progress_bar
from rhocore.qc.properties import (
    PROPERTIES,
    as_json,
    parse_property_names,
)
from rhocore.workflows.derived import density_backend

PREDICTIONS_FORMAT = "rhocore-predictions"


def read_structures(path: Path, index: str = ":") -> list[ase.Atoms]:
    """Every frame of a structure file ASE reads; unreadable or non-finite ones are errors."""
    return read_structure_file(path, index)


def write_predictions(
    path: Path,
    frames: list[ase.Atoms],
    coefficients: list[np.ndarray],
    model: ModelFile,
    properties: list[dict[str, np.ndarray]] | None = None,
) -> None:
    """Store predicted coefficients (and derived quantities) in the dataset layout."""
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
            for name, value in (properties[index] if properties else {}).items():
                group[f"properties/{name}"] = value
                group[f"properties/{name}"].attrs["unit"] = PROPERTIES[name].unit


def predict(
    model_path: Path,
    structures: Path,
    output: Path,
    *,
    cube_dir: Path | None = None,
    cube_spacing: float = 0.2,
    properties: str | list[str] | None = None,
    esp: bool = False,
    scf_guess: Path | None = None,
    progress: bool = True,
) -> list[np.ndarray]:
    """Predict coefficients for every structure in ``structures`` and write them.

    ``properties`` (names or 'all') are stored with the coefficients and in
    ``<output>.properties.json``; ``esp`` writes ``structure_<i>_esp.cube`` into
    ``cube_dir``; ``scf_guess`` is a folder for the backend's SCF-guess files
    (:meth:`rhocore.qc.backend.QCBackend.write_scf_guess`).
    """
    model = load_model_file(model_path)
    names = parse_property_names(properties) if properties else []
    if esp and cube_dir is None:
        raise InputError("the electrostatic potential is written as cube files: give --cube-dir")
    metadata = model.dataset_metadata
    backend = None
    if names or esp:
        what = "derived quantities (--properties, --esp)"
        backend = density_backend(metadata, "computes_properties", what)
    if scf_guess is not None:
        backend = density_backend(metadata, "writes_scf_guess", "SCF guesses (--scf-guess)")
    if cube_dir is not None and backend is None:
        backend = backend_with(
            metadata, "evaluates_fields", "cube files (predict without --cube-dir)"
        )
    frames = read_structures(structures)
    coefficients = [
        checked_prediction(model, atoms, f"frame {index} of '{structures}'")
        for index, atoms in enumerate(
            progress_bar(frames, desc="predict", unit="structure", disable=not progress)
        )
    ]
    derived = (
        [
            backend.properties(atoms, vector, names)
            for atoms, vector in zip(frames, coefficients, strict=True)
        ]
        if names and backend is not None
        else None
    )
    write_predictions(output, frames, coefficients, model, derived)
    if derived is not None:
        document = {
            "units": {name: PROPERTIES[name].unit for name in names},
            "structures": [as_json(values) for values in derived],
        }
        Path(f"{output}.properties.json").write_text(json.dumps(document, indent=1))
    if cube_dir is not None:
        assert backend is not None
        cube_dir.mkdir(parents=True, exist_ok=True)
        for index, (atoms, vector) in enumerate(zip(frames, coefficients, strict=True)):
            write_cube(cube_dir / f"structure_{index}.cube", atoms, backend, vector, cube_spacing)
            if esp:
                write_cube(
                    cube_dir / f"structure_{index}_esp.cube",
                    atoms,
                    backend,
                    vector,
                    cube_spacing,
                    potential=True,
                )
    if scf_guess is not None:
        assert backend is not None
        for index, (atoms, vector) in enumerate(zip(frames, coefficients, strict=True)):
            backend.write_scf_guess(
                atoms, vector, Path(scf_guess), f"structure_{index}", layout=model.layout
            )
    return coefficients
