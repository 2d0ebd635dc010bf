"""Contract checks for :class:`rhocore.models.Model` architectures.

A model architecture is tested by one call, ``check_model(MyModel)``: it is built on a
small basis and random water-like structures with random parameters, then checked for
TorchScript export, rotation equivariance, permutation and translation invariance of
its predictions. Every failure is an ``AssertionError`` naming the broken property.
"""

from __future__ import annotations

import ase
import numpy as np
import torch
from metatensor.torch import TensorMap

from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.descriptors.tensormaps import tensormap_to_coefficients
from rhocore.models.base import Model
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout
from rhocore.qc.rotations import random_rotation, rotate_coefficients

#: The basis the checks use: l up to 2 on O, up to 1 on H.
CHECK_LAYOUT = BasisLayout({8: (3, 2, 1), 1: (2, 1)})
#: A small, fast descriptor (the checks do not depend on its accuracy).
CHECK_DESCRIPTOR = DescriptorOptions(cutoff=3.5, max_radial=3, max_angular=3)


def random_waters(count: int, seed: int = 0, molecules: int = 2) -> list[ase.Atoms]:
    """Clusters of ``molecules`` distorted water molecules at random orientations."""
    rng = np.random.default_rng(seed)
    frames = []
    reference = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    for _ in range(count):
        positions = []
        for index in range(molecules):
            molecule = reference + rng.normal(scale=0.08, size=(3, 3))
            molecule = molecule @ random_rotation(int(rng.integers(1 << 30))).T
            positions.append(molecule + np.array([2.6 * index, 0.3 * index, 0.0]))
        frames.append(ase.Atoms("OH2" * molecules, positions=np.concatenate(positions)))
    return frames


def check_model(model_cls: type[Model], options: PluginOptions | dict | None = None) -> None:
    """Check the Model contract of ``model_cls`` built with ``options``.

    Checked: ``name`` and an ``Options`` that forbids unknown fields; output keys, samples,
    components and properties; ``torch.jit.script`` gives the eager output; rotating a
    structure (positions @ R.T) rotates the predicted coefficients by the Wigner-D
    matrices of :mod:`rhocore.qc.rotations` (relative error <= 1e-8, float64); permuting atoms
    permutes their coefficients; translating changes nothing; the baseline is added.
    """
    label = f"model '{getattr(model_cls, 'name', model_cls.__name__)}'"
    assert isinstance(getattr(model_cls, "name", None), str), f"{label}: no string `name`"
    assert issubclass(model_cls.Options, PluginOptions), (
        f"{label}: Options must derive from rhocore.qc.backend.PluginOptions (extra='forbid')"
    )
    layout = CHECK_LAYOUT
    descriptor = LambdaSoap(CHECK_DESCRIPTOR, layout, layout.species)
    model = model_cls(options, layout, descriptor.feature_sizes())
    frames = random_waters(3, seed=1)
    numbers = [atoms.numbers for atoms in frames]
    features = descriptor.compute(frames)
    model.prepare([descriptor.compute(random_waters(2, seed=2))])
    _randomize(model)

    output = model(features)
    _check_metadata(label, output, features, layout)
    predictions = _vectors(output, numbers, layout)
    for l in range(1, layout.max_lmax + 1):
        size = max(
            float(np.abs(layout.split(vector, z)[(l, 8)]).max())
            for vector, z in zip(predictions, numbers, strict=True)
        )
        assert size > 1e-6, (
            f"{label}: predicted l={l} coefficients are all zero even with random "
            "parameters, so the equivariance check would prove nothing"
        )

    scripted = torch.jit.script(model)
    scripted_predictions = _vectors(scripted(features), numbers, layout)
    for index, (eager, script) in enumerate(zip(predictions, scripted_predictions, strict=True)):
        assert np.allclose(eager, script, rtol=1e-12, atol=1e-12), (
            f"{label}: the TorchScript model differs from the eager one on structure {index} "
            f"(max difference {np.abs(eager - script).max():.2e})"
        )

    rotation = random_rotation(7)
    rotated_frames = [_moved(atoms, atoms.positions @ rotation.T) for atoms in frames]
    rotated = _vectors(model(descriptor.compute(rotated_frames)), numbers, layout)
    for index, (vector, z) in enumerate(zip(predictions, numbers, strict=True)):
        expected = rotate_coefficients(vector, layout, z, rotation)
        error = np.linalg.norm(rotated[index] - expected) / np.linalg.norm(expected)
        assert error <= 1e-8, (
            f"{label} is not rotation equivariant: rotating structure {index} gives "
            f"coefficients that differ from the Wigner-D rotated prediction by {error:.2e} "
            "(relative); outputs of o3_lambda > 0 must transform like the features"
        )

    rng = np.random.default_rng(3)
    for index, atoms in enumerate(frames):
        order = rng.permutation(len(atoms))
        permuted = atoms[order]
        result = _vectors(model(descriptor.compute([permuted])), [permuted.numbers], layout)[0]
        offsets = layout.atom_offsets(atoms.numbers)
        expected = np.concatenate([predictions[index][offsets[a] : offsets[a + 1]] for a in order])
        assert np.allclose(result, expected, rtol=1e-10, atol=1e-12), (
            f"{label}: permuting the atoms of structure {index} does not permute their "
            "predicted coefficients"
        )

    shifted = [_moved(atoms, atoms.positions + np.array([1.3, -0.7, 2.1])) for atoms in frames]
    for index, result in enumerate(_vectors(model(descriptor.compute(shifted)), numbers, layout)):
        assert np.allclose(result, predictions[index], rtol=1e-10, atol=1e-12), (
            f"{label}: translating structure {index} changes its predicted coefficients"
        )

    model.set_baseline({z: np.zeros(counts[0]) for z, counts in layout.nmax.items()})
    without = _vectors(model(features), numbers, layout)
    means = {z: 10.0 * z + np.arange(counts[0]) for z, counts in layout.nmax.items()}
    model.set_baseline(means)
    shifts = _vectors(model(features), numbers, layout)
    for index, z in enumerate(numbers):
        table = layout.function_table(z)
        expected = np.where(table[:, 2] == 0, 10.0 * table[:, 1] + table[:, 3], 0.0)
        assert np.allclose(shifts[index] - without[index], expected, atol=1e-8), (
            f"{label}: set_baseline(means) does not add means[Z] to the l=0 coefficients "
            f"of structure {index} (and nothing to l > 0)"
        )


def _randomize(model: Model) -> None:
    """Random parameters and baseline, so that every output depends on the features."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(
                torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.3
            )
    model.set_baseline({z: np.linspace(0.5, 1.0, n[0]) * z for z, n in model.layout.nmax.items()})


def _check_metadata(label: str, output: TensorMap, features: TensorMap, layout: BasisLayout):
    names = ["o3_lambda", "o3_sigma", "center_type"]
    assert output.keys.names == names, f"{label}: output key names {output.keys.names} != {names}"
    keys = sorted((int(k["o3_lambda"]), int(k["center_type"])) for k in output.keys)
    assert keys == sorted(layout.keys()), (
        f"{label}: output keys {keys} differ from the basis blocks {sorted(layout.keys())}"
    )
    for key, block in output.items():
        l, z = int(key["o3_lambda"]), int(key["center_type"])
        assert int(key["o3_sigma"]) == 1, f"{label}: output key {key} must have o3_sigma = 1"
        assert block.values.dtype == torch.float64, f"{label}: outputs must be float64"
        assert block.samples.names == ["system", "atom"], (
            f"{label}: block {key} samples are {block.samples.names}, expected [system, atom]"
        )
        assert block.samples == features.block(key).samples, (
            f"{label}: block {key} samples differ from the feature samples"
        )
        assert block.components[0].names == ["o3_mu"] and len(block.components[0]) == 2 * l + 1
        assert block.properties.names == ["n"] and len(block.properties) == layout.nmax[z][l], (
            f"{label}: block {key} properties must be n = 0..{layout.nmax[z][l] - 1}"
        )


def _vectors(output: TensorMap, numbers, layout: BasisLayout) -> list[np.ndarray]:
    return [v.detach().numpy() for v in tensormap_to_coefficients(output, numbers, layout)]


def _moved(atoms: ase.Atoms, positions: np.ndarray) -> ase.Atoms:
    moved = atoms.copy()
    moved.positions = positions
    return moved
