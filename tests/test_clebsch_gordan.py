"""The chunked Clebsch-Gordan self-product against a direct contraction per channel pair."""

from __future__ import annotations

import pytest
import torch

from rhocore.descriptors.clebsch_gordan import (
    EXPANSION_PAIR_NAMES,
    SelfProduct,
    coupled_pairs,
    expansion_channels,
    real_cg_coefficients,
)

MAX_ANGULAR, MAX_RADIAL, TYPES = 3, 2, [1, 8]


def direct_self_product(density: list[torch.Tensor], lam: int, coefficients) -> torch.Tensor:
    """sum_{m1,m2} C[m1, m2, mu] x_l1[m1, p] x_l2[m2, q] of every coupled (l1 <= l2),
    in property order, swapped pairs of l1 = l2 dropped."""
    count = density[0].shape[2]
    first, second = torch.meshgrid(torch.arange(count), torch.arange(count), indexing="ij")
    keep = (first <= second).reshape(-1)
    pieces = []
    for l1, l2 in coupled_pairs(lam, MAX_ANGULAR):
        full = torch.einsum(
            "xyz,axp,ayq->azpq", coefficients[(l1, l2, lam)], density[l1], density[l2]
        ).reshape(density[0].shape[0], 2 * lam + 1, -1)
        pieces.append(full[..., keep] if l1 == l2 else full)
    return torch.cat(pieces, dim=2)


@pytest.mark.parametrize("normalize", [False, True])
def test_chunks_of_atoms_give_the_direct_contraction(normalize):
    # 7 atoms in chunks of 3: two full chunks and a partial one
    generator = torch.Generator().manual_seed(0)
    channels = expansion_channels(TYPES, MAX_RADIAL)
    density = [
        torch.randn(7, 2 * l + 1, len(channels), generator=generator, dtype=torch.float64)
        for l in range(MAX_ANGULAR + 1)
    ]
    coefficients = real_cg_coefficients(MAX_ANGULAR)
    lambdas = [0, 1, 2, 3]
    product = SelfProduct(
        lambdas, MAX_ANGULAR, channels, EXPANSION_PAIR_NAMES, coefficients, chunk=3
    )
    features = product(density, normalize=normalize)
    expected = {lam: direct_self_product(density, lam, coefficients) for lam in lambdas}
    if normalize:
        norm = torch.linalg.vector_norm(expected[0], dim=(1, 2))
        expected = {lam: block / norm[:, None, None] for lam, block in expected.items()}
    for lam in lambdas:
        assert features[lam].shape == (7, 2 * lam + 1, len(product.properties[lam]))
        torch.testing.assert_close(features[lam], expected[lam], rtol=0, atol=1e-12)
