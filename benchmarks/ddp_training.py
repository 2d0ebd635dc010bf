"""`rhocore train` in 1 process and under torchrun in N: wall times and loss-curve agreement.

A synthetic dataset (``rhocore.testing.datasets``: clusters of distorted waters, random
SPD metrics) is trained with the same configuration by ``python -m rhocore train`` and by
``torchrun --standalone --nproc_per_node N -m rhocore train`` (both with one OpenMP thread
per process). Prints JSON: command wall times, seconds per epoch from the ``train.log``
timestamps, the largest relative difference of the per-epoch training and validation
losses, and the load average (timings on a shared machine are noisy). Writes
``benchmarks/results/<name>.json`` with provenance.
Usage: ``python benchmarks/ddp_training.py [--structures 64] [--molecules 4] [--epochs 10]
[--batch-size 8] [--processes 2] [--optimizer adam] [--name ddp_training]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from provenance import write_result

from rhocore.data.dataset import DatasetWriter
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata


def seconds_per_epoch(log: Path) -> float:
    """Mean time between the first and the last per-epoch line of ``train.log``."""
    stamps = [
        datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in log.read_text().splitlines()
        if " epoch " in line
    ]
    return (stamps[-1] - stamps[0]).total_seconds() / (len(stamps) - 1)


def run(command: list[str], run_dir: Path) -> dict[str, float]:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=environment, capture_output=True)
    return {
        "wall_s": time.perf_counter() - start,
        "s_per_epoch": seconds_per_epoch(run_dir / "train.log"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=64)
    parser.add_argument("--molecules", type=int, default=4, help="waters per structure")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8, help="structures per step")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
    parser.add_argument("--name", default="ddp_training", help="result file name")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with DatasetWriter(root / "data.h5", synthetic_metadata()) as writer:
            for index in range(args.structures):
                writer.write(synthetic_entry(index, n_molecules=args.molecules))
        config = {
            "descriptor": {"cutoff": 3.5, "max_radial": 4, "max_angular": 3},
            "model": {"name": "nonlinear", "options": {"hidden_sizes": [16]}},
            "training": {
                "optimizer": args.optimizer,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "ridge_warm_start": False,
            },
            "split": {"test_fraction": 0.1, "validation_fraction": 0.1},
        }
        (root / "config.yaml").write_text(yaml.safe_dump(config))
        train = ["-m", "rhocore", "train", str(root / "config.yaml"), "--dataset"]
        train.append(str(root / "data.h5"))
        serial = run([sys.executable, *train, "-o", str(root / "serial")], root / "serial")
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        launch += ["--nproc_per_node", str(args.processes)]
        parallel = run([*launch, *train, "-o", str(root / "parallel")], root / "parallel")
        histories = [
            torch.load(root / name / "checkpoint.ckpt", weights_only=True)["history"]
            for name in ("serial", "parallel")
        ]
    differences = {
        key: max(
            abs(two[key] - one[key]) / abs(one[key]) for one, two in zip(*histories, strict=True)
        )
        for key in ("train_loss", "validation_loss")
    }
    result = {
        "structures": args.structures,
        "atoms_per_structure": 3 * args.molecules,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "processes": args.processes,
        "one_process": serial,
        "torchrun": parallel,
        "epoch_speedup": serial["s_per_epoch"] / parallel["s_per_epoch"],
        "max_relative_difference": differences,
        "final_train_loss": histories[0][-1]["train_loss"],
    }
    path = write_result(args.name, result)
    print(json.dumps(result, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
