"""lambda-SOAP descriptors: metadata, equivariance in rhocore's convention, edge cases."""

from __future__ import annotations

import json

import featomic
import metatensor
import numpy as np
import pytest
import torch
from featomic.clebsch_gordan import EquivariantPowerSpectrum

from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.descriptors.tensormaps import join_samples, key_labels
from rhocore.qc.basis import BasisLayout
from rhocore.qc.rotations import random_rotation, wigner_d_real
from rhocore.testing.models import random_waters

LAYOUT = BasisLayout({8: (3, 2, 1), 1: (2, 1)})
OPTIONS = DescriptorOptions(cutoff=3.5, max_radial=2, max_angular=2)


@pytest.fixture(scope="module")
def descriptor() -> LambdaSoap:
    return LambdaSoap(OPTIONS, LAYOUT, [1, 8])


def test_only_the_blocks_of_the_basis_are_computed_with_canonical_metadata(descriptor):
    features = descriptor.compute(random_waters(2, molecules=2))
    keys = [tuple(int(v) for v in key.values) for key in features.keys]
    assert features.keys.names == ["o3_lambda", "o3_sigma", "center_type"]
    assert sorted(keys) == sorted((l, 1, z) for l, z in LAYOUT.keys())
    sizes = descriptor.feature_sizes()
    for key, block in features.items():
        l, z = int(key["o3_lambda"]), int(key["center_type"])
        assert block.values.dtype == torch.float64
        assert block.samples.names == ["system", "atom"]
        assert block.components[0].names == ["o3_mu"]
        assert block.components[0].values.reshape(-1).tolist() == list(range(-l, l + 1))
        assert block.values.shape == (2 * (2 if z == 8 else 4), 2 * l + 1, sizes[(l, z)])


def test_swapped_pairs_of_the_self_product_are_kept_once(descriptor):
    # l_1 = l_2 pairs (a, n_1; b, n_2) and (b, n_2; a, n_1) are equal: one of them is kept
    channels = 2 * (OPTIONS.max_radial + 1)
    properties = descriptor._properties[0].values.tolist()
    assert len(properties) == (OPTIONS.max_angular + 1) * channels * (channels + 1) // 2
    assert len({tuple(p) for p in properties}) == len(properties)


def assert_rotates_by_wigner_matrices(descriptor) -> None:
    """Rotating two water dimers rotates every o3_lambda block by rhocore's real Wigner
    matrices, to 1e-12."""
    frames = random_waters(2, seed=4, molecules=2)
    rotation = random_rotation(11)
    rotated = [atoms.copy() for atoms in frames]
    for atoms in rotated:
        atoms.positions = atoms.positions @ rotation.T
    before, after = descriptor.compute(frames), descriptor.compute(rotated)
    for key, block in before.items():
        wigner = torch.tensor(wigner_d_real(int(key["o3_lambda"]), rotation))
        expected = torch.einsum("mk,skp->smp", wigner, block.values)
        assert torch.allclose(after.block(key).values, expected, atol=1e-12), key


def test_rotating_structures_rotates_features_by_rhocore_wigner_matrices(descriptor):
    assert_rotates_by_wigner_matrices(descriptor)


def test_normalized_invariant_features_have_unit_norm(descriptor):
    block = descriptor.compute(random_waters(2, molecules=2)).block(
        {"o3_lambda": 0, "o3_sigma": 1, "center_type": 1}
    )
    norms = torch.linalg.vector_norm(block.values, dim=(1, 2))
    assert torch.allclose(norms, torch.ones_like(norms))


def test_absent_species_gives_empty_blocks_not_missing_keys():
    descriptor = LambdaSoap(OPTIONS, BasisLayout({1: (2, 1), 6: (2, 1), 8: (3, 2, 1)}), [1, 6, 8])
    features = descriptor.compute(random_waters(1))
    carbon = features.block({"o3_lambda": 1, "o3_sigma": 1, "center_type": 6})
    assert carbon.values.shape == (0, 3, descriptor.feature_sizes()[(1, 6)])


def test_unknown_species_and_too_small_max_angular_are_explained(descriptor):
    water = random_waters(1)[0]
    water.numbers[0] = 6
    with pytest.raises(ValueError, match=r"species \[6\] that this descriptor was not built"):
        descriptor.compute([water])
    with pytest.raises(ValueError, match="max_angular >= 2"):
        LambdaSoap(DescriptorOptions(max_angular=1), LAYOUT, [1, 8])
    with pytest.raises(ValueError, match="no RI basis functions"):
        LambdaSoap(OPTIONS, LAYOUT, [1, 6, 8])


def test_default_max_angular_is_at_least_four_and_the_basis_lmax():
    assert LambdaSoap(DescriptorOptions(), LAYOUT, [1, 8]).max_angular == 4
    deep = BasisLayout({1: (1, 1, 1, 1, 1, 1)})
    assert LambdaSoap(DescriptorOptions(), deep, [1]).max_angular == 5


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="extra"):
        DescriptorOptions(cutof=3.0)


def test_features_do_not_depend_on_batching(descriptor):
    frames = random_waters(3, seed=2)
    together = descriptor.compute(frames)
    alone = descriptor.compute(frames[1:2])
    for key, block in alone.items():
        rows = together.block(key).samples.column("system") == 1
        np.testing.assert_allclose(together.block(key).values[rows], block.values, atol=1e-14)


def test_pieces_of_compute_chunks_join_into_the_features_of_compute(descriptor):
    frames = random_waters(3, seed=5, molecules=3)  # 9 O and 18 H atoms
    whole = descriptor.compute(frames)
    pieces = list(descriptor.compute_chunks(frames, atoms=4))
    assert len(pieces) == 5  # ceil(18 / 4); the O blocks of the last two pieces are empty
    assert all(piece.keys == whole.keys for piece in pieces)
    joined = join_samples(pieces)
    for key, block in whole.items():
        assert torch.equal(joined.block(key).samples.values, block.samples.values)
        torch.testing.assert_close(joined.block(key).values, block.values, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="at least 1"):
        next(descriptor.compute_chunks(frames, atoms=0))


def featomic_reference(descriptor: LambdaSoap, frames) -> dict[tuple[int, int], tuple]:
    """(samples, properties, values) per present (l, Z) from featomic's own CG product.

    An independent path: featomic's numpy calculators with the descriptor's expansion
    hyper-parameters. The reference keeps the unique pairs and normalises exactly as
    documented for ``LambdaSoap``.
    """
    expansion = featomic.SphericalExpansion(**json.loads(descriptor._expansion.parameters))
    calculator = EquivariantPowerSpectrum(expansion, neighbor_types=descriptor.species)
    selected = key_labels(descriptor.keys)
    raw = calculator.compute(
        frames,
        selected_keys=metatensor.Labels(selected.names, selected.values.numpy()),
        neighbors_to_properties=True,
    )
    out = {}
    for key, block in raw.items():
        properties = torch.tensor(np.array(block.properties.values))
        l1, l2, a, n1, b, n2 = properties.to(torch.int64).T
        keep = (l1 < l2) | ((l1 == l2) & ((a < b) | ((a == b) & (n1 <= n2))))
        out[(int(key["o3_lambda"]), int(key["center_type"]))] = (
            torch.tensor(np.array(block.samples.values)),
            properties[keep],
            torch.from_numpy(block.values[..., keep.numpy()]),
        )
    if descriptor.options.normalize:
        norms = {
            z: torch.linalg.vector_norm(values, dim=(1, 2)).clamp_min(1e-12)
            for (l, z), (_, _, values) in out.items()
            if l == 0
        }
        for (l, z), (samples, properties, values) in out.items():
            out[(l, z)] = (samples, properties, values / norms[z][:, None, None])
    return out


@pytest.mark.parametrize("normalize", [True, False])
def test_values_equal_featomics_own_clebsch_gordan_product(normalize):
    layout = BasisLayout({8: (2, 2, 1, 1), 1: (2, 1)})
    options = DescriptorOptions(cutoff=3.0, max_radial=3, max_angular=4, normalize=normalize)
    descriptor = LambdaSoap(options, layout, [1, 8])
    for frames in (random_waters(2, seed=7, molecules=3), random_waters(3, seed=8, molecules=2)):
        features = descriptor.compute(frames)
        reference = featomic_reference(descriptor, frames)
        assert sorted(reference) == sorted(descriptor.keys)
        for (l, z), (samples, properties, values) in reference.items():
            block = features.block({"o3_lambda": l, "o3_sigma": 1, "center_type": z})
            assert torch.equal(block.samples.values, samples)
            assert block.properties.names == [
                "l_1",
                "l_2",
                "neighbor_1_type",
                "n_1",
                "neighbor_2_type",
                "n_2",
            ]
            assert torch.equal(block.properties.values, properties)
            assert torch.allclose(block.values, values, rtol=0, atol=1e-12), (l, z)


def test_slabs_periodic_in_two_directions_get_their_periodic_environments():
    """featomic takes all-or-nothing periodicity; a slab must equal a 3D cell with vacuum."""
    from rhocore.data.generators import si100_2x1_slab
    from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
    from rhocore.qc.basis import BasisLayout

    slab = si100_2x1_slab(layers=4, vacuum=3.0)  # less vacuum than the cutoff
    layout = BasisLayout({1: (2, 1), 14: (3, 2, 1)})
    descriptor = LambdaSoap(DescriptorOptions(cutoff=4.0, max_radial=4), layout, [1, 14])
    bulk_like = slab.copy()
    bulk_like.set_cell([slab.cell[0], slab.cell[1], [0.0, 0.0, 60.0]], scale_atoms=False)
    bulk_like.pbc = True
    molecule = slab.copy()
    molecule.pbc = False
    features = [descriptor.compute([atoms]) for atoms in (slab, bulk_like, molecule)]
    for mine, expected in zip(features[0].blocks(), features[1].blocks(), strict=True):
        assert float((mine.values - expected.values).abs().max()) < 1e-12
    # and the in-plane images matter: the same atoms without periodicity differ
    assert any(
        float((a.values - b.values).abs().max()) > 1e-3
        for a, b in zip(features[0].blocks(), features[2].blocks(), strict=True)
    )
