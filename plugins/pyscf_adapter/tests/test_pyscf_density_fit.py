"""Density-fitted SCF: the fitted density equals plain SCF's far below the RI floor; the
net charge of a structure comes from its own ``info['charge']``."""

from __future__ import annotations

import ase
import numpy as np
import pytest
from pyscf import dft, gto
from pyscf.data.nist import HARTREE2EV
from rhocore_pyscf import PySCFBackend
from rhocore_pyscf.molecular.molecules import PySCFBackendError

from rhocore.fields.grids import nmae_percent

pytestmark = pytest.mark.dft

SETTINGS = {"basis": "def2-svp", "aux_basis": "def2-universal-jkfit", "metric": "coulomb"}
DENSITY_FIT = {"density_fit": True, "density_fit_basis": "def2-universal-jkfit"}


def fitted_density(backend: PySCFBackend, atoms: ase.Atoms, points: np.ndarray):
    """The RI-fitted total density on ``points`` and the SCF's exact density there."""
    scf = backend.run_scf(atoms)
    fit = backend.fit(scf, scf.orbitals.occupations, n_electrons=scf.orbitals.n_electrons)
    exact = backend.evaluate_exact(atoms, fit.field_state, points)
    return backend.evaluate_fitted(atoms, fit.coefficients, points), exact


@pytest.mark.slow
def test_density_fitted_scf_changes_the_fit_far_below_the_ri_floor(water):
    plain = PySCFBackend(SETTINGS)
    fitted = PySCFBackend({**SETTINGS, **DENSITY_FIT})
    grid = plain.integration_grid(water)
    rho_plain, exact_plain = fitted_density(plain, water, grid.points)
    rho_df, _ = fitted_density(fitted, water, grid.points)
    ri_floor = nmae_percent(rho_plain, exact_plain, grid.weights)
    df_change = nmae_percent(rho_df, rho_plain, grid.weights)
    assert 0.05 < ri_floor < 5.0
    assert df_change < 0.1 * ri_floor


def test_density_fitted_scf_energy_matches_pyscf_directly(water):
    scf = PySCFBackend({**SETTINGS, **DENSITY_FIT}).run_scf(water)
    mol = gto.M(
        atom=list(zip(water.get_chemical_symbols(), water.positions.tolist(), strict=True)),
        basis="def2-svp",
        verbose=0,
    )
    reference = dft.RKS(mol, xc="pbe").density_fit(auxbasis="def2-universal-jkfit")
    reference.conv_tol = 1e-9
    reference.kernel()
    assert scf.total_energy == pytest.approx(reference.e_tot * HARTREE2EV, abs=1e-6)


def test_a_structure_keeps_its_own_charge(water):
    hydroxide = water[[0, 1]]  # a copy: the fixture is shared
    hydroxide.info["charge"] = -1
    scf = PySCFBackend({"basis": "sto-3g"}).run_scf(hydroxide)
    assert scf.orbitals.n_electrons == 10.0


def test_a_fractional_charge_is_refused_naming_the_structure(water):
    charged = water.copy()  # the fixture is shared
    charged.info["charge"] = 0.5
    with pytest.raises(PySCFBackendError, match=r"H2O: info\['charge'\] = 0.5"):
        PySCFBackend({"basis": "sto-3g"}).run_scf(charged)


def test_density_fit_basis_without_density_fit_is_refused():
    with pytest.raises(ValueError, match="density_fit_basis applies only to density_fit='True'"):
        PySCFBackend({"density_fit_basis": "def2-universal-jkfit"})
