"""Periodic cells in the PySCF backend: contract suite, k-points, fit integrals, vacuum level.

Cells are tiny (LiH or H2 in a few-angstrom slab cell, gth-szv, 60 hartree cutoff): the
file takes about 30 s on an idle 2-core machine.
"""

from __future__ import annotations

import ase
import numpy as np
import pytest
from pydantic import ValidationError
from pyscf.lib.parameters import BOHR
from pyscf.pbc import df
from pyscf.pbc import dft as pbcdft
from pyscf.pbc.gto.pseudo import pp_int
from rhocore_pyscf import PySCFBackend, PySCFOptions
from rhocore_pyscf.backend import PySCFState
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.molecular.molecules import PySCFBackendError
from rhocore_pyscf.periodic import cells as periodic
from scipy.special import expit

from rhocore.qc.backend import BackendSetupError
from rhocore.testing.backends import check_backend, density_weights

pytestmark = pytest.mark.dft  # runs real PySCF SCFs

#: Small, fast settings: a 60 hartree cutoff converges these cells' densities to ~1e-5.
CELL_SETTINGS = {
    "basis": "gth-szv",
    "metric": "overlap",
    "aux_basis": "even-tempered",
    "ke_cutoff": 60.0,
    "conv_tol": 1e-11,
}


def _backend(**options) -> PySCFBackend:
    return PySCFBackend({**CELL_SETTINGS, **options})


def _h2_layer(lateral: float, height: float, pbc=(True, True, False)) -> ase.Atoms:
    """Tilted H2 in a square cell, vacuum along z."""
    atoms = ase.Atoms(
        "H2",
        positions=[[0.0, 0.0, 0.0], [0.2, 0.3, 0.65]],
        cell=[lateral, lateral, height],
        pbc=pbc,
    )
    atoms.center()
    return atoms


@pytest.fixture(scope="module")
def lih_slab() -> ase.Atoms:
    """LiH tilted in an oblique slab cell (pbc x, y): no symmetry, non-degenerate states."""
    atoms = ase.Atoms(
        "LiH",
        positions=[[0.0, 0.0, 0.0], [0.5, 0.9, 1.1]],
        cell=[[3.5, 0.0, 0.0], [0.4, 3.2, 0.0], [0.0, 0.0, 6.0]],
        pbc=[True, True, False],
    )
    atoms.center(axis=2)
    return atoms


@pytest.fixture(scope="module")
def h2_layer() -> ase.Atoms:
    return _h2_layer(4.0, 6.0)


@pytest.mark.slow
def test_gamma_point_slab_keeps_the_backend_contract(lih_slab):
    # default tolerances: the overlap fit loses 0.33 % of the electrons (limit 2 %), the
    # uniform grid integrates the exact density to 8e-6 (limit 1e-4)
    report = check_backend(_backend(), lih_slab)
    assert report.n_electrons == 4.0  # GTH valence: Li 1s2 2s1 (semicore) + H 1s1
    assert report.rotation_error < 1e-9 and report.scf_converged_rotated


@pytest.mark.slow
def test_k_point_grid_with_smearing_keeps_the_backend_contract(lih_slab):
    report = check_backend(_backend(kpts=(2, 2, 1), smearing=0.2), lih_slab)
    assert report.n_electrons == pytest.approx(4.0, abs=1e-10)
    assert report.rotation_error < 1e-9


@pytest.mark.slow
def test_k_point_density_equals_the_gamma_point_one_in_a_large_cell():
    coefficients = {}
    for lateral in (7.0, 3.5):
        for kpts in ((1, 1, 1), (2, 2, 1)):
            backend = _backend(kpts=kpts)
            scf = backend.run_scf(_h2_layer(lateral, 8.0))
            n_k = int(np.prod(kpts))
            assert scf.orbitals.energies.shape == (1, n_k, 2)
            assert scf.orbitals.k_weights.sum() == pytest.approx(1.0)
            fit = backend.fit(scf, density_weights(scf.orbitals))
            coefficients[lateral, kpts] = fit.coefficients

    def change(lateral):
        gamma, grid = coefficients[lateral, (1, 1, 1)], coefficients[lateral, (2, 2, 1)]
        return np.linalg.norm(grid - gamma) / np.linalg.norm(gamma)

    assert change(7.0) < 1e-5  # 8e-7 measured: 7 angstrom apart, molecules hardly overlap
    assert change(3.5) > 1e-2  # 35 %: a dense layer has dispersion, so k-points matter


@pytest.mark.parametrize("kpts", [(1, 1, 1), (2, 1, 1)])
def test_projections_and_integrals_match_quadrature_on_the_uniform_grid(h2_layer, kpts):
    # at 200 hartree the grid resolves the tightest auxiliary function (the metric then
    # agrees to 4e-9; 300 hartree: 5e-12); projections stay 3e-8 apart, the precision
    # (cell.precision 1e-8) of PySCF's screened lattice sums of three-centre overlaps
    backend = _backend(kpts=kpts, ke_cutoff=200.0)
    scf = backend.run_scf(h2_layer)
    fit = backend.fit(scf, density_weights(scf.orbitals))
    grid = backend.integration_grid(h2_layer)
    auxcell = periodic.build_auxcell(scf.state.cell, backend.options, "H2")
    aux_map = aux_ao_map(auxcell)
    aux_values = aux_map.to_canonical_columns(
        auxcell.pbc_eval_gto("GTOval_sph", grid.points / BOHR)
    )
    density = backend.evaluate_exact(h2_layer, fit.field_state, grid.points)
    quadrature = (grid.weights * density) @ aux_values
    assert np.abs(quadrature - fit.projections).max() < 1e-7 * np.abs(fit.projections).max()
    overlaps = aux_values.T @ (grid.weights[:, None] * aux_values)
    assert np.abs(overlaps - fit.metric).max() < 1e-7 * np.abs(fit.metric).max()
    assert np.abs(grid.weights @ aux_values - fit.integrals).max() < 1e-9


def test_projections_in_memory_bounded_blocks_equal_the_whole(h2_layer, monkeypatch):
    backend = _backend()
    scf = backend.run_scf(h2_layer)
    whole = backend.fit(scf, density_weights(scf.orbitals)).projections
    monkeypatch.setattr(periodic, "BLOCK_BYTES", 1)
    blocked = backend.fit(scf, density_weights(scf.orbitals)).projections
    # blocks are screened on their own: equal within the integrals' precision (2e-8 seen,
    # set by cell.precision = 1e-8 of PySCF's lattice-sum screening)
    assert np.abs(blocked - whole).max() < 1e-7 * np.abs(whole).max()


def test_aux_shell_blocks_cover_every_shell_once(lih_slab, monkeypatch):
    auxcell = periodic.build_auxcell(
        periodic.build_cell(lih_slab, PySCFOptions(**CELL_SETTINGS)), PySCFOptions(), "LiH"
    )
    monkeypatch.setattr(periodic, "BLOCK_BYTES", 10 * 8)
    blocks = periodic._aux_shell_blocks(auxcell, 8)
    assert blocks[0][0] == 0 and blocks[-1][1] == auxcell.nbas
    assert all(stop == start for (_, stop), (start, _) in zip(blocks, blocks[1:], strict=False))
    offsets = auxcell.ao_loc_nr()
    assert all(offsets[b] - offsets[a] <= 10 or b == a + 1 for a, b in blocks)


def test_constrained_fit_holds_the_valence_electron_count_exactly(h2_layer):
    backend = _backend(constrain_charge=True)
    scf = backend.run_scf(h2_layer)
    fit = backend.fit(scf, density_weights(scf.orbitals), n_electrons=2.0)
    assert fit.fitted_integral == pytest.approx(2.0, abs=1e-10)


def test_electrostatic_potential_is_pyscfs_hartree_plus_local_pseudopotential(h2_layer):
    scf = _backend().run_scf(h2_layer)
    cell, state = scf.state.cell, scf.state
    density_matrix = periodic.weighted_density_matrices(
        state.mo_coeff, density_weights(scf.orbitals)
    )[0].real
    grid = periodic.uniform_grid(cell)
    density = periodic.density_on_points(cell, density_matrix[None], state.kpts, grid.points)
    potential = periodic.electrostatic_potential(cell, density)
    orbitals = cell.pbc_eval_gto("GTOval_sph", grid.points / BOHR)
    ours = orbitals.T @ ((grid.weights * potential)[:, None] * orbitals)
    local = np.asarray(df.FFTDF(cell).get_pp()).reshape(ours.shape) - pp_int.get_pp_nl(cell)
    pyscf = local.real + pbcdft.RKS(cell).get_j(cell, density_matrix)
    assert np.abs(ours - pyscf).max() < 1e-10


def test_vacuum_referenced_homo_is_independent_of_the_vacuum_thickness():
    homo, vacuum = {}, {}
    for height in (8.0, 12.0):
        orbitals = _backend(basis="gth-tzv2p").run_scf(_h2_layer(5.0, height)).orbitals
        homo[height], vacuum[height] = orbitals.energies[0, 0, 0], orbitals.vacuum_level
    # the orbital energies' zero (the cell's average potential) moves with the cell ...
    assert abs(homo[12.0] - homo[8.0]) > 0.03
    # ... the vacuum-referenced HOMO does not (5 meV measured)
    assert homo[12.0] - vacuum[12.0] == pytest.approx(homo[8.0] - vacuum[8.0], abs=0.02)
    # PBE/def2-tzvp H2 (all-electron molecule): -10.36 eV; GTH/tzv2p: -10.25 eV
    assert homo[12.0] - vacuum[12.0] == pytest.approx(-10.36, abs=0.25)


def test_three_dimensional_cell_has_no_vacuum_level():
    scf = _backend().run_scf(_h2_layer(4.0, 6.0, pbc=(True, True, True)))
    assert scf.orbitals.vacuum_level is None


@pytest.mark.slow
def test_smeared_occupations_are_fermi_dirac_at_the_fermi_level(lih_slab):
    orbitals = _backend(kpts=(2, 1, 1), smearing=0.3).run_scf(lih_slab).orbitals
    expected = 2.0 * expit((orbitals.fermi_level - orbitals.energies) / 0.3)
    assert np.abs(orbitals.occupations - expected).max() < 1e-8
    assert orbitals.n_electrons == pytest.approx(4.0, abs=1e-10)


def test_unsmeared_fermi_level_lies_in_the_gap(h2_layer):
    orbitals = _backend().run_scf(h2_layer).orbitals
    energies = orbitals.energies[0, 0]
    assert energies[0] < orbitals.fermi_level < energies[1]


def test_unrestricted_cell_has_two_spin_channels():
    hydrogen = ase.Atoms("H", cell=[4.0, 4.0, 6.0], pbc=[True, True, False])
    scf = _backend(spin=1).run_scf(hydrogen)
    assert scf.orbitals.energies.shape == (2, 1, 1)
    assert scf.orbitals.occupations[:, 0, 0].tolist() == [1.0, 0.0]


def test_default_options_are_refused_for_a_cell_with_every_reason(lih_slab):
    with pytest.raises(PySCFBackendError, match="periodic.*metric 'coulomb'.*all-electron"):
        PySCFBackend().basis_layout(lih_slab)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"xc": "pbe0"}, "not a pure LDA or GGA"),
        ({"xc": "tpss"}, "not a pure LDA or GGA"),
        ({"kpts": (2, 2, 2)}, r"samples the non-periodic axes \[2\]"),
        ({"kpts": (2, 1, 1), "spin": 2}, "neutral closed-shell"),
    ],
)
def test_unusable_periodic_options_are_refused_with_the_reason(lih_slab, options, reason):
    with pytest.raises(PySCFBackendError, match=f"HLi is periodic.*{reason}"):
        _backend(**options).run_scf(lih_slab)


def test_cell_without_volume_is_refused():
    flat = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]], cell=[4, 4, 0], pbc=[1, 1, 0])
    with pytest.raises(PySCFBackendError, match="no volume"):
        _backend().integration_grid(flat)


def test_check_setup_refuses_periodic_options_before_any_scf(lih_slab, water):
    with pytest.raises(BackendSetupError, match="metric 'coulomb'"):
        PySCFBackend({"basis": "gth-szv"}).check_setup([water, lih_slab])
    PySCFBackend().check_setup([water])


def test_molecule_takes_the_molecular_path_and_refuses_periodic_options(water):
    assert isinstance(PySCFBackend({"basis": "sto-3g"}).run_scf(water).state, PySCFState)
    with pytest.raises(PySCFBackendError, match=r"molecule.*periodic-only options \['kpts'\]"):
        PySCFBackend({"basis": "sto-3g", "kpts": (2, 1, 1)}).run_scf(water)


def test_periodic_options_are_validated():
    with pytest.raises(ValidationError, match="kpts"):
        PySCFOptions(kpts=(0, 1, 1))
    with pytest.raises(ValidationError, match="smearing"):
        PySCFOptions(smearing=-0.1)
    assert PySCFOptions().periodic_pseudo == "gth-pbe"
