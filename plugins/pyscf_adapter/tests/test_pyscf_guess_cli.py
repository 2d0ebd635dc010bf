"""A trained density model starts PySCF and gives derived quantities, through the CLI
and :func:`rhocore_pyscf.initial_guess`; wrong models and options are refused."""

from __future__ import annotations

import json

import ase.io
import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from pyscf import dft, gto
from pyscf.scf import chkfile
from rhocore_pyscf import initial_guess, pretrained_model_path
from rhocore_pyscf.guess import pretrained
from rhocore_pyscf.guess.model import GuessModelError

from rhocore.cli import cli
from rhocore.data.generators import distorted_waters
from rhocore.errors import MissingFileError
from rhocore.models.file import load_model_file
from rhocore.testing.workflows import generate_and_train

pytestmark = [pytest.mark.dft, pytest.mark.slow]  # runs real PySCF SCFs; minutes of set-up

BACKEND = {"basis": "sto-3g", "grid_level": 2, "constrain_charge": True}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("guess")
    ase.io.write(root / "waters.xyz", distorted_waters(10, seed=8))
    config = {
        "structures": {"file": "waters.xyz"},
        "backend": {"name": "pyscf", "options": BACKEND},
        "target": {"name": "density"},
        "descriptor": {"cutoff": 3.5, "max_radial": 4, "max_angular": 4},
        "training": {"optimizer": "ridge"},
        "split": {"test_fraction": 0.2, "validation_fraction": 0.15},
    }
    return generate_and_train(cli, root, config)


def held_out_water() -> ase.Atoms:
    return distorted_waters(1, seed=99)[0]


def molecule(atoms: ase.Atoms, basis: str = "sto-3g") -> gto.Mole:
    return gto.M(
        atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True)),
        basis=basis,
        verbose=0,
    )


def scf(mol: gto.Mole, **kwargs) -> dft.rks.RKS:
    solver = dft.RKS(mol)
    solver.xc, solver.conv_tol, solver.grids.level = "pbe", 1e-9, 2
    solver.kernel(**kwargs)
    return solver


def test_initial_guess_of_a_held_out_water_converges_faster_to_the_same_energy(workdir):
    mol = molecule(held_out_water())
    minao = scf(mol)
    started = scf(mol, dm0=initial_guess(mol, workdir / "run"))
    assert started.converged
    assert started.e_tot == pytest.approx(minao.e_tot, abs=1e-6)
    assert started.cycles < minao.cycles


def test_initial_guess_refuses_another_basis_or_functional_unless_told(workdir):
    mol = molecule(held_out_water(), basis="6-31g")
    with pytest.raises(GuessModelError, match=r"orbital basis '6-31g' \(model: 'sto-3g'\)"):
        initial_guess(mol, workdir / "run")
    with pytest.raises(GuessModelError, match=r"functional 'lda,vwn' \(model: 'pbe'\)"):
        initial_guess(molecule(held_out_water()), workdir / "run", xc="lda,vwn")
    matrix = initial_guess(mol, workdir / "run", strict=False)
    assert np.trace(matrix @ mol.intor("int1e_ovlp")) == pytest.approx(10.0)


def test_initial_guess_refuses_unknown_elements_and_other_targets(workdir):
    ammonia = gto.M(atom="N 0 0 0; H 1 0 0; H 0 1 0; H 0 0 1", basis="sto-3g", verbose=0)
    with pytest.raises(GuessModelError, match=r"elements N \(model: H, O\)"):
        initial_guess(ammonia, workdir / "run")
    model = load_model_file(workdir / "run")
    model.metadata["dataset"] = {**model.metadata["dataset"], "target_name": "homo"}
    with pytest.raises(GuessModelError, match="'homo' field.*'density' target"):
        initial_guess(molecule(held_out_water()), model)


def test_predict_writes_properties_esp_and_pyscf_guesses(workdir, tmp_path):
    ase.io.write(tmp_path / "new.xyz", [held_out_water()])
    output = tmp_path / "pred.h5"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            str(workdir / "run"),
            str(tmp_path / "new.xyz"),
            "-o",
            str(output),
            "--properties",
            "all",
            "--cube-dir",
            str(tmp_path / "cubes"),
            "--cube-spacing",
            "0.4",
            "--esp",
            "--pyscf-guess",
            str(tmp_path / "guess"),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "pred.h5.properties.json").read_text())
    values = document["structures"][0]
    assert values["electron_count"] == pytest.approx(10.0, rel=5e-4)
    assert document["units"]["dipole"] == "D"
    mol = molecule(held_out_water())
    minao = scf(mol)
    # PySCF's own dipole of the converged density, in Debye
    np.testing.assert_allclose(values["dipole"], minao.dip_moment(verbose=0), atol=0.05)
    with h5py.File(output) as handle:
        assert handle["structures/0/properties/xc_energy"].attrs["unit"] == "eV"
    with open(tmp_path / "cubes" / "structure_0_esp.cube") as handle:
        esp = ase.io.cube.read_cube(handle)["data"]
    assert np.isfinite(esp).all() and esp.max() > 0
    matrix = np.load(tmp_path / "guess" / "structure_0_dm.npy")
    started = scf(mol, dm0=matrix)
    assert started.e_tot == pytest.approx(minao.e_tot, abs=1e-6)
    assert started.cycles < minao.cycles
    from_chk = dft.RKS(mol).from_chk(str(tmp_path / "guess" / "structure_0.chk"))
    np.testing.assert_allclose(from_chk, matrix, atol=1e-10)
    stored_mol = chkfile.load_mol(str(tmp_path / "guess" / "structure_0.chk"))
    np.testing.assert_allclose(stored_mol.atom_coords(), mol.atom_coords(), atol=1e-6)


def test_evaluate_reports_derived_quantity_errors_vs_dft(workdir, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(workdir / "run"),
            str(workdir / "data.h5"),
            "--subset",
            "test",
            "--no-grid",
            "--properties",
            "electron_count,dipole,xc_energy",
            "--json",
            str(tmp_path / "metrics.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    errors = json.loads((tmp_path / "metrics.json").read_text())["properties"]
    assert 0 < errors["electron_count_error_percent"] < 0.05
    assert 0 < errors["dipole_error_debye"] < 0.1
    # the prediction's XC error includes the RI floor and its own distance to the fit
    assert errors["xc_energy_error_mev_per_atom"] <= (
        errors["ri_floor_xc_energy_error_mev_per_atom"]
        + errors["vs_ri_xc_energy_error_mev_per_atom"]
        + 1e-9
    )
    assert "dipole_error_debye" in result.output


def test_predict_refuses_unknown_properties_and_esp_without_cube_dir(workdir, tmp_path):
    arguments = ["predict", str(workdir / "run"), str(workdir / "waters.xyz")]
    result = CliRunner().invoke(cli, [*arguments, "--properties", "dipol"])
    assert result.exit_code != 0
    assert "unknown properties 'dipol'. Did you mean 'dipole'?" in result.output
    result = CliRunner().invoke(cli, [*arguments, "-o", str(tmp_path / "p.h5"), "--esp"])
    assert result.exit_code != 0 and "give --cube-dir" in result.output


def density_fitted(mol: gto.Mole, solver=dft.RKS):
    """PBE with density fitting on the model's auxiliary basis, grid level 2."""
    mf = solver(mol, xc="pbe").density_fit(auxbasis="def2-universal-jkfit")
    mf.conv_tol, mf.grids.level = 1e-9, 2
    return mf


def test_initial_guess_of_a_density_fitted_scf_reuses_its_tensors_and_grid(workdir):
    mol = molecule(held_out_water())
    minao = density_fitted(mol)
    minao.kernel()
    mf = density_fitted(mol)
    dm0 = initial_guess(mf, workdir / "run")
    tensors, points = mf.with_df._cderi, mf.grids.coords
    assert tensors is not None and points is not None
    mf.kernel(dm0=dm0)
    assert mf.with_df._cderi is tensors and mf.grids.coords is points
    assert mf.converged and mf.e_tot == pytest.approx(minao.e_tot, abs=1e-6)
    assert mf.cycles < minao.cycles


def test_initial_guess_of_an_unrestricted_scf_has_both_spin_channels(workdir):
    mol = molecule(held_out_water())
    restricted = density_fitted(mol)
    restricted.kernel()
    mf = density_fitted(mol, dft.UKS)
    dm0 = initial_guess(mf, workdir / "run")
    assert dm0.shape == (2, mol.nao, mol.nao)
    mf.kernel(dm0=dm0)
    assert mf.converged and mf.e_tot == pytest.approx(restricted.e_tot, abs=1e-6)


def test_a_model_of_neutral_waters_records_charge_0_and_refuses_a_cation(workdir):
    assert load_model_file(workdir / "run").net_charges == [0]
    cation = molecule(held_out_water())
    cation.charge, cation.spin = 1, 1
    cation.build()
    with pytest.raises(GuessModelError, match=r"charge 1 \(model: 0\)\. Use a matching model"):
        initial_guess(cation, workdir / "run")


def hydronium() -> gto.Mole:
    return gto.M(
        atom="O 0 0 0.1; H 0.95 0 -0.2; H -0.47 0.82 -0.2; H -0.47 -0.82 -0.2",
        basis="sto-3g",
        charge=1,
        verbose=0,
    )


@pytest.fixture
def mixed_charge_model(workdir):
    """The stand-in model as if trained on structures of charges -1, 0 and +1."""
    model = load_model_file(workdir / "run")
    model.metadata["net_charges"] = [-1, 0, 1]
    return model


def test_a_mixed_charge_model_starts_a_density_fitted_cation(mixed_charge_model):
    mol = hydronium()
    minao = density_fitted(mol)
    minao.kernel()
    mf = density_fitted(mol)
    mf.kernel(dm0=initial_guess(mf, mixed_charge_model))
    assert mf.converged and mf.e_tot == pytest.approx(minao.e_tot, abs=1e-6)


def test_a_mixed_charge_model_starts_a_plain_open_shell_cation(mixed_charge_model):
    mol = molecule(held_out_water())
    mol.charge, mol.spin = 1, 1
    mol.build()
    minao = dft.UKS(mol, xc="pbe")
    minao.conv_tol, minao.grids.level = 1e-9, 2
    minao.kernel()
    mf = dft.UKS(mol, xc="pbe")
    mf.conv_tol, mf.grids.level = 1e-9, 2
    dm0 = initial_guess(mf, mixed_charge_model)
    assert dm0.shape == (2, mol.nao, mol.nao)
    assert np.einsum("sij,ji->", dm0, mol.intor("int1e_ovlp")) == pytest.approx(9.0)
    mf.kernel(dm0=dm0)
    assert mf.converged and mf.e_tot == pytest.approx(minao.e_tot, abs=1e-6)
    dication = hydronium()
    dication.charge, dication.spin = 2, 1
    dication.build()
    with pytest.raises(GuessModelError, match=r"charge 2 \(model: -1, 0, 1\)"):
        initial_guess(dication, mixed_charge_model)


@pytest.fixture
def packaged(workdir, tmp_path, monkeypatch):
    """The stand-in model as the packaged pretrained file (its extensions next to it)."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    (folder / pretrained.PRETRAINED_FILE).write_bytes((workdir / "run" / "model.pt").read_bytes())
    (folder / "extensions").symlink_to(workdir / "run" / "extensions")
    monkeypatch.setattr(pretrained, "PRETRAINED_DIRECTORY", folder)
    return folder / pretrained.PRETRAINED_FILE


def test_initial_guess_without_a_model_uses_the_pretrained_one(packaged):
    assert pretrained_model_path() == packaged
    mol = molecule(held_out_water())
    minao = scf(mol)
    started = scf(mol, dm0=initial_guess(mol))
    assert started.e_tot == pytest.approx(minao.e_tot, abs=1e-6)
    assert started.cycles < minao.cycles


def test_the_pretrained_model_refuses_in_one_line_what_it_does_not_cover(packaged):
    ammonia = gto.M(atom="N 0 0 0; H 1 0 0; H 0 1 0; H 0 0 1", basis="6-31g", verbose=0)
    with pytest.raises(GuessModelError) as refusal:
        initial_guess(ammonia, xc="lda,vwn")
    message = str(refusal.value)
    assert "\n" not in message
    assert message.startswith("the pretrained density model (PBE/def2-SVP) does not cover")
    for gap in ("elements N (model: H, O)", "orbital basis '6-31g'", "functional 'lda,vwn'"):
        assert gap in message


def test_a_missing_pretrained_file_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIRECTORY", tmp_path)
    with pytest.raises(MissingFileError, match="no pretrained density model.*is missing"):
        initial_guess(molecule(held_out_water()))


def test_predict_takes_the_model_file_itself(packaged, tmp_path):
    ase.io.write(tmp_path / "new.xyz", [held_out_water()])
    arguments = [str(packaged), str(tmp_path / "new.xyz"), "-o", str(tmp_path / "pred.h5")]
    result = CliRunner().invoke(cli, ["predict", *arguments, "--properties", "electron_count"])
    assert result.exit_code == 0, result.output
