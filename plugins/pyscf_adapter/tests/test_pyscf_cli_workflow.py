"""The command line end to end on the PySCF backend: generate, train, evaluate, predict."""

from __future__ import annotations

import json

import ase.io
import h5py
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from rhocore.cli import cli
from rhocore.data.generators import distorted_waters
from rhocore.qc.units import BOHR_IN_ANGSTROM
from rhocore.testing.workflows import generate_and_train

pytestmark = [pytest.mark.dft, pytest.mark.slow]  # runs real PySCF SCFs; minutes of set-up


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    ase.io.write(root / "waters.xyz", distorted_waters(10, seed=5))
    config = {
        "structures": {"file": "waters.xyz"},
        "backend": {"name": "pyscf", "options": {"basis": "sto-3g", "grid_level": 2}},
        "target": {"name": "homo"},
        "descriptor": {"cutoff": 3.5, "max_radial": 4, "max_angular": 4},
        "training": {"epochs": 30},
        "split": {"test_fraction": 0.2, "validation_fraction": 0.15},
    }
    return generate_and_train(cli, root, config)


def test_evaluate_writes_json_with_grid_metrics_and_a_parity_plot(workdir):
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(workdir / "run"),
            str(workdir / "data.h5"),
            "--subset",
            "test",
            "--json",
            str(workdir / "metrics.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "metrics.json").read_text())
    for key in (
        "nmae_percent_vs_ri",
        "nmae_percent_vs_dft",
        "ri_floor_nmae_percent",
        "metric_error_percent",
    ):
        assert report[key] is not None and report[key] > 0, key
    assert report["n_structures"] == len(report["structures"]) == 2
    assert (workdir / "metrics.png").stat().st_size > 0
    # the prediction cannot be closer to the exact field than the RI fit is, by more than
    # the prediction's own distance to the RI fit (triangle inequality of the L1 norm)
    floor, vs_ri, vs_dft = (
        report[k] for k in ("ri_floor_nmae_percent", "nmae_percent_vs_ri", "nmae_percent_vs_dft")
    )
    assert vs_dft <= floor + vs_ri * 1.5


def test_predict_writes_coefficients_and_cube_files(workdir, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            str(workdir / "run"),
            str(workdir / "waters.xyz"),
            "-o",
            str(tmp_path / "pred.h5"),
            "--cube-dir",
            str(tmp_path / "cubes"),
            "--cube-spacing",
            "0.25",
        ],
    )
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "pred.h5") as handle:
        assert len(handle["structures"]) == 10
    with open(tmp_path / "cubes" / "structure_0.cube") as handle:
        cube = ase.io.cube.read_cube(handle)
    voxel = (0.25 / BOHR_IN_ANGSTROM) ** 3
    # a HOMO density integrates to one electron
    assert np.sum(cube["data"]) * voxel == pytest.approx(1.0, abs=0.05)


def test_generate_records_failed_structures_and_exits_nonzero(tmp_path):
    ase.io.write(tmp_path / "waters.xyz", distorted_waters(2, seed=1))
    config = {
        "structures": {"file": "waters.xyz"},
        "backend": {"name": "pyscf", "options": {"basis": "sto-3g", "max_cycle": 1}},
        "target": {"name": "density"},
        "executor": {"kind": "serial"},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(
        cli, ["generate", str(tmp_path / "config.yaml"), "-o", str(tmp_path / "d.h5")]
    )
    assert result.exit_code == 1
    assert "failed 2" in result.output and "SCF did not converge" in result.output
