"""Speed of the closed-form ridge's factorisation: PyTorch's LAPACK against scipy's.

The ridge solvers factorise one dense symmetric matrix per strength through
:mod:`rhocore.models.linear.dense` (PyTorch, MKL); before, they called
``scipy.linalg.cho_factor`` (the OpenBLAS bundled with scipy), which crashed with two
threads on large matrices. Each library factorises and solves the same positive definite
matrix ``--repeats`` times in its own child process, so that a crash is reported (as its
signal) instead of ending the benchmark; the best time of each counts, and the two
solutions must agree. Every size runs both libraries side by side; the result, with
provenance, is ``benchmarks/results/<name>.json``.
Usage: ``python benchmarks/ridge_cholesky.py [--sizes 8000 12000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import write_result

LIBRARIES = ("torch", "scipy")


def positive_definite(size: int) -> np.ndarray:
    """A well-conditioned symmetric positive definite matrix, cheap to build."""
    matrix = np.random.default_rng(0).random((size, size))
    matrix += matrix.T
    matrix[np.diag_indices(size)] += size
    return matrix


def factorise_and_solve(library: str, matrix: np.ndarray, right_side: np.ndarray) -> np.ndarray:
    """Overwrite ``matrix`` with its Cholesky factor and return the solution."""
    if library == "torch":
        from rhocore.models.linear.dense import cholesky_in_place, cholesky_solve

        assert cholesky_in_place(matrix)
        return cholesky_solve(matrix, right_side)
    import scipy.linalg

    factor = scipy.linalg.cho_factor(matrix, lower=True, overwrite_a=True)
    return scipy.linalg.cho_solve(factor, right_side)


def child(library: str, size: int, repeats: int, solution_file: Path) -> None:
    """Time one library; print its best time as JSON and save its solution."""
    matrix = positive_definite(size)
    right_side = np.random.default_rng(1).random(size)
    seconds = []
    for _ in range(repeats):
        work = matrix.copy()
        start = time.perf_counter()
        solution = factorise_and_solve(library, work, right_side)
        seconds.append(time.perf_counter() - start)
    np.save(solution_file, solution)
    print(json.dumps({"seconds": min(seconds)}))


def measure(library: str, size: int, repeats: int, folder: Path) -> dict:
    """Run ``library`` in a child process: its best time, or how it failed."""
    solution_file = folder / f"{library}.npy"
    command = [sys.executable, __file__, "--sizes", str(size), "--repeats", str(repeats)]
    done = subprocess.run(
        [*command, "--child", library, "--solution", str(solution_file)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = f"signal {-done.returncode}" if done.returncode < 0 else done.stderr[-300:]
        return {"failed": reason}
    return json.loads(done.stdout.splitlines()[-1]) | {"solution": np.load(solution_file)}


def compare(size: int, repeats: int) -> dict:
    """Both libraries on one matrix of ``size``: best times, their ratio, the solutions' gap."""
    with tempfile.TemporaryDirectory() as folder:
        runs = {library: measure(library, size, repeats, Path(folder)) for library in LIBRARIES}
    report: dict = {"size": size}
    for library, run in runs.items():
        report[f"{library}_seconds"] = run.get("seconds") or f"failed: {run['failed']}"
    if all("seconds" in run for run in runs.values()):
        difference = float(np.abs(runs["torch"]["solution"] - runs["scipy"]["solution"]).max())
        scale = float(np.abs(runs["scipy"]["solution"]).max())
        assert difference <= 1e-10 * scale, f"the solutions differ by {difference:g}"
        report["scipy_over_torch"] = runs["scipy"]["seconds"] / runs["torch"]["seconds"]
        report["solution_difference"] = difference
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="ridge_cholesky", help="result file name")
    parser.add_argument("--child", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--solution", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.sizes[0], args.repeats, args.solution)
        return
    import torch

    result = {
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "sizes": [compare(size, args.repeats) for size in args.sizes],
    }
    path = write_result(args.name, result)
    print(json.dumps(result, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
