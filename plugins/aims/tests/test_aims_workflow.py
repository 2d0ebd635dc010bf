"""generate -> dataset -> train -> evaluate with the aims backend, as with the real binary.

The stand-in FHI-aims (tests/standin) runs behind ASE's profile exactly where FHI-aims
would; its run folders are then imported again with `rhocore aims import`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from rhocore.cli import cli
from rhocore.data.dataset import Dataset
from rhocore.data.generators import distorted_waters
from rhocore.plugins.registry import get_plugin_manager
from rhocore.testing.workflows import generate_and_train

pytestmark = [pytest.mark.dft, pytest.mark.slow]  # the FHI-aims stand-in runs PySCF SCFs

STANDIN = Path(__file__).parent / "standin" / "aims_standin.py"


@pytest.fixture(scope="module")
def rhocore_cli():
    """The rhocore command group with the plugin sub-commands registered, as `main` does."""
    if "aims" not in cli.commands:
        get_plugin_manager().hook.rhocore_register_commands(cli=cli)
    return cli


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, rhocore_cli):
    root = tmp_path_factory.mktemp("aims-workflow")
    species = root / "species" / "tight"
    species.mkdir(parents=True)
    for name, number in (("H", 1), ("O", 8)):
        (species / f"{number:02d}_{name}_default").write_text(f"species {name}\n")
    ase.io.write(root / "waters.xyz", distorted_waters(6, seed=3))
    config = {
        "structures": {"file": "waters.xyz"},
        "backend": {
            "name": "aims",
            "options": {
                "command": f"{sys.executable} {STANDIN}",
                "species_dir": str(root / "species"),
                "run_directory": str(root / "runs"),
            },
        },
        "target": {"name": "homo"},
        "descriptor": {"cutoff": 3.5, "max_radial": 4, "max_angular": 4},
        "training": {"optimizer": "ridge"},
        "split": {"test_fraction": 0.34, "validation_fraction": 0.17},
    }
    return generate_and_train(rhocore_cli, root, config)


def test_generate_writes_canonical_fits_of_every_structure(workdir):
    dataset = Dataset(workdir / "data.h5")
    assert dataset.summary() == {"done": 6, "failed": 0}
    assert dataset.metadata.backend_name == "aims"
    layout = dataset.metadata.layout
    entry = dataset.entry(0)
    assert layout is not None and set(layout.species) == {1, 8}
    fit = entry.fit
    assert np.allclose(fit.metric @ fit.coefficients, fit.projections, rtol=0, atol=1e-10)
    # the HOMO density integrates to one: d . S d is its squared L2 norm, positive
    assert float(fit.coefficients @ fit.metric @ fit.coefficients) > 0


def test_evaluate_reports_metric_errors_without_a_grid(workdir, rhocore_cli):
    result = CliRunner().invoke(
        rhocore_cli,
        ["evaluate", str(workdir / "run"), str(workdir / "data.h5"), "--no-grid"]
        + ["--subset", "test", "--json", str(workdir / "metrics.json")],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "metrics.json").read_text())
    assert 0 < report["metric_error_percent"] < 100


def test_import_of_the_run_folders_gives_the_same_fits(workdir, rhocore_cli):
    ri_folders = sorted(path.parent for path in (workdir / "runs").glob("*/ri-*/aims.out"))
    assert len(ri_folders) == 6
    output = workdir / "imported.h5"
    result = CliRunner().invoke(
        rhocore_cli,
        ["aims", "import", *map(str, ri_folders), "-o", str(output), "--target", "homo"],
    )
    assert result.exit_code == 0, result.output
    generated, imported = Dataset(workdir / "data.h5"), Dataset(output)
    assert len(imported) == 6
    by_positions = {
        tuple(np.round(generated.atoms(i).positions, 6).ravel()): i for i in generated.indices()
    }
    for index in imported.indices():
        source = by_positions[tuple(np.round(imported.atoms(index).positions, 6).ravel())]
        assert np.allclose(imported.coefficients(index), generated.coefficients(source))
        assert imported.entry(index).weights is not None


def test_rerunning_generate_computes_nothing(workdir, rhocore_cli):
    result = CliRunner().invoke(
        rhocore_cli, ["generate", str(workdir / "config.yaml"), "-o", str(workdir / "data.h5")]
    )
    assert result.exit_code == 0, result.output
    assert "computed 0, already in the dataset 6" in result.output


def _config_with(workdir: Path, tmp_path: Path, **options) -> Path:
    """The workflow's config on two of its structures, with other backend options."""
    ase.io.write(tmp_path / "two.xyz", ase.io.read(workdir / "waters.xyz", index=":2"))
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["structures"]["file"] = str(tmp_path / "two.xyz")
    config["backend"]["options"].update(run_directory=str(tmp_path / "runs"), **options)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_missing_binary_stops_before_any_entry(workdir, rhocore_cli, tmp_path):
    config = _config_with(workdir, tmp_path, command="srun -n 4 /opt/none/aims.x")
    result = CliRunner().invoke(
        rhocore_cli, ["generate", str(config), "-o", str(tmp_path / "d.h5")]
    )
    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert "binary '/opt/none/aims.x'" in message
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.parametrize("failure", ["crash", "truncate", "noconverge"])
def test_failed_runs_become_failed_entries_naming_aims_out(
    workdir, rhocore_cli, tmp_path, monkeypatch, failure
):
    monkeypatch.setenv("RHOCORE_STANDIN_FAIL", failure)
    config = _config_with(workdir, tmp_path)
    result = CliRunner().invoke(
        rhocore_cli, ["generate", str(config), "-o", str(tmp_path / "d.h5")]
    )
    assert result.exit_code == 1  # the exit status says something failed
    dataset = Dataset(tmp_path / "d.h5")
    assert dataset.summary() == {"done": 0, "failed": 2}
    reason = dataset.entry(0).reason
    assert "scf/aims.out" in reason and "\n" not in reason


def test_predict_refuses_cube_files_in_one_line(workdir, rhocore_cli, tmp_path):
    result = CliRunner().invoke(
        rhocore_cli,
        ["predict", str(workdir / "run"), str(workdir / "waters.xyz")]
        + ["-o", str(tmp_path / "p.h5"), "--cube-dir", str(tmp_path / "cubes")],
    )
    assert result.exit_code == 1
    assert "backend 'aims'" in result.output and "without --cube-dir" in result.output
