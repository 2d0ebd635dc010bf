"""Benchmark results as committed data: ``benchmarks/results/<name>.json`` with provenance.

Every figure the README and the docs quote comes from one of these files. Each records how,
when and where it was measured: the git commit (and whether the tree was clean), the date,
the exact command line, the machine (CPU model, cores, threads, memory, load average) and the
versions of the packages that set the numbers.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = (
    "rhocore",
    "rhocore-pyscf",
    "torch",
    "pyscf",
    "featomic",
    "featomic-torch",
    "metatensor-torch",
    "metatomic-torch",
    "numpy",
    "scipy",
)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Load average when the benchmark imported this module: its start (a shared machine's
#: other work slows timings, so every result says how busy the machine was).
LOAD_AT_START = os.getloadavg()


def git_state(folder: Path) -> dict[str, Any]:
    """The commit checked out in ``folder`` and whether the tracked files are unchanged."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD"),
            "clean": git("status", "--porcelain", "--untracked-files=no") == "",
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "clean": None}


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Physical memory of this machine in GiB (Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU, cores, thread settings and memory of the machine running the benchmark."""
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "memory_gib": memory_gib(),
        "load_average_at_start": [round(value, 2) for value in LOAD_AT_START],
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that set the numbers (None if absent)."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def rhocore_source() -> str | None:
    """The folder the ``rhocore`` package was imported from: the checkout the commit names,
    or another copy of it (``PYTHONPATH``), whose code then set the numbers."""
    module = sys.modules.get("rhocore")
    return str(Path(module.__file__).resolve().parent) if module and module.__file__ else None


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """How, when and where a result was measured."""
    return {
        **git_state(Path(__file__).resolve().parent),
        "rhocore_imported_from": rhocore_source(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *(sys.argv if argv is None else argv)]),
        "machine": machine(),
        "versions": versions(),
    }


def write_result(name: str, result: dict[str, Any], folder: Path = RESULTS) -> Path:
    """Write ``result`` with its provenance to ``folder/<name>.json`` and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    document = {"name": name, "provenance": provenance(), **result}
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    return path
