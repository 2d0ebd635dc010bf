"""The ``cclib`` backend on real outputs of Gaussian, ORCA, Psi4 and GAMESS.

The reference for every fit is computed here directly with PySCF integrals (``int2c2e``,
``int3c2e``) from the output's MO coefficients in PySCF's AO order; the AO mapping itself
is tested on its own in ``test_cclib_aos.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pyscf import gto
from pyscf.data.nist import HARTREE2EV
from pyscf.df import addons
from pyscf.lib.parameters import BOHR

from rhocore.qc.backend import OrbitalData
from rhocore.testing.backends import check_fit, check_metric, density_weights
from rhocore.testing.plugins import check_plugin_class

pytest.importorskip("cclib")

from rhocore_pyscf.cclib.backend import CclibBackend  # noqa: E402
from rhocore_pyscf.cclib.output import CclibOutputError, read_output  # noqa: E402

AUX_BASIS = "def2-universal-jkfit"
#: The usable outputs and their electron counts (README of shared/data/cclib_outputs).
USABLE = {
    "gaussian16_dvb_sp.out": 70,
    "gaussian03_CO.log": 14,
    "psi4-1.7_dvb_sp_rhf.out": 70,
    "psi4-1.7_dvb_sp_uhf.out": 69,
    "gamess-us2018_water_mp2.out": 10,
    "orca5.0_dvb_sp.out": 70,
}


@pytest.fixture(scope="module")
def backend() -> CclibBackend:
    return CclibBackend({"aux_basis": AUX_BASIS, "grid_level": 1})


def _direct_fit(mol: gto.Mole, density_matrix: np.ndarray) -> tuple[gto.Mole, np.ndarray]:
    """Coulomb-metric RI coefficients (PySCF AO order) of ``density_matrix``, from PySCF."""
    auxmol = addons.make_auxmol(mol, AUX_BASIS)
    auxmol.cart = False
    auxmol.build(False, False)
    three_centre_aux = auxmol
    if mol.cart:  # libcint integrates Cartesian with Cartesian: contract the aux index after
        three_centre_aux = auxmol.copy()
        three_centre_aux.cart = True
        three_centre_aux.build(False, False)
    joined = gto.mole.conc_mol(mol, three_centre_aux)
    kind = "int3c2e_cart" if mol.cart else "int3c2e_sph"
    shells = (0, mol.nbas, 0, mol.nbas, mol.nbas, joined.nbas)
    three_centre = joined.intor(kind, shls_slice=shells)  # (ao, ao, aux)
    projections = np.einsum("ij,ijp->p", density_matrix, three_centre)
    if mol.cart:
        projections = projections @ three_centre_aux.cart2sph_coeff()
    return auxmol, np.linalg.solve(auxmol.intor("int2c2e"), projections)


def _homo(orbitals: OrbitalData) -> tuple[int, int]:
    """(spin, state) of the highest occupied orbital over both channels."""
    best = max((orbitals.energies[s, 0, orbitals.homo_index(s)], s) for s in range(orbitals.n_spin))
    return best[1], orbitals.homo_index(best[1])


def _points(atoms, count=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = atoms.positions[rng.integers(len(atoms), size=count)]
    return centres + rng.normal(scale=0.8, size=(count, 3))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(USABLE))
def test_homo_and_density_fits_agree_with_direct_pyscf_fits_of_the_same_orbitals(
    cclib_outputs, backend, name
):
    from rhocore_targets.frontier import HomoTarget

    path = cclib_outputs / name
    (atoms,) = backend.read_outputs(path)
    scf = backend.run_scf(atoms)
    output = read_output(path)
    mol, mo_coeff, orbitals = output.mol, output.mo_coeff, scf.orbitals
    assert orbitals.n_electrons == USABLE[name] == mol.nelectron
    points = _points(atoms)

    spin, state = _homo(orbitals)
    homo_fit = backend.fit(scf, HomoTarget().weights(orbitals))
    homo_vector = mo_coeff[spin][:, state]
    auxmol, direct = _direct_fit(mol, np.outer(homo_vector, homo_vector))
    direct_field = auxmol.eval_gto("GTOval_sph", points / BOHR) @ direct
    fitted = backend.evaluate_fitted(atoms, homo_fit.coefficients, points)
    assert np.max(np.abs(fitted - direct_field)) <= 1e-8 * np.max(np.abs(direct_field))

    occupations = orbitals.occupations[:, 0, :]
    total = np.einsum("sia,sa,sja->ij", mo_coeff, occupations, mo_coeff)
    density_fit = backend.fit(scf, density_weights(orbitals))
    check_fit(density_fit, backend.basis_layout(atoms), atoms, name)
    check_metric(density_fit, name)
    auxmol, direct = _direct_fit(mol, total)
    direct_field = auxmol.eval_gto("GTOval_sph", points / BOHR) @ direct
    fitted = backend.evaluate_fitted(atoms, density_fit.coefficients, points)
    assert np.max(np.abs(fitted - direct_field)) <= 1e-8 * np.max(np.abs(direct_field))
    # a Coulomb-metric fit keeps the electron count (measured <= 1.3e-4 relative)
    assert density_fit.fitted_integral == pytest.approx(USABLE[name], rel=2e-4)

    grid = backend.integration_grid(atoms)
    exact = grid.weights @ backend.evaluate_exact(atoms, density_fit.field_state, grid.points)
    assert exact == pytest.approx(USABLE[name], rel=1e-4)


def test_charge_constrained_density_fit_integrates_to_the_electron_count(cclib_outputs):
    backend = CclibBackend({"constrain_charge": True, "metric": "overlap"})
    (atoms,) = backend.read_outputs(cclib_outputs / "gaussian03_CO.log")
    scf = backend.run_scf(atoms)
    fit = backend.fit(scf, density_weights(scf.orbitals), n_electrons=14.0)
    assert fit.fitted_integral == pytest.approx(14.0, abs=1e-9)


def test_unrestricted_psi4_output_gives_two_spin_channels_with_energies_in_ev(
    cclib_outputs, backend
):
    (atoms,) = backend.read_outputs(cclib_outputs / "psi4-1.7_dvb_sp_uhf.out")
    orbitals = backend.run_scf(atoms).orbitals
    assert orbitals.n_spin == 2
    assert orbitals.occupations.max() == 1.0
    assert [orbitals.homo_index(s) for s in (0, 1)] == [34, 33]
    # orbital energies as the output prints them (hartree): alpha 3Bg HOMO, 3Au LUMO, beta 2Au
    assert orbitals.energies[0, 0, 34] == pytest.approx(-0.479073 * HARTREE2EV, abs=1e-4)
    assert orbitals.energies[0, 0, 35] == pytest.approx(-0.047716 * HARTREE2EV, abs=1e-4)
    assert orbitals.energies[1, 0, 33] == pytest.approx(-0.489149 * HARTREE2EV, abs=1e-4)


def test_output_with_partial_virtual_orbitals_is_refused_naming_file_and_keyword(
    cclib_outputs, backend
):
    path = cclib_outputs / "refused" / "qchem5.1_dvb_sp.out"
    (atoms,) = backend.read_outputs(path)
    with pytest.raises(CclibOutputError) as error:
        backend.run_scf(atoms)
    message = str(error.value)
    assert str(path) in message
    assert "partial virtual orbitals" in message and "MOs 41-60" in message
    assert "print_orbitals" in message


def test_ecp_output_is_refused_naming_file_and_core_electrons(cclib_outputs, backend):
    path = cclib_outputs / "refused" / "gaussian16_Mo4OCl4-sp.log"
    (atoms,) = backend.read_outputs(path)
    with pytest.raises(CclibOutputError) as error:
        backend.run_scf(atoms)
    message = str(error.value)
    assert str(path) in message
    assert "ECP core electrons" in message and "68 core electrons" in message


def _copy_without(source: Path, target: Path, start: str, stop) -> Path:
    """``source`` without the block from a line starting with ``start`` to ``stop(line)``."""
    kept, skipping = [], False
    for line in source.read_text().splitlines(keepends=True):
        if line.startswith(start):
            skipping = True
        elif skipping and stop(line):
            skipping = False
        if not skipping:
            kept.append(line)
    target.write_text("".join(kept))
    return target


def test_missing_basis_printout_and_mo_coefficients_name_the_gaussian_keywords(
    cclib_outputs, backend, tmp_path
):
    source = cclib_outputs / "gaussian03_CO.log"
    no_basis = _copy_without(
        source, tmp_path / "no_basis.log", " AO basis set", lambda line: not line.strip()
    )
    with pytest.raises(CclibOutputError, match="no_basis.log: missing basis printout.*gfinput"):
        backend.run_scf(backend.read_outputs(no_basis)[0])
    no_mos = _copy_without(
        source,
        tmp_path / "no_mos.log",
        "     Molecular Orbital Coefficients",
        lambda line: "DENSITY MATRIX" in line,
    )
    with pytest.raises(CclibOutputError, match="no_mos.log: missing MO coefficients.*pop=full"):
        backend.run_scf(backend.read_outputs(no_mos)[0])


def test_structure_moved_away_from_its_output_is_refused(cclib_outputs, backend):
    (atoms,) = backend.read_outputs(cclib_outputs / "gamess-us2018_water_mp2.out")
    atoms.positions[0] += 0.1
    with pytest.raises(CclibOutputError, match="not the geometry of this output"):
        backend.run_scf(atoms)


def test_unparsable_file_is_a_structure_error_naming_it(tmp_path):
    from rhocore.data.structure_files import StructureError

    path = tmp_path / "notes.out"
    path.write_text("not the output of any quantum-chemistry code\n")
    with pytest.raises(StructureError, match="notes.out"):
        CclibBackend.read_outputs(path)


def test_backend_class_follows_the_plugin_contract_and_refuses_even_tempered():
    check_plugin_class(CclibBackend)
    with pytest.raises(ValueError, match="name a PySCF auxiliary basis"):
        CclibBackend({"aux_basis": "even-tempered"})


@pytest.mark.slow
def test_generate_turns_a_folder_of_outputs_into_a_dataset_and_records_refusals(
    cclib_outputs, tmp_path
):
    from rhocore.data.dataset import Dataset
    from rhocore.workflows.config import load_config
    from rhocore.workflows.generate import generate

    folder = tmp_path / "outputs"
    folder.mkdir()
    files = sorted(p for p in cclib_outputs.rglob("*") if p.suffix in (".out", ".log"))
    for path in files:
        (folder / path.name).symlink_to(path)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "structures": {"file": "outputs/*"},
                "backend": {"name": "cclib", "options": {"aux_basis": AUX_BASIS}},
                "target": {"name": "homo"},
                "executor": {"kind": "serial"},
            }
        )
    )
    config = load_config(config_path)
    summary = generate(config, tmp_path / "dataset.h5", progress=False)
    names = sorted(path.name for path in files)
    done = {names[i] for i in summary.computed}
    assert done == set(USABLE)
    failed = {names[i]: reason for i, reason in summary.failed.items()}
    assert set(failed) == {"gaussian16_Mo4OCl4-sp.log", "qchem5.1_dvb_sp.out"}
    assert "ECP core electrons" in failed["gaussian16_Mo4OCl4-sp.log"]
    assert "partial virtual orbitals" in failed["qchem5.1_dvb_sp.out"]
    assert all(name in reason for name, reason in failed.items())

    dataset = Dataset(tmp_path / "dataset.h5")
    assert dataset.metadata.backend_name == "cclib"
    backend = config.make_backend()
    index = names.index("gaussian03_CO.log")
    atoms, entry = dataset.atoms(index), dataset.entry(index)
    grid = backend.integration_grid(atoms)
    # the stored HOMO density, evaluated from the dataset alone, holds one electron
    exact = grid.weights @ backend.evaluate_exact(atoms, entry.fit.field_state, grid.points)
    assert exact == pytest.approx(1.0, rel=1e-4)
    dataset.close()
    again = generate(config, tmp_path / "dataset.h5", progress=False)
    assert again.computed == [] and len(again.skipped) == len(files)
