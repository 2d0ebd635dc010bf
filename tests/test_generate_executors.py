"""`rhocore generate` on Dask: a local cluster that loses a worker, a given scheduler,
and the executor section of the config (validation, SLURM/PBS job scripts).

The backend is a small in-test plugin whose SCF sleeps a little and, for structures
tagged ``deaths=N``, SIGKILLs its own worker process the first N times it computes
them, so a lost worker happens at a known structure, mid-run. Worker processes import
this module to unpickle the plugin classes.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import threading
import time
import types
from pathlib import Path

import ase
import ase.io
import h5py
import numpy as np
import pytest
import yaml
from pydantic import Field

from rhocore.api import BasisLayout, OrbitalData, QCBackend, RIFit, SCFResult, Target
from rhocore.data.generators import distorted_waters
from rhocore.parallel.executor import (
    THREAD_VARIABLES,
    ExecutorError,
    JobqueueExecutor,
    dask_client,
    jobqueue_cluster,
)
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.testing.datasets import assert_same_file_contents, file_contents
from rhocore.workflows.config import ConfigError, resolve_config
from rhocore.workflows.generate import generate


class DyingOptions(PluginOptions):
    """Options of the in-test backend."""

    seconds: float = Field(0.0, ge=0, description="Sleep of every SCF, s.")
    death_log: str | None = Field(
        None, description="File where each self-kill is logged by the structure's label."
    )


class DyingBackend(QCBackend):
    """One s function per atom; orbital energies and coefficients from the distances."""

    name = "dying"
    Options = DyingOptions

    def basis_layout(self, atoms):
        return BasisLayout({int(z): (1,) for z in set(atoms.numbers)})

    def run_scf(self, atoms):
        self._die_if_due(atoms)
        time.sleep(self.options.seconds)
        distances = atoms.get_all_distances()
        energies = np.sort(-10.0 / (1.0 + distances.sum(axis=1)))
        occupations = np.zeros(len(atoms))
        occupations[0] = 2.0
        orbitals = OrbitalData(energies[None, None], occupations[None, None], np.ones(1))
        return SCFResult(atoms, orbitals, float(energies @ occupations), True, distances)

    def _die_if_due(self, atoms):
        """SIGKILL this process if the structure has not yet died ``deaths`` times."""
        deaths, log = int(atoms.info.get("deaths", 0)), self.options.death_log
        if deaths == 0 or log is None:
            return
        label = atoms.info["label"]
        path = Path(log)
        if (path.read_text().split() if path.exists() else []).count(label) < deaths:
            with path.open("a") as handle:
                handle.write(label + "\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def fit(self, scf, weights, n_electrons=None):
        metric = np.exp(-scf.state)  # a Laplace kernel: symmetric positive definite
        coefficients = weights.sum() * np.exp(-scf.state.sum(axis=1))
        return RIFit(
            coefficients=coefficients,
            projections=metric @ coefficients,
            metric=metric,
            metric_kind="overlap",
            layout=self.basis_layout(scf.atoms),
            integrals=np.ones(len(coefficients)),
        )

    def evaluate_fitted(self, atoms, coefficients, points):
        raise AssertionError("generate never evaluates fields")

    def evaluate_exact(self, atoms, field_state, points):
        raise AssertionError("generate never evaluates fields")

    def integration_grid(self, atoms):
        raise AssertionError("generate never evaluates fields")


class Occupations(Target):
    """Total density: occupation times k-weight."""

    name = "occupations"
    is_total_density = True

    def weights(self, orbitals):
        return orbitals.occupations * orbitals.k_weights[None, :, None]


@pytest.fixture(scope="module")
def registry():
    plugin = types.ModuleType("in_test_dying")
    plugin.rhocore_register_backends = hookimpl(lambda: [DyingBackend])
    plugin.rhocore_register_targets = hookimpl(lambda: [Occupations])
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    return get_registry(manager)


def write_structures(root: Path, count: int, deaths: dict[int, int]) -> None:
    """``count`` distorted waters; structure i kills its worker ``deaths[i]`` times."""
    frames = distorted_waters(count, seed=5)
    for index, times in deaths.items():
        frames[index].info.update(deaths=times, label=f"s{index}")
    ase.io.write(root / "structures.xyz", frames)


def make_config(root: Path, registry, executor: dict, seconds: float = 0.0, index: str = ":"):
    data = {
        "structures": {"file": "structures.xyz", "index": index},
        "backend": {
            "name": "dying",
            "options": {"seconds": seconds, "death_log": str(root / "deaths.log")},
        },
        "target": {"name": "occupations"},
        "executor": executor,
    }
    return resolve_config(data, base_dir=root, registry=registry)


def deaths_logged(root: Path) -> list[str]:
    path = root / "deaths.log"
    return path.read_text().split() if path.exists() else []


@pytest.mark.slow
def test_local_cluster_that_loses_a_worker_mid_run_completes_to_the_serial_dataset(
    tmp_path, registry
):
    write_structures(tmp_path, 10, deaths={4: 1})
    local = make_config(tmp_path, registry, {"kind": "local", "workers": 2}, seconds=0.15)
    summary = generate(local, tmp_path / "dask.h5", progress=False)
    assert deaths_logged(tmp_path) == ["s4"]  # structure 4 killed its worker once
    assert summary.computed == list(range(10)) and summary.failed == {}

    serial = make_config(tmp_path, registry, {"kind": "serial"}, seconds=0.15)  # s4 died: no kill
    assert generate(serial, tmp_path / "serial.h5", progress=False).computed == list(range(10))
    assert_same_file_contents(
        file_contents(tmp_path / "dask.h5"), file_contents(tmp_path / "serial.h5")
    )


@pytest.mark.slow
def test_a_structure_that_keeps_killing_its_workers_is_recorded_failed_and_the_run_goes_on(
    tmp_path, registry
):
    write_structures(tmp_path, 4, deaths={1: 99})
    executor = {"kind": "local", "workers": 2, "retries_on_worker_loss": 1}
    summary = generate(make_config(tmp_path, registry, executor), tmp_path / "d.h5")
    assert deaths_logged(tmp_path) == ["s1", "s1"]  # the first run and one retry
    assert summary.computed == [0, 2, 3]
    assert list(summary.failed) == [1] and "worker" in summary.failed[1]
    with h5py.File(tmp_path / "d.h5") as handle:
        assert handle["structures/1"].attrs["status"] == "failed"


def test_local_workers_get_cores_per_worker_blas_threads_and_this_process_keeps_its_own(
    monkeypatch,
):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    options = resolve_executor({"kind": "local", "workers": 1, "cores_per_worker": 2})
    with dask_client(options, structures=5) as client:
        found = client.run(lambda: {name: os.environ.get(name) for name in THREAD_VARIABLES})
    assert list(found.values()) == [dict.fromkeys(THREAD_VARIABLES, "2")]
    assert not any(name in os.environ for name in THREAD_VARIABLES)


def test_an_existing_scheduler_computes_only_the_structures_not_yet_done(tmp_path, registry):
    from distributed import LocalCluster

    write_structures(tmp_path, 5, deaths={})
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        executor = {"kind": "address", "address": cluster.scheduler_address}
        first = make_config(tmp_path, registry, executor, index=":3")
        assert generate(first, tmp_path / "d.h5", progress=False).computed == [0, 1, 2]
        again = generate(make_config(tmp_path, registry, executor), tmp_path / "d.h5")
    assert again.skipped == [0, 1, 2] and again.computed == [3, 4]


def test_an_unreachable_scheduler_is_one_line_naming_the_address(tmp_path, registry):
    write_structures(tmp_path, 2, deaths={})
    executor = {"kind": "address", "address": "tcp://127.0.0.1:9", "timeout": 0.5}
    with pytest.raises(ExecutorError) as error:
        generate(make_config(tmp_path, registry, executor), tmp_path / "d.h5")
    message = str(error.value)
    assert "\n" not in message
    assert "executor.address" in message and "'tcp://127.0.0.1:9'" in message
    assert "dask scheduler" in message


def test_an_address_where_no_dask_scheduler_listens_is_one_line(tmp_path, registry):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_like_a_web_server():
        with server:
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 8)

    threading.Thread(target=answer_like_a_web_server, daemon=True).start()
    write_structures(tmp_path, 2, deaths={})
    executor = {"kind": "address", "address": f"tcp://127.0.0.1:{port}", "timeout": 2}
    with pytest.raises(ExecutorError) as error:
        generate(make_config(tmp_path, registry, executor), tmp_path / "d.h5")
    message = str(error.value)
    assert "\n" not in message and f"'tcp://127.0.0.1:{port}' is not a Dask scheduler" in message


def resolve_executor(executor: object):
    return resolve_config({"executor": executor}, source="run.yaml").executor_options


def test_the_default_executor_is_a_local_cluster_and_round_trips_through_the_restart_file():
    config = resolve_config({}, source="run.yaml")
    assert config.executor_options.kind == "local"
    written = config.to_dict()["executor"]
    assert written["kind"] == "local" and written["retries_on_worker_loss"] == 3
    assert resolve_executor(written) == config.executor_options


@pytest.mark.parametrize(
    ("executor", "expected"),
    [
        ({"kind": "slrum"}, "executor.kind: unknown executor 'slrum'; choose one of local,"),
        ({"kind": "slrum"}, "Did you mean 'slurm'?"),
        ({"kind": "local", "worker": 2}, "executor.worker: Extra inputs are not permitted"),
        ({"kind": "local", "workers": 0}, "executor.workers: Input should be greater than"),
        ({"kind": "local", "memory_per_worker": "lots"}, "executor.memory_per_worker: Value"),
        ({"kind": "address"}, "executor.address: Field required"),
        ({"kind": "slurm", "memory": "8GB", "walltime": "2h"}, "executor.walltime: Value"),
        ({"kind": "pbs", "memory": "8GB", "walltime": 14400}, "walltime in quotes"),
        ({"kind": "slurm", "walltime": "02:00:00"}, "executor.memory: Field required"),
        (
            {"kind": "pbs", "memory": "8GB", "cores": 16, "workers_per_job": 3},
            "cores (16) must be a multiple of workers_per_job (3)",
        ),
        ("local", "executor: Input should be a valid dictionary"),
    ],
)
def test_a_bad_executor_section_is_one_line_naming_its_yaml_path(executor, expected):
    with pytest.raises(ConfigError) as error:
        resolve_executor(executor)
    message = str(error.value)
    assert message.startswith("run.yaml: ") and "\n" not in message
    assert expected in message


SLURM = {
    "kind": "slurm",
    "queue": "short",
    "account": "chem42",
    "jobs": 3,
    "cores": 16,
    "memory": "32GB",
    "walltime": "02:30:00",
    "workers_per_job": 2,
    "prologue": ["module load openblas", "source /home/me/rhocore/.venv/bin/activate"],
    "extra_directives": ["--constraint=amd"],
}


def test_slurm_job_script_asks_for_the_queue_cores_memory_walltime_and_runs_the_prologue():
    options = resolve_executor(SLURM)
    assert isinstance(options, JobqueueExecutor)
    with jobqueue_cluster(options) as cluster:
        script = cluster.job_script()
    lines = script.splitlines()
    for directive in ("-p short", "-A chem42", "--cpus-per-task=16", "--mem=30G", "-t 02:30:00"):
        assert f"#SBATCH {directive}" in lines, directive
    assert "#SBATCH --constraint=amd" in lines
    # each of the 2 workers runs one structure at a time on 8 BLAS/OpenMP threads
    assert "export OMP_NUM_THREADS=8" in lines and "export OPENBLAS_NUM_THREADS=8" in lines
    worker = next(line for line in lines if "distributed.cli.dask_worker" in line)
    assert "--nthreads 1" in worker and "--nworkers 2" in worker
    prologue = [lines.index(line) for line in SLURM["prologue"]]
    assert prologue == sorted(prologue) and prologue[-1] < lines.index(worker)


def test_pbs_job_script_asks_for_the_queue_and_the_whole_job_resources():
    options = resolve_executor(SLURM | {"kind": "pbs", "extra_directives": []})
    with jobqueue_cluster(options) as cluster:
        lines = cluster.job_script().splitlines()
    assert "#PBS -q short" in lines and "#PBS -A chem42" in lines
    gibibytes = math.ceil(32e9 / 2**30)  # PBS reads GB as 2^30 bytes
    assert f"#PBS -l select=1:ncpus=16:mem={gibibytes}GB" in lines
    assert "#PBS -l walltime=02:30:00" in lines
    assert "module load openblas" in lines


FAKE_SBATCH = """#!/bin/sh
# stands in for SLURM's sbatch: keeps the script, runs it as its own session, prints an id
cp "$1" "{jobs}/job.sh"
setsid sh "{jobs}/job.sh" > "{jobs}/job.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
FAKE_SCANCEL = """#!/bin/sh
kill -TERM -- "-$1"
"""


@pytest.mark.slow
def test_slurm_executor_submits_a_job_whose_workers_compute_every_structure(
    tmp_path, registry, monkeypatch
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scancel", FAKE_SCANCEL)):
        (bin_dir / name).write_text(text.format(jobs=tmp_path))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_structures(tmp_path, 4, deaths={})
    tests = Path(__file__).resolve().parent  # where the workers find this test plugin
    executor = SLURM | {
        "jobs": 1,
        "cores": 2,
        "memory": "2GB",
        "prologue": [f"export PYTHONPATH={tests}{os.pathsep}$PYTHONPATH"],
    }
    summary = generate(make_config(tmp_path, registry, executor), tmp_path / "d.h5")
    assert summary.computed == [0, 1, 2, 3]
    script = (tmp_path / "job.sh").read_text()
    assert "#SBATCH -p short" in script and "--nworkers 2" in script


def test_schema_of_an_executor_kind_documents_its_fields():
    from click.testing import CliRunner

    from rhocore.cli import cli

    result = CliRunner().invoke(cli, ["schema", "executor", "slurm"])
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)["properties"]
    assert {"queue", "walltime", "prologue", "jobs"} <= fields.keys()
    assert "before the workers start" in fields["prologue"]["description"]
    unknown = CliRunner().invoke(cli, ["schema", "executor", "sge"])
    assert unknown.exit_code == 2 and "local, address, slurm, pbs, serial" in unknown.output


def documented_executor_sections() -> list[object]:
    """The ``executor`` section of every YAML example in docs/cluster.rst."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "cluster.rst").read_text()
    sections = []
    for block in text.split("::\n\n")[1:]:
        lines = []
        for line in block.splitlines():
            if line and not line.startswith("    "):
                break
            lines.append(line[4:])
        if "executor:" in lines[0] or "structures:" in "".join(lines[:3]):
            sections.append(yaml.safe_load("\n".join(lines))["executor"])
    return sections


def test_every_executor_example_of_the_cluster_page_is_a_valid_config():
    sections = documented_executor_sections()
    kinds = [resolve_executor(section).kind for section in sections]
    assert kinds == ["local", "local", "address", "slurm", "pbs"]
    slurm = sections[3] | {"interface": None}  # this machine has no InfiniBand 'ib0'
    with jobqueue_cluster(resolve_executor(slurm)) as cluster:
        script = cluster.job_script()
    assert "source /home/me/rhocore/.venv/bin/activate" in script
    assert "export OMP_NUM_THREADS=4" in script  # 32 cores / 8 workers per job


def test_a_cluster_that_cannot_start_is_one_line_naming_the_reason():
    options = resolve_executor(SLURM | {"interface": "no-such-nic0"})
    with pytest.raises(ExecutorError) as error:
        jobqueue_cluster(options)
    message = str(error.value)
    assert "\n" not in message and "SLURM Dask cluster did not start" in message
    assert "'no-such-nic0' is not a valid network interface" in message


@pytest.mark.parametrize(
    ("settings", "structures", "expected"),
    [
        ({}, 1, (1, 4)),  # a lone structure gets every core
        ({}, 2, (2, 2)),
        ({}, 10, (4, 1)),
        ({"workers": 2}, 10, (2, 2)),
        ({"cores_per_worker": 2}, 10, (2, 2)),
        ({"cores_per_worker": 1}, 1, (1, 1)),  # an explicit setting is kept
    ],
)
def test_local_layout_shares_the_usable_cores_among_the_workers_started(
    monkeypatch, settings, structures, expected
):
    monkeypatch.setattr("rhocore.parallel.executor.usable_cores", lambda: 4)
    assert resolve_executor({"kind": "local", **settings}).layout(structures) == expected
