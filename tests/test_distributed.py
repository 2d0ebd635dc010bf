"""`rhocore train` under torchrun: 2 processes follow the loss curve of 1 (and resume in 1),
only process 0 writes, and the closed-form ridge fit is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import yaml
from click.testing import CliRunner

from rhocore.cli import cli
from rhocore.data.dataset import Dataset, DatasetWriter
from rhocore.plugins.registry import get_registry
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata
from rhocore.training import distributed
from rhocore.training.checkpoints import load_checkpoint, load_model
from rhocore.training.trainer import predict

DRIVER = Path(__file__).with_name("distributed_driver.py")
REPOSITORY = Path(__file__).parents[1]
#: 14 structures: 1 held out, 3 validation, 10 training; batches of 3 leave one structure
#: in the last batch, so one process has an empty share of it.
BASE = {
    "descriptor": {"cutoff": 3.5, "max_radial": 2, "max_angular": 2},
    "split": {"test_fraction": 0.1, "validation_fraction": 0.2, "seed": 1},
}
RUNS = {
    "adam": {
        "model": {"name": "nonlinear", "options": {"hidden_sizes": [4]}},
        "training": {
            "optimizer": "adam",
            "epochs": 4,
            "batch_size": 3,
            "ridge_regularizations": [1e-3],
        },
    },
    "lbfgs": {
        "model": {"name": "linear"},
        "training": {
            "optimizer": "lbfgs",
            "learning_rate": 1.0,
            "epochs": 3,
            "lbfgs_iterations": 4,
            "weight_decay": 1e-3,
            "ridge_warm_start": False,
        },
    },
    "ridge": {"model": {"name": "linear"}, "training": {"optimizer": "ridge"}},
}
#: The first half of "adam", trained in 2 processes, then resumed by "adam" in 1.
RUNS["adam-half"] = {**RUNS["adam"], "training": {**RUNS["adam"]["training"], "epochs": 2}}


def _train_arguments(root: Path, name: str, run_dir: Path) -> list[str]:
    return ["train", str(root / f"{name}.yaml"), "--dataset", str(root / "data.h5")] + [
        "-o",
        str(run_dir),
    ]


def _train_in_this_process(root: Path, name: str, run_dir: Path) -> list[dict]:
    """`rhocore train` here, with one thread as in each torchrun process; its history."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(cli, _train_arguments(root, name, run_dir))
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return _history(run_dir)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    with DatasetWriter(root / "data.h5", synthetic_metadata()) as writer:
        for index in range(14):
            writer.write(synthetic_entry(index))
    for name, sections in RUNS.items():
        (root / f"{name}.yaml").write_text(yaml.safe_dump({**BASE, **sections}))
    return root


@pytest.fixture(scope="module")
def parallel(root) -> list[dict]:
    """Every run of RUNS in one torchrun launch of 2 processes; their records by rank."""
    (root / "records").mkdir()
    commands = [_train_arguments(root, name, root / "parallel" / name) for name in RUNS]
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
    }
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    completed = subprocess.run(
        launch
        + ["--nproc_per_node", "2", str(DRIVER), str(root / "records"), str(root / "parallel")]
        + [json.dumps(commands)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return [json.loads((root / "records" / f"rank{r}.json").read_text()) for r in (0, 1)]


def _history(run_dir: Path) -> list[dict]:
    return torch.load(run_dir / "checkpoint.ckpt", weights_only=True)["history"]


@pytest.fixture(scope="module")
def serial(root) -> dict[str, list[dict]]:
    """Histories of the "adam" and "lbfgs" runs in one process."""
    return {
        name: _train_in_this_process(root, name, root / "serial" / name)
        for name in ("adam", "lbfgs")
    }


def _assert_same_curve(one: list[dict], two: list[dict], epochs: int) -> None:
    assert [h["epoch"] for h in one] == [h["epoch"] for h in two] == list(range(1, epochs + 1))
    for a, b in zip(one, two, strict=True):
        for key in ("train_loss", "validation_loss", "learning_rate"):
            assert b[key] == pytest.approx(a[key], rel=1e-10, abs=0.0), (key, a, b)
    assert one[-1]["train_loss"] != one[0]["train_loss"]  # the curve is not flat


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adam", "lbfgs"])
def test_two_processes_follow_the_loss_curve_of_one(root, parallel, serial, name):
    assert all(record["outcomes"][list(RUNS).index(name)] == "ok" for record in parallel)
    epochs = RUNS[name]["training"]["epochs"]
    _assert_same_curve(serial[name], _history(root / "parallel" / name), epochs)
    log = (root / "parallel" / name / "train.log").read_text()
    for epoch in range(1, epochs + 1):
        assert log.count(f"epoch {epoch} train_loss") == 1, log


def test_a_two_process_run_resumed_in_one_process_stays_on_the_curve(root, parallel, serial):
    assert all(record["outcomes"][list(RUNS).index("adam-half")] == "ok" for record in parallel)
    resumed = _train_in_this_process(root, "adam", root / "parallel" / "adam-half")
    assert "resuming from" in (root / "parallel" / "adam-half" / "train.log").read_text()
    _assert_same_curve(serial["adam"], resumed, RUNS["adam"]["training"]["epochs"])


@pytest.mark.parametrize("name", ["adam", "lbfgs"])
def test_logged_validation_loss_is_the_metric_error_of_the_last_weights(root, parallel, name):
    run_dir = root / "parallel" / name
    checkpoint = load_checkpoint(run_dir / "checkpoint.ckpt")
    _, descriptor, _ = load_model(run_dir / "checkpoint.ckpt")
    model = get_registry().get("model", checkpoint["model"]["name"])
    model = model.from_hypers(checkpoint["model"]["hypers"])
    model.load_state_dict(checkpoint["model_state"])
    dataset = Dataset(root / "data.h5")
    indices = json.loads((run_dir / "split.json").read_text())["validation"]
    predictions = predict(model, descriptor, [dataset.atoms(i) for i in indices])
    errors = [
        (p - dataset.coefficients(i)) @ dataset.overlap(i) @ (p - dataset.coefficients(i))
        for p, i in zip(predictions, indices, strict=True)
    ]
    assert checkpoint["history"][-1]["validation_loss"] == pytest.approx(np.mean(errors), rel=1e-12)


def test_only_process_zero_writes_the_run_directory(root, parallel):
    assert [(r["rank"], r["world_size"]) for r in parallel] == [(0, 2), (1, 2)]
    assert parallel[1]["writes"] == []
    written = {Path(path).name for _, path in parallel[0]["writes"]}
    for name in ("train.log", "checkpoint.ckpt.partial", "model.pt", "split.json"):
        assert name in written, written
    assert "options_restart.yaml" in written


def test_ridge_under_torchrun_is_refused_naming_the_alternatives(parallel):
    for record in parallel:
        message = record["outcomes"][list(RUNS).index("ridge")]
        assert "training.optimizer 'ridge'" in message, message
        assert "without torchrun" in message and "'adam' or 'lbfgs'" in message, message


@pytest.fixture
def one_process_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_summed_gradients_leave_parameters_no_process_used_without_gradient(one_process_group):
    model = torch.nn.ModuleDict(
        {"used": torch.nn.Linear(3, 2).double(), "unused": torch.nn.Linear(3, 2).double()}
    )
    loss = model["used"](torch.ones(4, 3, dtype=torch.float64)).square().sum()
    loss.backward()
    expected = [p.grad.clone() for p in model["used"].parameters()]
    assert distributed.sum_gradients(model, loss) == loss
    for grad, parameter in zip(expected, model["used"].parameters(), strict=True):
        assert torch.equal(parameter.grad, grad)
    assert all(p.grad is None for p in model["unused"].parameters())
    assert distributed.share(list(range(5))) == [0, 1, 2, 3, 4]
