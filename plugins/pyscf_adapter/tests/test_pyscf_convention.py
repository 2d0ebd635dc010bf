"""PySCF's auxiliary AO order and phases are converted to the canonical convention."""

from __future__ import annotations

import numpy as np
import pytest
from pyscf import gto
from rhocore_pyscf import PySCFBackend, convention
from rhocore_pyscf.convention import aux_ao_map, pyscf_to_canonical_m

from rhocore.qc.rotations import real_spherical_harmonics
from rhocore.testing.backends import check_backend

#: Unsorted shells, a general contraction (two s radials in one shell) and l up to 4;
#: every radial function is a single primitive so its radial part is known exactly.
PROBE_BASIS = {
    "O": [
        [2, [1.1, 1.0]],
        [0, [2.0, 1.0, 0.0], [0.5, 0.0, 1.0]],
        [4, [0.9, 1.0]],
        [1, [1.5, 1.0]],
        [3, [0.8, 1.0]],
        [1, [0.6, 1.0]],
    ],
    "H": [[1, [0.8, 1.0]], [0, [1.0, 1.0]]],
}
#: Exponent (bohr^-2) of radial function n of angular momentum l, in PySCF's order per l.
PROBE_EXPONENTS = {
    8: {0: [2.0, 0.5], 1: [1.5, 0.6], 2: [1.1], 3: [0.8], 4: [0.9]},
    1: {0: [1.0], 1: [0.8]},
}


def test_p_functions_are_reordered_from_xyz_to_yzx():
    order, signs = pyscf_to_canonical_m(1)
    assert order == (1, 2, 0) and signs == (1.0, 1.0, 1.0)


def test_layout_counts_radial_functions_per_l_including_general_contractions():
    auxmol = gto.M(atom="O 0 0 0; H 0 0 1.8; H 1.7 0 -0.5", basis=PROBE_BASIS, spin=None, verbose=0)
    layout = aux_ao_map(auxmol).layout
    assert layout.nmax == {1: (1, 1), 8: (2, 2, 1, 1, 1)}
    assert layout.size([8, 1, 1]) == auxmol.nao


@pytest.mark.parametrize("l", range(5))
def test_single_shell_is_canonical_harmonic_times_one_positive_constant(l):
    auxmol = gto.M(atom="He 0 0 0", basis={"He": [[l, [0.7, 1.0]]]}, verbose=0)
    points = np.random.default_rng(l).normal(size=(60, 3))
    ao_map = aux_ao_map(auxmol)
    canonical = ao_map.to_canonical_columns(auxmol.eval_gto("GTOval_sph", points))
    radial = np.exp(-0.7 * np.sum(points**2, axis=1)) * np.linalg.norm(points, axis=1) ** l
    harmonics = real_spherical_harmonics(l, points) * radial[:, None]
    constant = np.sum(canonical * harmonics) / np.sum(harmonics * harmonics)
    assert constant > 0
    np.testing.assert_allclose(canonical, constant * harmonics, rtol=1e-10, atol=1e-12)


def test_every_converted_function_is_its_canonical_atom_l_n_m_function():
    positions = np.array([[0.1, -0.2, 0.3], [0.9, 1.4, -0.2], [-1.2, 0.4, 0.8]])  # bohr
    auxmol = gto.M(
        atom=[("O", positions[0]), ("H", positions[1]), ("H", positions[2])],
        basis=PROBE_BASIS,
        unit="Bohr",
        verbose=0,
    )
    ao_map = aux_ao_map(auxmol)
    numbers = [8, 1, 1]
    points = np.random.default_rng(3).normal(scale=1.5, size=(80, 3))
    canonical = ao_map.to_canonical_columns(auxmol.eval_gto("GTOval_sph", points))
    table = ao_map.layout.function_table(numbers)
    for atom, z, l, n, _ in {tuple(row[:4]) + (0,) for row in table}:
        columns = np.nonzero((table[:, 0] == atom) & (table[:, 2] == l) & (table[:, 3] == n))[0]
        relative = points - positions[atom]
        distance = np.linalg.norm(relative, axis=1)
        exponent = PROBE_EXPONENTS[z][l][n]
        expected = (
            real_spherical_harmonics(l, relative)
            * (distance**l * np.exp(-exponent * distance**2))[:, None]
        )
        values = canonical[:, columns]
        constant = np.sum(values * expected) / np.sum(expected * expected)
        assert constant > 0, (atom, l, n)
        np.testing.assert_allclose(values, constant * expected, rtol=1e-9, atol=1e-12)


def test_canonical_and_pyscf_vectors_round_trip():
    auxmol = gto.M(atom="O 0 0 0; H 0 0 1.8", basis=PROBE_BASIS, spin=None, verbose=0)
    ao_map = aux_ao_map(auxmol)
    vector = np.random.default_rng(0).normal(size=auxmol.nao)
    np.testing.assert_array_equal(ao_map.from_canonical(ao_map.to_canonical(vector)), vector)


@pytest.mark.dft
def test_a_wrong_p_order_makes_the_backend_contract_fail(water, monkeypatch):
    correct = convention.pyscf_to_canonical_m

    def p_left_as_xyz(l: int):
        return ((0, 1, 2), (1.0, 1.0, 1.0)) if l == 1 else correct(l)

    backend = PySCFBackend({"basis": "sto-3g"})
    monkeypatch.setattr(convention, "pyscf_to_canonical_m", p_left_as_xyz)
    with pytest.raises(AssertionError, match="canonical order"):
        check_backend(backend, water)


@pytest.mark.dft
def test_a_wrong_d_phase_makes_the_backend_contract_fail(water, monkeypatch):
    correct = convention.pyscf_to_canonical_m

    def d_xy_flipped(l: int):
        order, signs = correct(l)
        return (order, (-1.0, *signs[1:])) if l == 2 else (order, signs)

    monkeypatch.setattr(convention, "pyscf_to_canonical_m", d_xy_flipped)
    with pytest.raises(AssertionError, match="canonical order"):
        check_backend(PySCFBackend({"basis": "sto-3g"}), water)
