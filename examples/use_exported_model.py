"""Predict RI coefficients with a rhocore model file -- without rhocore or featomic.

    python use_exported_model.py runs/water-homo/model.pt structures.xyz coefficients.npz

Needs torch, metatensor-torch, metatomic-torch (with metatomic-ase and vesin, which it
installs) and ase. The compiled featomic code the model needs comes from the
``extensions/`` folder that rhocore writes next to the model file. For every structure
the coefficients are computed twice, through metatomic's ASE calculator and through
metatomic's ``load_atomistic_model``, and
written as flat vectors in the basis order the file's metadata describes:
``calculator_<i>`` and ``torch_<i>`` in ``coefficients.npz``, plus ``metadata`` (JSON).
"""

import json
import sys
from pathlib import Path

import ase.io
import numpy as np
import torch
from metatomic.torch import ModelEvaluationOptions, ModelOutput, System, load_atomistic_model
from metatomic_ase import MetatomicCalculator
from vesin.metatomic import neighbor_lists_for_model


def flat_coefficients(tensor, numbers, layout):
    """The per-atom TensorMap as one vector, order atom -> l -> n -> m = -l..l.

    ``layout[str(Z)][l]`` is the number of radial functions n of angular momentum l on
    element Z (metadata key ``basis_layout``).
    """
    counts = {int(z): list(c) for z, c in layout.items()}
    atom_sizes = [sum((2 * l + 1) * n for l, n in enumerate(counts[int(z)])) for z in numbers]
    atom_start = np.concatenate([[0], np.cumsum(atom_sizes)])
    vector = np.full(atom_start[-1], np.nan)
    for key, block in tensor.items():
        l, z = int(key["o3_lambda"]), int(key["center_type"])
        l_start = sum((2 * k + 1) * n for k, n in enumerate(counts[z][:l]))
        atoms = block.samples.column("atom").numpy()
        values = block.values.detach().numpy()  # (atoms, m, n)
        mu = np.arange(2 * l + 1)[None, :, None]
        n = np.arange(values.shape[2])[None, None, :]
        index = (atom_start[atoms] + l_start)[:, None, None] + n * (2 * l + 1) + mu
        vector[index] = values
    return vector


def extensions_of(path):
    """The ``extensions/`` folder rhocore writes next to a model file."""
    return str(Path(path).parent / "extensions")


def with_calculator(path, frames):
    """Coefficient TensorMaps from metatomic's ASE calculator, and the rhocore metadata."""
    calculator = MetatomicCalculator(
        path, extensions_directory=extensions_of(path), check_consistency=True
    )
    metadata = json.loads(calculator.metadata().extra["rhocore"])
    request = {metadata["output"]: ModelOutput(sample_kind="atom")}
    return [calculator.run_model(atoms, request)[metadata["output"]] for atoms in frames], metadata


def with_plain_torch(path, frames, name):
    """The same through ``load_atomistic_model``: build metatomic Systems, add the
    neighbour lists the model asks for (vesin), call the model."""
    model = load_atomistic_model(path, extensions_directory=extensions_of(path))
    neighbor_lists = neighbor_lists_for_model("angstrom", model, model_length_unit="angstrom")
    options = ModelEvaluationOptions(
        length_unit="angstrom", outputs={name: ModelOutput(sample_kind="atom")}
    )
    results = []
    for atoms in frames:
        system = System(
            types=torch.tensor(atoms.numbers, dtype=torch.int32),
            positions=torch.tensor(atoms.positions, dtype=torch.float64),
            cell=torch.tensor(atoms.cell.array * atoms.pbc[:, None], dtype=torch.float64),
            pbc=torch.tensor(atoms.pbc),
        )
        for neighbor_list in neighbor_lists:
            neighbor_list.add_neighbor_list(system)
        results.append(model([system], options, check_consistency=True)[name])
    return results


def main(path, structures, output):
    frames = ase.io.read(structures, ":")
    from_calculator, metadata = with_calculator(path, frames)
    from_torch = with_plain_torch(path, frames, metadata["output"])
    arrays = {"metadata": np.array(json.dumps(metadata))}
    layout = metadata["basis_layout"]
    for index, atoms in enumerate(frames):
        arrays[f"calculator_{index}"] = flat_coefficients(
            from_calculator[index], atoms.numbers, layout
        )
        arrays[f"torch_{index}"] = flat_coefficients(from_torch[index], atoms.numbers, layout)
    np.savez(output, **arrays)
    print(f"{len(frames)} structures, output {metadata['output']} -> {output}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
