"""Flat coefficient vectors <-> TensorMaps, and batching of single-structure maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metatensor.torch import TensorBlock, TensorMap

from rhocore.descriptors.tensormaps import (
    coefficients_to_tensormap,
    split_structures,
    stack_structures,
    tensormap_to_coefficients,
)
from rhocore.qc.basis import BasisLayout

LAYOUT = BasisLayout({8: (3, 2, 1), 1: (2, 1)})
NUMBERS = [[8, 1, 1], [1, 8, 1, 1, 8, 1], [1, 1]]


def _vectors(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=LAYOUT.size(z)) for z in NUMBERS]


def test_vectors_to_tensormap_and_back_is_identity():
    vectors = _vectors()
    tensor = coefficients_to_tensormap(vectors, NUMBERS, LAYOUT)
    back = tensormap_to_coefficients(tensor, NUMBERS, LAYOUT)
    for vector, result in zip(vectors, back, strict=True):
        np.testing.assert_array_equal(result.numpy(), vector)


def test_blocks_hold_the_coefficients_of_basis_split():
    vectors = _vectors(1)
    tensor = coefficients_to_tensormap(vectors, NUMBERS, LAYOUT)
    block = tensor.block({"o3_lambda": 1, "o3_sigma": 1, "center_type": 8})
    assert block.samples.values.tolist() == [[0, 0], [1, 1], [1, 4]]
    assert block.properties.names == ["n"] and block.components[0].names == ["o3_mu"]
    np.testing.assert_array_equal(
        block.values[2].numpy(), LAYOUT.split(vectors[1], NUMBERS[1])[(1, 8)][1]
    )
    empty = tensor.block({"o3_lambda": 2, "o3_sigma": 1, "center_type": 8})
    assert empty.values.shape == (3, 5, 1)


def test_gradients_flow_from_flat_vectors_to_block_values():
    tensor = coefficients_to_tensormap(_vectors(2), NUMBERS, LAYOUT)
    values = tensor.block(0).values.clone().requires_grad_(True)

    blocks = [
        TensorBlock(values if k == 0 else b.values, b.samples, b.components, b.properties)
        for k, b in enumerate(tensor.blocks())
    ]
    vectors = tensormap_to_coefficients(TensorMap(tensor.keys, blocks), NUMBERS, LAYOUT)
    sum(v.sum() for v in vectors).backward()
    assert torch.equal(values.grad, torch.ones_like(values))


def test_incomplete_tensormap_is_refused():
    tensor = coefficients_to_tensormap(_vectors(), NUMBERS, LAYOUT)
    with pytest.raises(ValueError, match="does not match the basis layout"):
        tensormap_to_coefficients(tensor, [[8, 1, 1], [1, 8, 1, 1, 8, 1], [1, 1, 1]], LAYOUT)
    with pytest.raises(ValueError, match="structure 1 has no atom 4 of Z=8"):
        tensormap_to_coefficients(tensor, [[8, 1, 1], [1, 8, 1, 1, 1, 1], [1, 1]], LAYOUT)
    with pytest.raises(ValueError, match="structure 1 has no atom 5 of Z=1"):
        tensormap_to_coefficients(tensor, [[8, 1, 1], [1, 8, 1, 1], [1, 1]], LAYOUT)


def test_split_then_stack_gives_back_the_batch():
    tensor = coefficients_to_tensormap(_vectors(3), NUMBERS, LAYOUT)
    pieces = split_structures(tensor, len(NUMBERS))
    assert pieces[2].block({"o3_lambda": 0, "o3_sigma": 1, "center_type": 8}).values.shape[0] == 0
    joined = stack_structures(pieces)
    for key, block in tensor.items():
        assert joined.block(key).samples == block.samples
        assert torch.equal(joined.block(key).values, block.values)
