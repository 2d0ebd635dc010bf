"""`rhocore aims import` on every real folder of ../shared/data, and what training makes of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rhocore_aims.cli import aims
from rhocore_aims.importer import find_folders, frame_index, import_folders

from rhocore.data.dataset import Dataset
from rhocore.fields.grids import metric_error_percent
from rhocore.models.file import load_model_file
from rhocore.workflows.config import resolve_config
from rhocore.workflows.train import Split, train_run


def run_import(*arguments: str) -> str:
    result = CliRunner().invoke(aims, ["import", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def homo_dataset(shared_data, tmp_path_factory) -> Path:
    root = shared_data / "rho_learn_water_homo"
    output = tmp_path_factory.mktemp("homo") / "homo.h5"
    run_import(
        str(root / "structures"),
        "--xyz",
        str(root / "water_monomers_1k.xyz"),
        "--target",
        "homo",
        "-o",
        str(output),
    )
    return output


def test_homo_folders_become_entries_indexed_by_frame(homo_dataset, shared_data):
    dataset = Dataset(homo_dataset)
    assert dataset.indices() == [89, 103, 186, 199, 322, 431, 458]
    assert dataset.metadata.target_name == "homo"
    entry = dataset.entry(89)
    assert entry.weights is not None and entry.weights.sum() == pytest.approx(1.0)
    norm = float(entry.fit.coefficients @ entry.fit.metric @ entry.fit.coefficients)
    assert 0.0894 <= norm <= 0.0902  # the README's range of d^T S d for this HOMO


def test_density_folders_import_and_rerun_adds_nothing(shared_data, tmp_path):
    root = shared_data / "rho_learn_water_density"
    arguments = [str(root / "structures"), "--xyz", str(root / "water_monomers_1k.xyz")]
    first = run_import(*arguments, "-o", str(tmp_path / "density.h5"))
    assert "imported 30, already in the dataset 0, skipped 0" in first
    again = run_import(*arguments, "-o", str(tmp_path / "density.h5"))
    assert "imported 0, already in the dataset 30" in again
    dataset = Dataset(tmp_path / "density.h5")
    single = np.load(shared_data / "rho_learn_single_water" / "coeff_vector.npy")
    assert np.array_equal(dataset.coefficients(0), single)


@pytest.mark.parametrize(("folder", "xyz"), [("qm7_0", "qm7.xyz"), ("isolated_c_0", None)])
def test_rholearn_folders_satisfy_s_d_equals_w(shared_data, tmp_path, folder, xyz):
    path = shared_data / "rholearn_aims" / folder
    arguments = [str(path), "-o", str(tmp_path / "out.h5")]
    if xyz:
        arguments += ["--xyz", str(path / xyz)]
    run_import(*arguments)
    entry = Dataset(tmp_path / "out.h5").entry(0)
    fit = entry.fit
    residual = np.linalg.norm(fit.metric @ fit.coefficients - fit.projections)
    assert residual <= 1e-10 * np.linalg.norm(fit.projections)
    assert entry.expected_integral == (10.0 if folder == "qm7_0" else 12.0)
    assert entry.orbitals is not None and entry.orbitals.n_electrons == entry.expected_integral


def test_a_wrong_frame_is_skipped_with_the_reason(shared_data, tmp_path):
    root = shared_data / "rho_learn_water_homo"
    methane = shared_data / "rholearn_aims" / "qm7_0" / "qm7.xyz"
    summary = import_folders(
        [root / "structures" / "89"], tmp_path / "out.h5", xyz=methane, progress=False
    )
    assert not summary.imported
    assert "has no frame 89" in summary.skipped[root / "structures" / "89"]
    assert not (tmp_path / "out.h5").exists()


def test_pickled_metadata_needs_allow_pickle(shared_data, tmp_path):
    import json
    import pickle
    import shutil

    folder = tmp_path / "7"
    shutil.copytree(shared_data / "rho_learn_water_homo" / "structures" / "89", folder)
    info = json.loads((folder / "calc_info.json").read_text())
    (folder / "calc_info.json").unlink()
    (folder / "calc_info.pickle").write_bytes(pickle.dumps(info))
    xyz = shared_data / "rho_learn_water_homo" / "water_monomers_1k.xyz"
    summary = import_folders([folder], tmp_path / "a.h5", xyz=xyz, progress=False)
    assert "--allow-pickle" in summary.skipped[folder]
    summary = import_folders(
        [folder], tmp_path / "b.h5", xyz=xyz, allow_pickle=True, progress=False
    )
    assert summary.imported == [folder]


def test_folder_discovery_and_frame_numbers(shared_data):
    folders = find_folders([shared_data])
    kinds = {folder.parent.name for folder in folders}
    assert len(folders) == 30 + 7 + 2 and "rholearn_aims" in kinds
    assert frame_index(Path("processed/12/edensity")) == 12
    assert frame_index(Path("qm7_3")) == 3


@pytest.mark.slow
def test_training_accepts_the_imported_homo_dataset(homo_dataset, tmp_path):
    """Ridge on 5 structures of real FHI-aims HOMOs predicts a held-out one."""
    config = resolve_config(
        {
            "descriptor": {"cutoff": 4.0, "max_radial": 5, "max_angular": 8},
            "model": {"name": "linear"},
            "training": {"optimizer": "ridge"},
        }
    )
    split = Split(train=[89, 103, 186, 199, 322], validation=[431], test=[458])
    train_run(config, homo_dataset, tmp_path / "run", split=split, progress=False)
    dataset = Dataset(homo_dataset)
    predicted = load_model_file(tmp_path / "run").predict([dataset.atoms(458)])[0]
    error = metric_error_percent(predicted, dataset.coefficients(458), dataset.overlap(458))
    assert error < 20.0, f"held-out HOMO metric error {error:.2f} %"


# version, SCF converged, spin channels, k-points, periodic: the table of
# ../shared/data/aims_outputs/README.md (read from the files by grep, not by this parser)
AIMS_OUTPUTS = {
    "CeO2_dftu/aims_CC.out": ("210226", True, 1, 1, True),
    "Fe_scf_spinpol/out.out": ("151211", True, 2, 2052, True),
    "HO_md/H2O_periodic_MD.out": ("151211", True, 1, 8, True),
    "He_gw/He_scGW_ontop_PBE.out": ("090214", True, 1, None, False),
    "Si_geomopt/out.out": ("151211", True, 1, 260, True),
}


@pytest.mark.parametrize("name", sorted(AIMS_OUTPUTS))
def test_parse_command_summarises_every_real_output(shared_data, tmp_path, name):
    import json

    output = tmp_path / "summary.json"
    path = shared_data / "aims_outputs" / name
    result = CliRunner().invoke(aims, ["parse", str(path), "--json", str(output)])
    assert result.exit_code == 0, result.output
    summary = json.loads(output.read_text())
    found = tuple(
        summary[key] for key in ("version", "converged", "n_spin", "n_kpoints", "periodic")
    )
    assert found == AIMS_OUTPUTS[name]
    assert summary["errors"] == [] and isinstance(summary["warnings"], list)
    assert summary["total_energy_ev"] < 0


def test_parse_command_refuses_an_unknown_file_in_one_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = CliRunner().invoke(aims, ["parse", str(path)])
    assert result.exit_code != 0
    assert "notes.txt" in str(result.exception) and "\n" not in str(result.exception)


def test_parse_command_summarises_ri_and_cube_files(tmp_path):
    import json

    import ase
    import ase.io.cube

    vector = tmp_path / "ri_restart_coeffs.out"
    np.savetxt(vector, [3.0, 4.0])
    grid = np.full((4, 4, 4), 0.5)
    with open(tmp_path / "field.cube", "w") as handle:
        ase.io.cube.write_cube(handle, ase.Atoms("H", cell=[2, 2, 2]), data=grid)
    for path, expected in (
        (vector, {"n_functions": 2, "norm": 5.0}),
        (tmp_path / "field.cube", {"shape": [4, 4, 4], "integral_if_per_angstrom3": 4.0}),
    ):
        result = CliRunner().invoke(aims, ["parse", str(path)])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        for key, value in expected.items():
            assert summary[key] == pytest.approx(value)
