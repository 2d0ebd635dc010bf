"""Throughput of ``rhocore generate``: structures per minute on 1 and on 2 Dask workers.

Small distorted water molecules, PySCF PBE/def2-SVP, HOMO target, Coulomb-metric RI fit
on def2-universal-jkfit. A LocalCluster of 1 and one of 2 single-core workers (one BLAS
thread each) compute the same structures into fresh datasets, one after the other in
this run; the wall time includes starting and stopping the cluster and the workers'
imports, as a user sees it; with ``--repeats`` the runs alternate and the best time of
each counts. The load average is recorded before and after, since shared machines make
timings noisy. Writes ``benchmarks/results/<name>.json`` with provenance.
Usage: ``python benchmarks/generate_throughput.py [--structures 16] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import ase.io
from provenance import write_result

from rhocore.data.dataset import Dataset
from rhocore.data.generators import distorted_waters
from rhocore.parallel.executor import usable_cores
from rhocore.workflows.config import resolve_config
from rhocore.workflows.generate import generate

EXECUTORS = {
    "dask_1_worker": {"kind": "local", "workers": 1, "cores_per_worker": 1},
    "dask_2_workers": {"kind": "local", "workers": 2, "cores_per_worker": 1},
}


def config(root: Path, xc: str, basis: str, executor: dict) -> object:
    """The benchmark's generate configuration with one executor."""
    return resolve_config(
        {
            "structures": {"file": "waters.xyz"},
            "backend": {
                "name": "pyscf",
                "options": {
                    "xc": xc,
                    "basis": basis,
                    "aux_basis": "def2-universal-jkfit",
                    "metric": "coulomb",
                },
            },
            "target": {"name": "homo"},
            "executor": executor,
        },
        base_dir=root,
        source="benchmark",
    )


def seconds(root: Path, name: str, run: int, args: argparse.Namespace) -> float:
    """Wall time of one executor computing the waters into a fresh dataset."""
    output = root / f"{name}-{run}.h5"
    start = time.perf_counter()
    executor = EXECUTORS[name]
    summary = generate(config(root, args.xc, args.basis, executor), output, progress=False)
    elapsed = time.perf_counter() - start
    assert not summary.failed and len(Dataset(output)) == args.structures, summary.table()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=16)
    parser.add_argument("--xc", default="pbe")
    parser.add_argument("--basis", default="def2-svp")
    parser.add_argument(
        "--repeats", type=int, default=1, help="Runs of each executor, in alternating order."
    )
    parser.add_argument("--name", default="generate_throughput", help="result file name")
    args = parser.parse_args()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in EXECUTORS}
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        ase.io.write(root / "waters.xyz", distorted_waters(args.structures, seed=0))
        for run in range(args.repeats):
            for name in list(EXECUTORS)[:: 1 if run % 2 == 0 else -1]:
                times[name].append(seconds(root, name, run, args))
    results = {
        name: {
            "seconds": values,
            "best_seconds": min(values),
            "structures_per_minute": 60 * args.structures / min(values),
        }
        for name, values in times.items()
    }
    one, two = results["dask_1_worker"], results["dask_2_workers"]
    result = {
        "structures": args.structures,
        "repeats": args.repeats,
        "method": f"PySCF {args.xc}/{args.basis}, HOMO, def2-universal-jkfit, coulomb",
        "usable_cores": usable_cores(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "results": results,
        "speedup_2_vs_1_workers": one["best_seconds"] / two["best_seconds"],
    }
    path = write_result(args.name, result)
    print(json.dumps(result, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
