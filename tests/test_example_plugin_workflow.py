"""The documented example plugin (docs/examples/rhocore-toy) through the whole workflow.

No QC code is installed for these tests: the example backend is registered with a fresh
plugin manager, so the core's generate -> train -> evaluate -> predict path is tested on
its own, and the plugin guide's example is proven to work.
"""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path

import ase.io
import h5py
import numpy as np
import pytest

from rhocore.data.dataset import Dataset
from rhocore.data.generators import distorted_waters
from rhocore.models.file import load_model_file
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.target import Target
from rhocore.testing.backends import check_backend
from rhocore.workflows.config import resolve_config
from rhocore.workflows.evaluate import evaluate
from rhocore.workflows.generate import generate
from rhocore.workflows.predict import predict
from rhocore.workflows.train import train_run

pytestmark = pytest.mark.slow  # generates and trains in its set-up

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "rhocore-toy"


class InTestDensity(Target):
    """Total density: occupation times k-weight."""

    name = "in_test_density"
    is_total_density = True

    def weights(self, orbitals):
        return orbitals.occupations * orbitals.k_weights[None, :, None]


@pytest.fixture(scope="module")
def registry():
    sys.path.insert(0, str(EXAMPLE))
    import rhocore_toy.plugin

    targets = types.ModuleType("in_test_targets")
    targets.rhocore_register_targets = hookimpl(lambda: [InTestDensity])
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(rhocore_toy.plugin)
    manager.register(targets)
    yield get_registry(manager)
    sys.path.remove(str(EXAMPLE))


@pytest.fixture(scope="module")
def run(tmp_path_factory, registry):
    root = tmp_path_factory.mktemp("toy")
    ase.io.write(root / "waters.xyz", distorted_waters(14, seed=3))
    config = resolve_config(
        {
            "structures": {"file": "waters.xyz"},
            "backend": {"name": "toy"},
            "target": {"name": "in_test_density"},
            "descriptor": {"cutoff": 3.0, "max_radial": 4, "max_angular": 2},
            "training": {"epochs": 60, "learning_rate": 0.05},
            "split": {"test_fraction": 0.25, "validation_fraction": 0.15},
            "executor": {"kind": "serial"},  # Dask: tests/test_generate_executors.py
        },
        base_dir=root,
        registry=registry,
    )
    summary = generate(config, root / "dataset.h5", progress=False)
    train_run(config, root / "dataset.h5", root / "run", progress=False)
    return types.SimpleNamespace(root=root, config=config, summary=summary)


def test_example_plugin_declares_its_entry_point():
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["rhocore"] == {"toy": "rhocore_toy.plugin"}


def test_example_backend_keeps_the_backend_contract(registry):
    backend = registry.get("backend", "toy")()
    check_backend(backend, distorted_waters(1, seed=0)[0])


def test_generate_writes_every_structure_and_resumes_without_recomputing(run):
    assert sorted(run.summary.computed) == list(range(14))
    again = generate(run.config, run.root / "dataset.h5", progress=False)
    assert again.computed == [] and sorted(again.skipped) == list(range(14))
    dataset = Dataset(run.root / "dataset.h5")
    assert len(dataset) == 14
    entry = dataset.entry(5)
    # the density fit of the toy backend integrates to the 3 electrons it was given
    assert entry.fit.integrals @ entry.fit.coefficients == pytest.approx(3.0, rel=0.05)


def test_train_writes_the_run_directory(run):
    run_dir = run.root / "run"
    for name in ("model.pt", "checkpoint.ckpt", "train.log", "options_restart.yaml", "split.json"):
        assert (run_dir / name).exists(), name
    restart = (run_dir / "options_restart.yaml").read_text()
    assert "name: toy" in restart and "in_test_density" in restart


def test_evaluate_reports_grid_and_metric_errors_on_held_out_structures(run, registry):
    model = load_model_file(run.root / "run")
    report = evaluate(
        model,
        run.root / "dataset.h5",
        indices=model.test_indices,
        progress=False,
        registry=registry,
    )
    means = report.means()
    assert len(report.structures) == len(model.test_indices) > 0
    assert report.grid_metrics_unavailable is None
    # a trained model beats the per-species baseline but cannot beat the RI reference itself
    assert 0 < means["metric_error_percent"] < 20
    assert means["ri_floor_nmae_percent"] > 0
    assert means["electron_count_error_percent"] is not None


def test_evaluate_without_the_backend_marks_grid_metrics_unavailable(run):
    report = evaluate(
        run.root / "run",
        run.root / "dataset.h5",
        indices=[0],
        progress=False,
        registry=get_registry(get_plugin_manager(load_entry_points=False)),
    )
    assert report.structures[0].nmae_percent_vs_ri is None
    assert "toy" in report.grid_metrics_unavailable
    assert report.structures[0].metric_error_percent > 0


def test_predict_writes_the_model_coefficients(run, tmp_path):
    structures = run.root / "waters.xyz"
    coefficients = predict(run.root / "run", structures, tmp_path / "pred.h5", progress=False)
    model = load_model_file(run.root / "run")
    frames = ase.io.read(structures, index=":")
    with h5py.File(tmp_path / "pred.h5") as handle:
        assert handle.attrs["format"] == "rhocore-predictions"
        stored = handle["structures/3/coefficients"][()]
    np.testing.assert_allclose(stored, coefficients[3])
    np.testing.assert_allclose(stored, model.predict([frames[3]])[0], rtol=1e-12)
