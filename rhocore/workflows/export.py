"""``rhocore export``: a trained model -> one metatomic file that runs without rhocore.

The file (:mod:`rhocore.models.atomistic`) holds the whole chain structures -> lambda-SOAP ->
model ->
coefficients, and under ``ModelMetadata.extra["rhocore"]`` the JSON a user needs to use
them: basis layout and coefficient order, target and backend (with its basis options) that
made the training data, units. Before it is kept, the saved file is run through metatomic's
ASE calculator on a probe structure and must give the trained model's coefficients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase
import numpy as np

import rhocore
from rhocore.data.dataset import UNITS
from rhocore.models.atomistic import (
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    METADATA_KEY,
    atomistic_model,
    output_name,
)
from rhocore.models.file import ModelFile, load_model_file
from rhocore.training.trainer import CHECKPOINT_FILE

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
#: Largest relative difference allowed between the exported file and the trained model.
VERIFY_RTOL = 1e-10


class ExportError(ValueError):
    """A model that cannot be exported, or an export that would be wrong."""


@dataclass
class ExportSummary:
    """What ``rhocore export`` wrote."""

    source: Path
    output: Path
    output_name: str
    species: list[int]
    probe_difference: float

    def table(self) -> str:
        """Human-readable summary."""
        return (
            f"exported {self.source} -> {self.output}\n"
            f"  output      {self.output_name} (per atom, float64, positions in angstrom)\n"
            f"  species     {self.species}\n"
            f"  check       metatomic ASE calculator vs trained model: max relative "
            f"difference {self.probe_difference:.1e} on a probe structure"
        )


def model_path_of(source: Path) -> Path:
    """The ``model.pt`` of ``source``: a run directory, its ``model.pt`` or its checkpoint.

    A checkpoint alone does not say which target and basis made the training data, so it
    is exported through the ``model.pt`` of its run (which holds its best weights).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(
            f"no run directory or model file at '{source}': train one with `rhocore train`"
        )
    if source.is_dir():
        run_dir, model_path = source, source / MODEL_FILE
    elif source.name == CHECKPOINT_FILE or source.suffix == ".ckpt":
        run_dir, model_path = source.parent, source.parent / MODEL_FILE
    else:
        return source
    if not model_path.exists():
        what = (
            f"has a checkpoint ({CHECKPOINT_FILE}) but no {MODEL_FILE}: training did not "
            "finish; resume it with `rhocore train CONFIG --dataset DATASET -o "
            f"{run_dir}` (a checkpoint does not record the target and basis of its data)"
            if (run_dir / CHECKPOINT_FILE).exists()
            else f"holds no {MODEL_FILE}; train a model into it with `rhocore train`"
        )
        raise FileNotFoundError(f"run directory '{run_dir}' {what}")
    return model_path


def export_info(model: ModelFile) -> dict[str, Any]:
    """JSON-ready metadata of an exported model: all a user needs besides the file."""
    dataset = model.dataset_metadata
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "rhocore_version": rhocore.__version__,
        "output": output_name(dataset.target_name),
        "target": {"name": dataset.target_name, "options": dataset.target_options},
        "backend": {
            "name": dataset.backend_name,
            "version": dataset.backend_version,
            "options": dataset.backend_options,
        },
        "metric_kind": dataset.metric_kind,
        "basis_layout": {str(z): list(counts) for z, counts in model.layout.nmax.items()},
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
        "model": {"name": model.metadata["model_name"]},
        "descriptor": model.descriptor.options.model_dump(mode="json"),
        "species": list(model.descriptor.species),
    }


def export_model(source: Path, output: Path) -> ExportSummary:
    """Write the trained model of ``source`` (see :func:`model_path_of`) to ``output``."""
    model_path = model_path_of(source)
    output = Path(output)
    if output.exists() and output.resolve() == model_path.resolve():
        raise ExportError(
            f"-o '{output}' is the model file being exported; write the export to another "
            "file (e.g. -o exported.pt)"
        )
    model = load_model_file(model_path)
    info = export_info(model)
    target = model.dataset_metadata.target_name
    exported = atomistic_model(
        model.descriptor.module,
        model.model.eval(),
        target,
        model.descriptor.options.cutoff,
        info,
        name=f"rhocore {info['model']['name']} model of {target}",
        description=(
            f"RI coefficients of the {target} field ({model.dataset_metadata.backend_name} "
            f"backend) predicted from lambda-SOAP features; output {info['output']}. "
            f"Coefficient layout and units: metadata extra['{METADATA_KEY}']."
        ),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    exported.save(str(partial))
    try:
        difference = verify_export(partial, model, info["output"])
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    log.info("exported %s to %s", model_path, output)
    return ExportSummary(
        source=model_path,
        output=output,
        output_name=info["output"],
        species=list(model.descriptor.species),
        probe_difference=difference,
    )


def probe_structure(species: list[int]) -> ase.Atoms:
    """Two atoms of every species at fixed, well separated pseudo-random positions."""
    numbers = [z for z in species for _ in range(2)]
    rng = np.random.default_rng(len(numbers))
    positions = np.cumsum(rng.uniform(0.9, 1.3, size=(len(numbers), 3)) / np.sqrt(3), axis=0)
    return ase.Atoms(numbers=numbers, positions=positions)


def verify_export(path: Path, model: ModelFile, name: str) -> float:
    """Max relative difference between the file at ``path`` (run by metatomic's ASE
    calculator) and ``model`` on a probe structure; an error above :data:`VERIFY_RTOL`."""
    from metatomic.torch import ModelOutput
    from metatomic_ase import MetatomicCalculator

    from rhocore.descriptors.tensormaps import tensormap_to_coefficients

    atoms = probe_structure(model.descriptor.species)
    calculator = MetatomicCalculator(str(path), check_consistency=True)
    output = calculator.run_model(atoms, {name: ModelOutput(sample_kind="atom")})[name]
    exported = tensormap_to_coefficients(output, [atoms.numbers], model.layout)[0].numpy()
    expected = model.predict([atoms])[0]
    difference = float(np.abs(exported - expected).max() / max(np.abs(expected).max(), 1e-300))
    if not difference <= VERIFY_RTOL:
        raise ExportError(
            f"the exported model predicts coefficients that differ from the trained model by "
            f"{difference:.2e} (relative) on a probe structure, so it was not written; "
            "please report this with the model file"
        )
    return difference
