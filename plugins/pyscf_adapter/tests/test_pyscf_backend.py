"""The PySCF backend: contract suite, spin, options, user-facing errors, registration."""

from __future__ import annotations

import ase
import numpy as np
import pytest
from pydantic import ValidationError
from rhocore_pyscf import PySCFBackend, PySCFOptions
from rhocore_pyscf.molecular.molecules import PySCFBackendError

from rhocore.plugins.registry import get_registry
from rhocore.qc.rifit import IllConditionedMetricError
from rhocore.testing.backends import check_backend, density_weights

pytestmark = pytest.mark.dft  # runs real PySCF SCFs


@pytest.mark.parametrize(("basis", "metric"), [("def2-svp", "coulomb"), ("sto-3g", "overlap")])
def test_restricted_water_keeps_the_backend_contract(water, basis, metric):
    report = check_backend(PySCFBackend({"basis": basis, "metric": metric}), water)
    assert report.n_electrons == 10.0


@pytest.mark.slow
def test_homo_target_keeps_the_backend_contract_at_grid_level_4(water):
    def homo(orbitals):
        weights = np.zeros_like(orbitals.occupations)
        weights[0, 0, orbitals.homo_index(0)] = 2.0
        return weights

    check_backend(PySCFBackend({"basis": "sto-3g", "grid_level": 4}), water, homo, rotation_seed=5)


@pytest.mark.slow
def test_unrestricted_triplet_has_two_spin_channels_and_keeps_the_contract(methylene):
    backend = PySCFBackend({"basis": "sto-3g", "spin": 2})
    scf = backend.run_scf(methylene)
    assert scf.orbitals.n_spin == 2 and scf.orbitals.energies.shape[1] == 1
    assert scf.orbitals.occupations[:, 0].sum(axis=1).tolist() == [5.0, 3.0]
    check_backend(backend, methylene)


def test_restricted_open_shell_triplet_has_one_spin_channel(methylene):
    options = {"basis": "sto-3g", "spin": 2, "unrestricted": False}
    scf = PySCFBackend(options).run_scf(methylene)
    assert scf.orbitals.n_spin == 1 and scf.orbitals.n_electrons == 8.0
    assert sorted(set(scf.orbitals.occupations.ravel().tolist())) == [0.0, 1.0, 2.0]


def test_orbital_energies_are_in_ev_and_fermi_level_lies_in_the_gap(water):
    scf = PySCFBackend({"basis": "def2-svp"}).run_scf(water)
    energies, occupied = scf.orbitals.energies[0, 0], scf.orbitals.occupations[0, 0] > 0
    homo, lumo = energies[occupied].max(), energies[~occupied].min()
    # the PBE HOMO of water (a lone pair) lies about 6-7 eV (a quarter hartree) below zero
    assert -10.0 < homo < -4.0
    assert homo < scf.orbitals.fermi_level < lumo
    assert scf.orbitals.fermi_level == pytest.approx(0.5 * (homo + lumo))


def test_unconverged_scf_is_returned_marked_unconverged(water):
    scf = PySCFBackend({"basis": "sto-3g", "max_cycle": 1, "conv_tol": 1e-12}).run_scf(water)
    assert scf.converged is False
    assert scf.orbitals.n_electrons == 10.0


def test_integration_grid_of_a_higher_level_has_more_points(water):
    sizes = [
        PySCFBackend({"grid_level": level}).integration_grid(water).weights.size for level in (2, 4)
    ]
    assert sizes[1] > sizes[0]


def test_even_tempered_aux_basis_depends_on_beta_and_fits_the_density(water):
    layouts = {
        beta: PySCFBackend({"aux_basis": "even-tempered", "even_tempered_beta": beta})
        .basis_layout(water)
        .size(water.numbers)
        for beta in (1.6, 2.5)
    }
    assert layouts[1.6] > layouts[2.5]
    backend = PySCFBackend({"basis": "sto-3g", "aux_basis": "even-tempered"})
    scf = backend.run_scf(water)
    assert backend.fit(scf, density_weights(scf.orbitals)).fitted_integral == pytest.approx(
        10.0, rel=1e-3
    )


def test_even_tempered_max_l_extends_or_cuts_the_angular_momenta_of_one_element(water):
    def layout(max_l):
        options = {"aux_basis": "even-tempered", "even_tempered_max_l": max_l}
        return PySCFBackend(options).basis_layout(water).nmax

    rule = layout({})
    changed = layout({"H": 3, "O": 2})
    # an l above the rule copies the exponents of the rule's highest l (d for H here)
    assert changed[1] == (*rule[1], rule[1][-1])
    assert changed[8] == rule[8][:3]


def test_f_functions_on_oxygen_fit_the_density_better_on_the_grid(water):
    def fit_error(max_l):
        options = {"basis": "sto-3g", "metric": "overlap", "aux_basis": "even-tempered"}
        backend = PySCFBackend({**options, "even_tempered_max_l": max_l})
        scf = backend.run_scf(water)
        fit = backend.fit(scf, density_weights(scf.orbitals))
        grid = backend.integration_grid(water)
        error = backend.evaluate_fitted(water, fit.coefficients, grid.points) - (
            backend.evaluate_exact(water, fit.field_state, grid.points)
        )
        return float(np.sqrt(grid.weights @ error**2))

    # sto-3g is sp on O, so PySCF's rule stops at d
    assert fit_error({"O": 3}) < 0.9 * fit_error({})


def test_ill_conditioned_metric_error_names_the_structure_and_the_fix(water):
    backend = PySCFBackend({"basis": "sto-3g", "condition_limit": 1e3})
    scf = backend.run_scf(water)
    with pytest.raises(IllConditionedMetricError, match="H2O.*nearly linearly dependent"):
        backend.fit(scf, density_weights(scf.orbitals))


def test_nearly_coincident_atoms_give_the_linear_dependence_error():
    backend = PySCFBackend({"basis": "sto-3g"})
    scf = backend.run_scf(ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 1e-5]]))
    with pytest.raises(IllConditionedMetricError, match="H2.*condition_limit.*geometry"):
        backend.fit(scf, density_weights(scf.orbitals))


@pytest.mark.filterwarnings("ignore:Basis may be available")
def test_element_missing_from_a_basis_names_the_structure_and_the_basis():
    with pytest.raises(PySCFBackendError, match="structure U: the orbital basis 'def2-svp'"):
        PySCFBackend().run_scf(ase.Atoms("U"))
    with pytest.raises(PySCFBackendError, match="structure I: the auxiliary basis 'cc-pvdz-jkfit'"):
        PySCFBackend({"aux_basis": "cc-pvdz-jkfit"}).basis_layout(ase.Atoms("I"))


def test_inconsistent_spin_names_the_options(water):
    with pytest.raises(PySCFBackendError, match="H2O.*'charge' and 'spin'"):
        PySCFBackend({"spin": 1}).run_scf(water)


def test_periodic_structure_with_molecular_options_is_refused(water):
    periodic = water.copy()
    periodic.set_cell([5.0, 5.0, 5.0])
    periodic.pbc = True
    with pytest.raises(PySCFBackendError, match="periodic"):
        PySCFBackend().basis_layout(periodic)


def test_unknown_option_is_rejected():
    with pytest.raises(ValidationError, match="basis_set"):
        PySCFBackend({"basis_set": "sto-3g"})


def test_unknown_functional_is_rejected():
    with pytest.raises(ValidationError, match="does not know the functional 'pbe00'"):
        PySCFOptions(xc="pbe00")


def test_even_tempered_beta_without_even_tempered_basis_is_rejected():
    with pytest.raises(ValidationError, match="even_tempered_beta applies only"):
        PySCFOptions(even_tempered_beta=2.2)


def test_even_tempered_max_l_needs_the_even_tempered_basis_and_element_symbols():
    with pytest.raises(ValidationError, match="even_tempered_max_l applies only"):
        PySCFOptions(even_tempered_max_l={"Si": 3})
    with pytest.raises(ValidationError, match=r"\['Xx'\] that are not element symbols"):
        PySCFOptions(aux_basis="even-tempered", even_tempered_max_l={"Xx": 3})


def test_unrestricted_follows_spin_unless_given():
    assert not PySCFOptions().is_unrestricted
    assert PySCFOptions(spin=2).is_unrestricted
    assert PySCFOptions(unrestricted=True).is_unrestricted


def test_backend_is_found_by_name_through_its_entry_point():
    info = get_registry().info("backend", "pyscf")
    assert info.cls is PySCFBackend and info.distribution == "rhocore-pyscf"
    assert PySCFBackend().version == __import__("pyscf").__version__
