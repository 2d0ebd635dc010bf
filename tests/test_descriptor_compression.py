"""Compression of the expansion channels before the lambda-SOAP product: the same features
without it, an equivalent descriptor at full width, equivariance, K^2 sizes, and the
fitted projection kept by checkpoints and model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhocore.descriptors.clebsch_gordan import coupled_pairs
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.models.file import load_model_file, save_model_file
from rhocore.models.linear import LinearModel
from rhocore.testing.datasets import synthetic_metadata
from rhocore.testing.models import random_waters
from rhocore.training.checkpoints import load_checkpoint, load_model
from rhocore.training.options import TrainingOptions
from rhocore.training.trainer import predict, train
from tests.test_descriptors import assert_rotates_by_wigner_matrices
from tests.training_data import DESCRIPTOR_OPTIONS, LAYOUT, linear_samples

#: (neighbour types H, O) x (max_radial + 1) channels of DESCRIPTOR_OPTIONS
CHANNELS = 2 * (DESCRIPTOR_OPTIONS.max_radial + 1)


def compressed(width: int, frames, **options) -> LambdaSoap:
    """A descriptor with ``compression=width`` fitted on ``frames``."""
    settings = DESCRIPTOR_OPTIONS.model_copy(update={"compression": width, **options})
    descriptor = LambdaSoap(settings, LAYOUT, [1, 8])
    descriptor.fit_compression(frames, seed=0)
    return descriptor


def test_without_compression_features_are_those_of_an_identity_projection():
    frames = random_waters(3, seed=1)
    plain = LambdaSoap(DESCRIPTOR_OPTIONS, LAYOUT, [1, 8])
    assert DESCRIPTOR_OPTIONS.compression is None and plain.projection is None
    identity = LambdaSoap(
        DESCRIPTOR_OPTIONS.model_copy(update={"compression": CHANNELS}), LAYOUT, [1, 8]
    )
    identity.load_projection(torch.eye(CHANNELS, dtype=torch.float64).expand(2, 3, -1, -1))
    before, after = plain.compute(frames), identity.compute(frames)
    for key, block in before.items():
        assert block.properties.names[2:] == ["neighbor_1_type", "n_1", "neighbor_2_type", "n_2"]
        assert after.block(key).properties.names[2:] == ["k_1", "k_2"]
        assert torch.equal(after.block(key).values, block.values), key


def pair_weights(properties) -> torch.Tensor:
    """2 for a pair l_1 = l_2 of two different channels (kept once for its swapped twin),
    else 1: with them, sums over properties are sums over all (p, q) channel pairs."""
    l1, l2, *channels = properties.values.T
    half = len(channels) // 2
    first, second = torch.stack(channels[:half]), torch.stack(channels[half:])
    different = (first != second).any(dim=0)
    return 1.0 + ((l1 == l2) & different).to(torch.float64)


def test_full_width_compression_keeps_the_kernel_between_atoms():
    # at full width the projection rotates the channels of each (Z, l) orthogonally: inner
    # products over all channel pairs of a (l_1, l_2) product are invariant
    frames = random_waters(4, seed=2)
    plain = LambdaSoap(DESCRIPTOR_OPTIONS.model_copy(update={"normalize": False}), LAYOUT, [1, 8])
    full = compressed(CHANNELS + 3, frames, normalize=False)
    assert full.projection.shape == (2, 3, CHANNELS, CHANNELS)
    before, after = plain.compute(frames), full.compute(frames)
    for key, block in before.items():
        kernels = []
        for tensor in (block, after.block(key)):
            weights = pair_weights(tensor.properties)
            kernels.append(torch.einsum("imp,jmp,p->ij", tensor.values, tensor.values, weights))
        scale = kernels[0].abs().max()
        torch.testing.assert_close(kernels[1], kernels[0], rtol=0, atol=1e-10 * scale)


def test_rotating_structures_rotates_compressed_features_by_wigner_matrices():
    assert_rotates_by_wigner_matrices(compressed(3, random_waters(5, seed=3)))


@pytest.mark.parametrize("width", [None, 2, 4, CHANNELS])
def test_feature_sizes_grow_as_the_square_of_the_kept_channels(width):
    options = DESCRIPTOR_OPTIONS.model_copy(update={"compression": width})
    kept = CHANNELS if width is None else width
    sizes = LambdaSoap(options, LAYOUT, [1, 8]).feature_sizes()
    for (l, _), size in sizes.items():
        pairs = coupled_pairs(l, 2)
        same = sum(l1 == l2 for l1, l2 in pairs)
        assert size == (len(pairs) - same) * kept**2 + same * kept * (kept + 1) // 2


def test_compression_needs_a_fitted_projection_and_a_positive_width():
    descriptor = LambdaSoap(
        DESCRIPTOR_OPTIONS.model_copy(update={"compression": 3}), LAYOUT, [1, 8]
    )
    with pytest.raises(RuntimeError, match="fit_compression"):
        descriptor.compute(random_waters(1))
    with pytest.raises(ValueError, match="compression"):
        DescriptorOptions(compression=0)


def _train(samples, run_dir, epochs):
    options = DESCRIPTOR_OPTIONS.model_copy(update={"compression": 3})
    descriptor = LambdaSoap(options, LAYOUT, [1, 8])
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    settings = TrainingOptions(epochs=epochs, batch_size=4, ridge_warm_start=False)
    train(model, descriptor, samples[:8], samples[8:], settings, run_dir, progress=False)
    return model, descriptor


def test_trained_projection_is_kept_by_checkpoint_resume_and_model_file(tmp_path):
    samples = linear_samples(10, seed=3)
    model, descriptor = _train(samples, tmp_path / "run", epochs=2)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.ckpt")
    assert torch.equal(checkpoint["descriptor"]["projection"], descriptor.projection)

    frames = [sample.atoms for sample in samples[8:]]
    expected = predict(model, descriptor, frames)
    loaded, loaded_descriptor, _ = load_model(tmp_path / "run" / "checkpoint.ckpt")
    assert torch.equal(loaded_descriptor.projection, descriptor.projection)
    save_model_file(
        tmp_path / "model.pt",
        model,
        descriptor.options,
        [1, 8],
        synthetic_metadata(layout=LAYOUT),
        {},
        projection=descriptor.projection,
    )
    from_file = load_model_file(tmp_path / "model.pt")
    assert from_file.descriptor_options.compression == 3
    for got, want in zip(from_file.predict(frames), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())

    # resumed on other structures, training keeps the checkpoint's projection
    other = linear_samples(10, seed=8)
    _, resumed = _train(other, tmp_path / "run", epochs=3)
    assert torch.equal(resumed.projection, descriptor.projection)
    _, fresh = _train(other, tmp_path / "fresh", epochs=1)
    assert not torch.equal(fresh.projection, descriptor.projection)
