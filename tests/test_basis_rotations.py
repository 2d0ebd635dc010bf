"""Basis layout bookkeeping and the canonical real spherical harmonics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import lebedev_rule

from rhocore.qc.basis import BasisLayout
from rhocore.qc.rotations import (
    random_rotation,
    real_spherical_harmonics,
    rotate_coefficients,
    wigner_d_real,
)

LAYOUT = BasisLayout({8: (3, 2, 1), 1: (2, 1)})
WATER = [8, 1, 1]


def test_split_and_join_are_inverse_and_order_is_atom_l_n_m():
    vector = np.arange(LAYOUT.size(WATER), dtype=float)
    blocks = LAYOUT.split(vector, WATER)
    assert blocks[(1, 8)].shape == (1, 3, 2)
    assert blocks[(0, 1)].shape == (2, 1, 2)
    # oxygen p block: after 3 s functions, radial n=0 holds m=-1,0,1 = 3,4,5
    np.testing.assert_array_equal(blocks[(1, 8)][0, :, 0], [3, 4, 5])
    np.testing.assert_array_equal(LAYOUT.join(blocks, WATER), vector)


def test_function_table_matches_sizes():
    table = LAYOUT.function_table(WATER)
    assert len(table) == LAYOUT.size(WATER) == 3 + 6 + 5 + 2 * (2 + 3)
    assert table[LAYOUT.s_function_mask(WATER)][:, 2].max() == 0


def test_wrong_vector_length_is_explained():
    with pytest.raises(ValueError, match="basis layout gives 24 functions"):
        LAYOUT.split(np.zeros(5), WATER)


def test_unknown_element_is_explained():
    with pytest.raises(ValueError, match="no functions for element Z=6"):
        LAYOUT.size([6])


def test_layout_json_round_trip():
    assert BasisLayout.from_json(LAYOUT.to_json()) == LAYOUT


@pytest.mark.parametrize("l", range(6))
def test_real_harmonics_are_orthonormal_on_the_sphere(l):
    points, weights = lebedev_rule(41)
    values = real_spherical_harmonics(l, points.T)
    gram = (values * weights[:, None]).T @ values
    np.testing.assert_allclose(gram, np.eye(2 * l + 1), atol=1e-12)


def test_l1_harmonics_are_y_z_x():
    directions = np.eye(3)
    values = real_spherical_harmonics(1, directions)
    # x -> m=+1, y -> m=-1, z -> m=0, all with a positive sign
    assert values[0, 2] > 0 and values[1, 0] > 0 and values[2, 1] > 0


@pytest.mark.parametrize("l", range(5))
def test_wigner_matrices_form_a_representation(l):
    first, second = random_rotation(1), random_rotation(2)
    product = wigner_d_real(l, second) @ wigner_d_real(l, first)
    np.testing.assert_allclose(product, wigner_d_real(l, second @ first), atol=1e-10)


def test_rotated_coefficients_describe_the_rotated_field():
    rng = np.random.default_rng(0)
    layout = BasisLayout({8: (1, 1, 1, 1)})
    coefficients = rng.normal(size=layout.size([8]))
    rotation = random_rotation(3)
    rotated = rotate_coefficients(coefficients, layout, [8], rotation)
    points = rng.normal(size=(50, 3))

    def field(c, x):
        blocks = layout.split(c, [8])
        return sum(real_spherical_harmonics(l, x) @ blocks[(l, 8)][0, :, 0] for l in range(4))

    # f'(r) = f(R^-1 r): evaluate the rotated coefficients at R r
    np.testing.assert_allclose(
        field(rotated, points @ rotation.T), field(coefficients, points), atol=1e-10
    )
