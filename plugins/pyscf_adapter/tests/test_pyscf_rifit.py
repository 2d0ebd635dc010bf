"""The RI fit against PySCF's own density fitting and against numerical quadrature."""

from __future__ import annotations

import numpy as np
import pytest
from pyscf import df, dft, lib
from pyscf.scf import hf
from rhocore_pyscf import PySCFBackend
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.molecular.molecules import build_auxmol

from rhocore.testing.backends import density_weights

pytestmark = pytest.mark.dft  # runs real PySCF SCFs

WATER_SETTINGS = {"basis": "def2-svp", "aux_basis": "def2-universal-jkfit"}


@pytest.fixture(scope="module")
def water_scf(water):
    """RKS PBE/def2-svp of water, shared by the fits of this module."""
    return PySCFBackend(WATER_SETTINGS).run_scf(water)


def _fit(result, n_electrons=None, **options):
    """The backend with ``options`` and its total-density fit of the SCF ``result``."""
    backend = PySCFBackend({**WATER_SETTINGS, **options})
    return backend, backend.fit(result, density_weights(result.orbitals), n_electrons=n_electrons)


def test_coulomb_fit_energy_equals_pyscf_density_fitting_coulomb_energy(water_scf):
    _, fit = _fit(water_scf, metric="coulomb")
    density_matrix = fit.field_state["density_matrix"]
    # PySCF's own DF: Cholesky-decomposed 3-centre integrals L_P,ij, E_J = sum_P (L_P . P)^2
    dfobj = df.DF(water_scf.state.mol, auxbasis=WATER_SETTINGS["aux_basis"])
    dfobj.verbose = 0
    packed = lib.pack_tril(2 * density_matrix - np.diag(np.diag(density_matrix)))
    reference = sum(float(np.sum((block @ packed) ** 2)) for block in dfobj.loop())
    fitted = float(fit.coefficients @ fit.metric @ fit.coefficients)
    assert fitted == pytest.approx(reference, rel=1e-10)
    assert float(fit.coefficients @ fit.projections) == pytest.approx(reference, rel=1e-10)


def test_overlap_fit_residual_is_orthogonal_to_every_aux_function_on_a_fine_grid(water, water_scf):
    backend, fit = _fit(water_scf, metric="overlap", grid_level=4)
    grid = backend.integration_grid(water)
    residual = backend.evaluate_exact(water, fit.field_state, grid.points) - (
        backend.evaluate_fitted(water, fit.coefficients, grid.points)
    )
    auxmol = build_auxmol(water_scf.state.mol, backend.options, "H2O")
    aux_values = auxmol.eval_gto("GTOval_sph", grid.points / lib.param.BOHR)
    overlaps = (grid.weights * residual) @ aux_values
    projections = (grid.weights * backend.evaluate_exact(water, fit.field_state, grid.points)) @ (
        aux_values
    )
    assert np.abs(overlaps).max() < 1e-6 * np.abs(projections).max()


def test_basis_function_integrals_match_quadrature(water, water_scf):
    backend, fit = _fit(water_scf, metric="overlap", grid_level=4)
    grid = backend.integration_grid(water)
    auxmol = build_auxmol(water_scf.state.mol, backend.options, "H2O")
    values = aux_ao_map(auxmol).to_canonical_columns(
        auxmol.eval_gto("GTOval_sph", grid.points / lib.param.BOHR)
    )
    np.testing.assert_allclose(grid.weights @ values, fit.integrals, atol=1e-6)


def test_electron_counts_of_fitted_water_density_per_metric(water_scf, capsys):
    n_electrons = water_scf.orbitals.n_electrons
    errors = {}
    for metric in ("overlap", "coulomb"):
        _, fit = _fit(water_scf, metric=metric)
        errors[metric] = fit.fitted_integral - n_electrons
        _, constrained = _fit(water_scf, n_electrons, metric=metric, constrain_charge=True)
        errors[f"{metric}+constraint"] = constrained.fitted_integral - n_electrons
        # a constrained minimum of the metric error is never below the free one
        assert _metric_error(constrained.coefficients, fit) >= _metric_error(fit.coefficients, fit)
    with capsys.disabled():
        print("\nwater PBE/def2-svp on def2-universal-jkfit, fitted N - 10:", errors)
    assert abs(errors["coulomb"]) < 1e-3 * n_electrons
    assert abs(errors["overlap"]) < 2e-2 * n_electrons
    assert abs(errors["overlap+constraint"]) < 1e-10
    assert abs(errors["coulomb+constraint"]) < 1e-10


def test_electron_count_is_imposed_only_when_constrain_charge_is_set(water_scf):
    _, free = _fit(water_scf)
    _, given_but_off = _fit(water_scf, n_electrons=10.0)
    _, on_but_not_given = _fit(water_scf, constrain_charge=True)
    np.testing.assert_array_equal(given_but_off.coefficients, free.coefficients)
    np.testing.assert_array_equal(on_but_not_given.coefficients, free.coefficients)


def test_exact_field_is_pyscf_density_of_the_scf_orbitals(water, water_scf):
    backend, fit = _fit(water_scf)
    points = water.positions + np.random.default_rng(0).normal(scale=0.5, size=(3, 3))
    mol = water_scf.state.mol
    dm = hf.make_rdm1(water_scf.state.mo_coeff[0], water_scf.orbitals.occupations[0, 0])
    expected = dft.numint.eval_rho(mol, dft.numint.eval_ao(mol, points / lib.param.BOHR), dm)
    np.testing.assert_allclose(backend.evaluate_exact(water, fit.field_state, points), expected)


def _metric_error(coefficients, free_fit) -> float:
    """(rho_fit | rho_fit) - 2 (rho_fit | rho): the metric error up to a constant.

    The projections (rho | b) are those of the free fit, whose S d equals them.
    """
    metric, projections = free_fit.metric, free_fit.projections
    return float(coefficients @ metric @ coefficients - 2 * coefficients @ projections)
