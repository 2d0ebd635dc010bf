"""Derived quantities of RI densities and the SCF guess, against PySCF computed directly."""

from __future__ import annotations

import numpy as np
import pytest
from pyscf import dft, gto
from pyscf.df import addons
from pyscf.gto.ft_ao import ft_ao
from rhocore_pyscf import rifit
from rhocore_pyscf.guess import density as guess
from rhocore_pyscf.molecular import properties
from rhocore_pyscf.molecular import xc as grid_xc

pytestmark = pytest.mark.dft  # runs real PySCF SCFs


@pytest.fixture(scope="module")
def water_scf(water):
    """Converged PBE/def2-SVP water and the Coulomb-metric RI fit of its density."""
    mol = gto.M(
        atom=list(zip(water.get_chemical_symbols(), water.positions.tolist(), strict=True)),
        basis="def2-svp",
        verbose=0,
    )
    solver = dft.RKS(mol)
    solver.xc, solver.conv_tol, solver.grids.level = "pbe", 1e-10, 3
    solver.kernel()
    density_matrix = solver.make_rdm1()
    auxmol = addons.make_auxmol(mol, "def2-universal-jkfit")
    coefficients = np.linalg.solve(
        rifit.metric_matrix(auxmol, "coulomb"),
        rifit.projections(mol, auxmol, density_matrix, "coulomb"),
    )
    return solver, auxmol, coefficients


def test_basis_moments_match_the_fourier_transform_and_its_slope(water_scf):
    _, auxmol, _ = water_scf
    integrals = ft_ao(auxmol, np.zeros((1, 3))).real[0]
    np.testing.assert_allclose(properties.basis_integrals(auxmol), integrals, atol=1e-12)
    # int r chi = -d Im FT(k) / dk at k = 0 (central difference, error O(h^2))
    h = 2e-4
    slope = np.array(
        [
            -(ft_ao(auxmol, h * e[None]).imag[0] - ft_ao(auxmol, -h * e[None]).imag[0]) / (2 * h)
            for e in np.eye(3)
        ]
    )
    np.testing.assert_allclose(properties.basis_first_moments(auxmol), slope, rtol=1e-6, atol=1e-6)


def test_fitted_electron_count_dipole_and_hartree_energy_match_pyscf(water_scf):
    solver, auxmol, coefficients = water_scf
    mol, density_matrix = solver.mol, solver.make_rdm1()
    assert properties.electron_count(auxmol, coefficients) == pytest.approx(mol.nelectron, rel=1e-4)
    # the Coulomb fit error of the dipole is ~1e-3 e bohr; mf.dip_moment is PySCF's own
    np.testing.assert_allclose(
        properties.dipole_moment(auxmol, coefficients),
        solver.dip_moment(unit="au", verbose=0),
        atol=3e-3,
    )
    coulomb = solver.get_j(dm=density_matrix)
    hartree = 0.5 * float(np.einsum("ij,ji->", coulomb, density_matrix))
    # the Coulomb-metric fit error of E_H is second order in the density error
    assert properties.hartree_energy(auxmol, coefficients) == pytest.approx(hartree, abs=1e-4)
    assert properties.exact_hartree_energy(mol, density_matrix) == pytest.approx(hartree, 1e-10)


def test_nuclear_attraction_and_potential_match_quadrature_and_pyscf(water_scf):
    solver, auxmol, coefficients = water_scf
    mol = solver.mol
    grids = grid_xc.dft_grids(mol, 4)
    rho = auxmol.eval_gto("GTOval_sph", grids.coords) @ coefficients
    potential = sum(
        -charge / np.linalg.norm(grids.coords - centre, axis=1)
        for charge, centre in zip(mol.atom_charges(), mol.atom_coords(), strict=True)
    )
    assert properties.nuclear_attraction_energy(auxmol, coefficients) == pytest.approx(
        float(grids.weights @ (rho * potential)), rel=1e-6
    )
    points = mol.atom_coords().mean(axis=0) + np.random.default_rng(3).normal(size=(40, 3)) * 3
    fitted = properties.electrostatic_potential(auxmol, coefficients, points)
    exact = properties.exact_electrostatic_potential(mol, solver.make_rdm1(), points)
    np.testing.assert_allclose(fitted, exact, atol=3e-3)


def test_xc_energy_and_potential_of_an_exactly_fitted_density_equal_pyscf():
    """He with one s orbital exp(-a r^2): its density is exactly an s function of 2a."""
    mol = gto.M(atom="He 0 0 0", basis={"He": [[0, [1.3, 1.0]]]}, verbose=0)
    auxmol = gto.M(atom="He 0 0 0", basis={"He": [[0, [2.6, 1.0]]]}, verbose=0)
    density_matrix = np.array([[2.0 / mol.intor("int1e_ovlp")[0, 0]]])
    coefficients = np.linalg.solve(
        rifit.metric_matrix(auxmol, "coulomb"),
        rifit.projections(mol, auxmol, density_matrix, "coulomb"),
    )
    grids = grid_xc.dft_grids(mol, 4)
    for xc in ("lda,vwn", "pbe"):
        reference = dft.numint.NumInt().nr_rks(mol, grids, xc, density_matrix)
        energy, potential = grid_xc.xc_energy_and_potential(mol, auxmol, coefficients, grids, xc)
        assert energy == pytest.approx(reference[1], rel=1e-9)
        np.testing.assert_allclose(potential, reference[2], rtol=1e-8)
        assert grid_xc.xc_energy(auxmol, coefficients, grids, xc) == pytest.approx(energy)


def dense_xc(mol, auxmol, coefficients, grids, xc):
    """E_xc, V_xc and <chi_P|v_xc> evaluated in one piece, no screening: the reference."""
    gga = grid_xc.functional_kind(xc) == "GGA"
    aux = auxmol.eval_gto("GTOval_sph_deriv1" if gga else "GTOval_sph", grids.coords)
    ao = dft.numint.eval_ao(mol, grids.coords, deriv=1 if gga else 0)
    rho = aux @ coefficients
    rho[..., (rho[0] if gga else rho) < grid_xc.DENSITY_FLOOR] = 0.0
    exc, vxc = dft.libxc.eval_xc(xc, rho, spin=0, deriv=1)[:2]
    w = grids.weights
    if not gga:
        weighted = w * vxc[0]
        return w @ (rho * exc), ao.T @ (weighted[:, None] * ao), aux.T @ weighted
    weighted = np.vstack([w * vxc[0], 2.0 * w * vxc[1] * rho[1:]])
    half = ao[0].T @ (
        0.5 * weighted[0][:, None] * ao[0] + np.einsum("xg,xgi->gi", weighted[1:], ao[1:])
    )
    return w @ (rho[0] * exc), half + half.T, np.einsum("xgp,xg->p", aux, weighted)


@pytest.mark.parametrize("sparse_above", [dft.numint.SWITCH_SIZE, 0])
def test_screened_xc_matrix_and_projections_equal_a_dense_evaluation(
    water_scf, sparse_above, monkeypatch
):
    """Also with PySCF's sparse AO kernels, which it uses above SWITCH_SIZE functions."""
    monkeypatch.setattr(dft.numint, "SWITCH_SIZE", sparse_above)
    solver, auxmol, coefficients = water_scf
    mol, grids = solver.mol, grid_xc.dft_grids(solver.mol, 3)
    assert len(grids.weights) % dft.numint.ALIGNMENT_UNIT == 0
    for xc in ("lda,vwn", "pbe"):
        energy, potential, projections = dense_xc(mol, auxmol, coefficients, grids, xc)
        screened = grid_xc.xc_energy_and_potential(mol, auxmol, coefficients, grids, xc)
        assert screened[0] == pytest.approx(energy, abs=1e-10)
        np.testing.assert_allclose(screened[1], potential, atol=1e-10)
        only = grid_xc.xc_energy_and_projections(auxmol, coefficients, grids, xc)
        assert only[0] == pytest.approx(energy, abs=1e-10)
        np.testing.assert_allclose(only[1], projections, atol=1e-10)


def test_xc_matrix_through_the_orbital_pairs_ri_is_close_to_the_grid_one(water_scf):
    solver, auxmol, coefficients = water_scf
    mol, grids = solver.mol, grid_xc.dft_grids(solver.mol, 3)
    _, on_grid = grid_xc.xc_energy_and_potential(mol, auxmol, coefficients, grids, "pbe")
    _, projections = grid_xc.xc_energy_and_projections(auxmol, coefficients, grids, "pbe")
    metric = auxmol.intor("int2c2e", hermi=1)
    through_ri = guess.coulomb_matrix(mol, auxmol, np.linalg.solve(metric, projections))
    # measured: 1.4e-3 hartree largest element, 2e-4 hartree weighted by the density matrix
    assert np.abs(through_ri - on_grid).max() < 5e-3
    assert abs(np.einsum("ij,ji->", through_ri - on_grid, solver.make_rdm1())) < 1e-3


def test_fitted_xc_energy_is_close_to_the_kohn_sham_one(water_scf):
    solver, auxmol, coefficients = water_scf
    grids = grid_xc.dft_grids(solver.mol, 3)
    exact = properties.exact_xc_energy(solver.mol, solver.make_rdm1(), grids, "pbe")
    fitted = grid_xc.xc_energy(auxmol, coefficients, grids, "pbe")
    # the RI floor of this basis, measured: 9 meV/atom; far below 1 % of E_xc
    assert abs(fitted - exact) < 3e-3
    assert fitted != exact


def test_orbital_functionals_are_refused_with_the_reason():
    for xc in ("pbe0", "scan"):
        with pytest.raises(grid_xc.FunctionalError, match="LDA and GGA"):
            grid_xc.functional_kind(xc)


def test_guess_from_the_fitted_density_halves_the_iterations_to_the_same_energy(water_scf):
    solver, auxmol, coefficients = water_scf
    mol = solver.mol

    def run(**kwargs):
        fresh = dft.RKS(mol)
        fresh.xc, fresh.conv_tol, fresh.grids.level = "pbe", 1e-9, 3
        fresh.kernel(**kwargs)
        return fresh

    minao = run()
    for xc_matrix in guess.XC_MATRICES:
        orbitals = guess.guess_from_density(
            mol, auxmol, coefficients, "pbe", grid_level=3, xc_matrix=xc_matrix
        )
        assert np.trace(orbitals.density_matrix @ mol.intor("int1e_ovlp")) == pytest.approx(10)
        started = run(dm0=orbitals.density_matrix)
        assert started.converged and minao.converged
        assert started.cycles <= 0.7 * minao.cycles
        assert started.e_tot == pytest.approx(minao.e_tot, abs=1e-6)


def test_guess_keeps_the_electron_count_of_the_molecule(water_scf):
    solver, auxmol, coefficients = water_scf
    shifted = guess.with_electron_count(auxmol, 1.01 * coefficients, 10.0)
    assert properties.electron_count(auxmol, shifted) == pytest.approx(10.0, rel=1e-12)
