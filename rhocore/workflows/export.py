"""``rhocore export``: a model file -> a copy with its ``extensions/`` folder, or a converted one.

A run's ``model.pt`` already is the metatomic model engines load (:mod:`rhocore.models.file`);
``rhocore export`` writes it elsewhere together with the ``extensions/`` folder it needs, and
converts a file of the earlier format (TorchScript + ``rhocore.json``, model file version 1)
into the current one. Before it is kept, the written file is run through metatomic's ASE
calculator on a probe structure and must give rhocore's prediction.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np

from rhocore.errors import MissingFileError, RhocoreError
from rhocore.models.file import EXTENSIONS_DIRECTORY, MODEL_FILE, ModelFile, load_model_file
from rhocore.training.checkpoints import CHECKPOINT_FILE

log = logging.getLogger(__name__)

#: Largest relative difference allowed between the exported file and the trained model.
VERIFY_RTOL = 1e-10


class ExportError(RhocoreError, ValueError):
    """A model that cannot be exported, or an export that would be wrong."""


@dataclass
class ExportSummary:
    """What ``rhocore export`` wrote."""

    source: Path
    output: Path
    extensions: Path
    output_name: str
    species: list[int]
    probe_difference: float

    def table(self) -> str:
        """Human-readable summary."""
        return (
            f"exported {self.source} -> {self.output}\n"
            f"  extensions  {self.extensions} (keep it next to the file)\n"
            f"  output      {self.output_name} (per atom, float64, positions in angstrom)\n"
            f"  species     {self.species}\n"
            f"  check       metatomic ASE calculator vs rhocore: max relative "
            f"difference {self.probe_difference:.1e} on a probe structure"
        )


def model_path_of(source: Path) -> Path:
    """The ``model.pt`` of ``source``: a run directory, its ``model.pt`` or its checkpoint.

    A checkpoint alone does not say which target and basis made the training data, so it
    is exported through the ``model.pt`` of its run (which holds its best weights).
    """
    source = Path(source)
    if not source.exists():
        raise MissingFileError(
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
        raise MissingFileError(f"run directory '{run_dir}' {what}")
    return model_path


def export_model(source: Path, output: Path) -> ExportSummary:
    """Write the model file of ``source`` (see :func:`model_path_of`) to ``output`` in the
    current format, with its ``extensions/`` folder next to ``output``."""
    model_path = model_path_of(source)
    output = Path(output)
    if output.exists() and output.resolve() == model_path.resolve():
        raise ExportError(
            f"-o '{output}' is the model file being exported; write the export to another "
            "file (e.g. -o exported.pt)"
        )
    model = load_model_file(model_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial_extensions = output.parent / f"{EXTENSIONS_DIRECTORY}.partial"
    try:
        model.save(partial, partial_extensions)
        difference = verify_export(partial, partial_extensions, model)
    except BaseException:
        partial.unlink(missing_ok=True)
        shutil.rmtree(partial_extensions, ignore_errors=True)
        raise
    extensions = output.parent / EXTENSIONS_DIRECTORY
    shutil.rmtree(extensions, ignore_errors=True)
    partial_extensions.replace(extensions)
    partial.replace(output)
    log.info("exported %s to %s", model_path, output)
    return ExportSummary(
        source=model_path,
        output=output,
        extensions=extensions,
        output_name=model.metadata["output"],
        species=model.species,
        probe_difference=difference,
    )


def probe_structure(species: list[int]) -> ase.Atoms:
    """Two atoms of every species at fixed, well separated pseudo-random positions."""
    numbers = [z for z in species for _ in range(2)]
    rng = np.random.default_rng(len(numbers))
    positions = np.cumsum(rng.uniform(0.9, 1.3, size=(len(numbers), 3)) / np.sqrt(3), axis=0)
    return ase.Atoms(numbers=numbers, positions=positions)


def verify_export(path: Path, extensions: Path, model: ModelFile) -> float:
    """Max relative difference between the file at ``path`` (run by metatomic's ASE
    calculator with the ``extensions`` folder) and ``model`` run by rhocore on a probe
    structure; an error above :data:`VERIFY_RTOL`."""
    from metatomic.torch import ModelOutput
    from metatomic_ase import MetatomicCalculator

    from rhocore.descriptors.tensormaps import tensormap_to_coefficients

    name = model.metadata["output"]
    atoms = probe_structure(model.species)
    calculator = MetatomicCalculator(
        str(path), extensions_directory=str(extensions), check_consistency=True
    )
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
