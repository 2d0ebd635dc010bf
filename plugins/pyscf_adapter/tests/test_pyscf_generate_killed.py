"""`rhocore generate` killed with SIGKILL mid-run, then resumed, equals an uninterrupted run.

Both runs are real `rhocore generate` processes on the PySCF backend (small distorted
waters, one lone H atom that fails on purpose). The killed run is stopped once the file
holds two entries (so the first is committed) while others remain; the resumed file must
hold every entry of the uninterrupted run, bit for bit: every array and attribute of
every entry, none twice, none partial.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase
import ase.io
import h5py
import pytest
import yaml

from rhocore.data.dataset import Dataset
from rhocore.data.generators import distorted_waters
from rhocore.testing.datasets import assert_same_file_contents, file_contents
from rhocore.workflows.dataset_check import check_dataset

pytestmark = [pytest.mark.dft, pytest.mark.slow]  # two `rhocore generate` runs of PySCF SCFs

N_STRUCTURES = 16
FAILING = 3  # a lone H atom: odd electron count with spin 0, which PySCF refuses
CONFIG = {
    "structures": {"file": "structures.xyz"},
    "backend": {
        "name": "pyscf",
        "options": {"xc": "lda", "basis": "def2-svp", "grid_level": 0, "conv_tol": 1e-10},
    },
    "target": {"name": "homo"},
    "executor": {"kind": "serial"},  # Dask: tests/test_generate_executors.py
}
CLI = "from rhocore.cli import main; main()"


def generate_command(root: Path, output: str) -> list[str]:
    return [sys.executable, "-c", CLI, "generate", str(root / "config.yaml"), "-o", output]


def run_environment() -> dict[str, str]:
    """One BLAS thread, so that both runs do the same arithmetic in the same order."""
    return os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def stored_entries(path: Path) -> int:
    """Entries in /structures, read without the writer's lock (0 while unreadable)."""
    try:
        with h5py.File(path, "r", locking=False) as handle:
            return len(handle.get("structures", ()))
    except (OSError, KeyError, RuntimeError):
        return 0


def kill_once_written(command: list[str], cwd: Path, output: Path, timeout: float = 60) -> int:
    """Start ``command``; SIGKILL its process group once ``output`` holds two entries.

    An entry in the file is kept only once the writer's journal has committed it, just
    after its flush; the writer commits the first before it starts the second. Returns the
    entries kept: those in the file once a reader has rolled back the killed write.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=run_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while stored_entries(output) < 2:
            assert process.poll() is None, "generate ended before the kill"
            assert time.monotonic() < deadline, "generate wrote no entry in time"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    wait_for_group_exit(process.pid)  # a child still holding the file keeps its lock
    Dataset(output).indices()  # reading rolls back what the kill left uncommitted
    return stored_entries(output)


def wait_for_group_exit(group: int, timeout: float = 30) -> None:
    """Wait until every process of the killed process group has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"process group {group} still alive"
        time.sleep(0.05)


def test_killed_generate_resumes_to_the_uninterrupted_dataset(tmp_path):
    frames = distorted_waters(N_STRUCTURES - 1, seed=21)
    frames.insert(FAILING, ase.Atoms("H", positions=[[0.0, 0.0, 0.0]]))
    ase.io.write(tmp_path / "structures.xyz", frames)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))

    whole = subprocess.Popen(  # the uninterrupted run, side by side with the killed one
        generate_command(tmp_path, "whole.h5"),
        cwd=tmp_path,
        env=run_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    written = kill_once_written(
        generate_command(tmp_path, "killed.h5"), tmp_path, tmp_path / "killed.h5"
    )
    assert 1 <= written < N_STRUCTURES, f"killed after {written} entries"
    whole_out, whole_err = whole.communicate(timeout=120)
    assert whole.returncode == 1, whole_err  # 1: one structure failed, as planned
    assert f"computed {N_STRUCTURES - 1}, already in the dataset 0, failed 1" in whole_out

    resumed = subprocess.run(
        generate_command(tmp_path, "killed.h5"),
        cwd=tmp_path,
        env=run_environment(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode in (0, 1), resumed.stderr
    assert f"already in the dataset {written}," in resumed.stdout

    report = check_dataset(tmp_path / "killed.h5")
    assert report.ok, report.table()
    assert (report.entries, report.done, report.failed) == (N_STRUCTURES, N_STRUCTURES - 1, 1)
    assert_same_file_contents(
        file_contents(tmp_path / "killed.h5"), file_contents(tmp_path / "whole.h5")
    )
