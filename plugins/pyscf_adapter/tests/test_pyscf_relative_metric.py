"""The ``relative`` RI metric of periodic cells: its integrals, its fit, and its refusals.

Tiny cells (H2 and LiH slabs, gth-szv, 60-200 hartree): about 15 s on an idle machine.
"""

from __future__ import annotations

import ase
import numpy as np
import pytest
from rhocore_pyscf import PySCFBackend, PySCFOptions
from rhocore_pyscf.molecular.molecules import PySCFBackendError
from rhocore_pyscf.periodic import cells as periodic
from rhocore_pyscf.periodic.relative_metric import relative_metric_terms

from rhocore.testing.backends import density_weights

pytestmark = pytest.mark.dft  # runs real PySCF SCFs

SETTINGS = {
    "basis": "gth-szv",
    "aux_basis": "even-tempered",
    "ke_cutoff": 60.0,
    "metric": "overlap",
}


def _slab(symbols: str, positions, lateral: float = 3.6, height: float = 9.0) -> ase.Atoms:
    atoms = ase.Atoms(symbols, positions=positions, cell=[lateral, lateral, height], pbc=[1, 1, 0])
    atoms.center(axis=2)
    return atoms


@pytest.fixture(scope="module")
def h2_layer() -> ase.Atoms:
    return _slab("H2", [[0.0, 0.0, 0.0], [0.2, 0.3, 0.65]], lateral=4.0, height=6.0)


@pytest.fixture(scope="module")
def lih_slab() -> ase.Atoms:
    return _slab("LiH", [[0.0, 0.0, 0.0], [0.3, 0.4, 1.5]])


def test_a_high_floor_turns_the_relative_metric_into_the_analytic_overlap(h2_layer):
    # |rho| << floor: S_rel * floor is the overlap matrix, here by grid quadrature (at
    # 200 hartree the grid resolves the tightest auxiliary function) against PySCF's
    # analytic lattice-summed two- and three-centre overlaps
    backend = PySCFBackend({**SETTINGS, "ke_cutoff": 200.0, "kpts": (2, 1, 1)})
    scf = backend.run_scf(h2_layer)
    density = periodic.weighted_density_matrices(scf.state.mo_coeff, density_weights(scf.orbitals))
    cell, kpts = scf.state.cell, scf.state.kpts
    auxcell = periodic.build_auxcell(cell, backend.options, "H2")
    grid = periodic.uniform_grid(cell)
    field = periodic.density_on_points(cell, density, kpts, grid.points)
    assert np.abs(periodic.density_on_mesh(cell, density, kpts) - field).max() < 1e-9
    floor = 1e8
    metric, projections = relative_metric_terms(auxcell, grid.points, grid.weights, field, floor)
    overlap = periodic.metric_matrix(auxcell)
    analytic = periodic.projections(cell, auxcell, density, kpts)
    assert np.abs(metric * floor - overlap).max() < 1e-7 * np.abs(overlap).max()
    assert np.abs(projections * floor - analytic).max() < 1e-7 * np.abs(analytic).max()
    # with power 2 the weight is 1 / floor^2 there
    squared, _ = relative_metric_terms(auxcell, grid.points, grid.weights, field, floor, 2.0)
    assert np.abs(squared * floor**2 - overlap).max() < 1e-7 * np.abs(overlap).max()


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_relative_fit_minimises_the_relative_error_and_follows_the_vacuum_tail(lih_slab, power):
    overlap_backend = PySCFBackend({**SETTINGS, "metric": "overlap"})
    relative_backend = PySCFBackend(
        {**SETTINGS, "metric": "relative", "relative_metric_power": power}
    )
    scf = overlap_backend.run_scf(lih_slab)
    weights = density_weights(scf.orbitals)
    fits = {
        "overlap": overlap_backend.fit(scf, weights),
        "relative": relative_backend.fit(scf, weights),
    }
    assert fits["relative"].metric_kind == "relative"
    grid = overlap_backend.integration_grid(lih_slab)
    exact = overlap_backend.evaluate_exact(lih_slab, fits["overlap"].field_state, grid.points)
    floor = relative_backend.options.relative_metric_floor

    def relative_error(coefficients: np.ndarray) -> float:
        fitted = overlap_backend.evaluate_fitted(lih_slab, coefficients, grid.points)
        return float(grid.weights @ ((fitted - exact) ** 2 / (np.abs(exact) + floor) ** power))

    # the relative fit is the minimum of its objective, evaluated here on the grid directly
    best = relative_error(fits["relative"].coefficients)
    assert best < relative_error(fits["overlap"].coefficients)
    rng = np.random.default_rng(0)
    for _ in range(3):
        step = 1e-3 * rng.standard_normal(len(fits["relative"].coefficients))
        assert relative_error(fits["relative"].coefficients + step) > best
    # 1.5-3 angstrom above the topmost atom, where an STM tip is, it follows the field
    # closer than the overlap fit does
    top = lih_slab.positions[:, 2].max()
    lateral = np.linspace(0.0, 3.6, 12, endpoint=False)
    heights = np.linspace(top + 1.5, top + 3.0, 6)
    above = np.stack(np.meshgrid(lateral, lateral, heights), axis=-1).reshape(-1, 3)
    tail = overlap_backend.evaluate_exact(lih_slab, fits["overlap"].field_state, above)

    def tail_error(fit) -> float:
        fitted = overlap_backend.evaluate_fitted(lih_slab, fit.coefficients, above)
        return float(np.mean(np.abs(fitted - tail)) / np.mean(tail))

    assert tail_error(fits["relative"]) < 0.7 * tail_error(fits["overlap"])


def test_relative_metric_is_refused_for_molecules_a_bad_floor_and_a_bad_power(water):
    with pytest.raises(PySCFBackendError, match=r"periodic-only options \[\"metric='relative'\"\]"):
        PySCFBackend({"basis": "sto-3g", "metric": "relative"}).run_scf(water)
    relative = {**SETTINGS, "metric": "relative"}
    with pytest.raises(ValueError, match="relative_metric_floor"):
        PySCFBackend({**relative, "relative_metric_floor": 0.0})
    with pytest.raises(ValueError, match="relative_metric_power"):
        PySCFBackend({**relative, "relative_metric_power": 3.0})


@pytest.mark.parametrize(
    "option", [{"relative_metric_floor": 1e-4}, {"relative_metric_power": 2.0}]
)
def test_relative_metric_weights_are_refused_with_another_metric(option):
    (name,) = option
    with pytest.raises(ValueError, match=rf"{name} applies only to metric='relative'.*'overlap'"):
        PySCFOptions(**SETTINGS, **option)
    assert (
        getattr(PySCFOptions(**{**SETTINGS, **option, "metric": "relative"}), name) == option[name]
    )


def test_stored_options_of_another_metric_validate_again():
    # a dataset stores every option, the relative metric's defaults included
    stored = PySCFOptions(**SETTINGS).model_dump(mode="json")
    assert PySCFOptions.model_validate(stored).metric == "overlap"


def test_a_refit_of_stored_density_matrices_is_the_fit_from_the_scf(lih_slab):
    # Other fit settings on finished data: the field stored by an overlap fit, fitted again
    # with the relative metric, must be the relative fit of the same SCF.
    overlap_backend = PySCFBackend({**SETTINGS, "metric": "overlap"})
    relative_options = {**SETTINGS, "metric": "relative", "relative_metric_power": 2.0}
    relative_backend = PySCFBackend(relative_options)
    scf = overlap_backend.run_scf(lih_slab)
    weights = density_weights(scf.orbitals)
    stored = overlap_backend.fit(scf, weights)
    direct = relative_backend.fit(scf, weights)
    refitted = periodic.refit(lih_slab, stored.field_state, relative_backend.options)
    scale = np.abs(direct.coefficients).max()
    assert np.abs(refitted.coefficients - direct.coefficients).max() < 1e-8 * scale
    assert np.abs(refitted.metric - direct.metric).max() < 1e-10 * np.abs(direct.metric).max()
    assert refitted.metric_kind == "relative"
    constrained = PySCFOptions(**{**relative_options, "constrain_charge": True})
    with pytest.raises(ValueError, match="cannot constrain the charge"):
        periodic.refit(lih_slab, stored.field_state, constrained)
