"""Learning curve of density models on the transfer benchmark's small organic molecules.

The training and validation datasets are those of ``benchmarks/transfer_molecules.py``
(molecules of at most 20 atoms, split by InChIKey, PBE/def2-SVP, density-fitted SCF, total
density on def2-universal-jkfit, Coulomb metric). Each model is trained on the first N
structures of a seeded permutation of the training set, for every N of ``--sizes``, and
scored on the validation set, which also chooses the ridge strength: the test molecules
(20-60 atoms) are not read here. Reported per model and size: the metric error and the
electron-count error on every validation structure, the NMAE against the RI reference on
every ``--grid-every``-th one, training time and the model file's size.

    python benchmarks/transfer_learning_curve.py --train /work/data/transfer/train.h5 \\
        --validation /work/data/transfer/validation.h5 --models linear --sizes 100 200 400

The result, with provenance, is ``benchmarks/results/<name>.json``; the plot
``benchmarks/results/<name>.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from provenance import RESULTS, write_result

from rhocore.data.dataset import Dataset
from rhocore.fields.plots import learning_curve_plot
from rhocore.workflows.config import resolve_config
from rhocore.workflows.evaluate import evaluate
from rhocore.workflows.train import Split, train_run

#: lambda-SOAP settings of the curve: seven elements make (7 x 6)^2 channel pairs per
#: angular pair, so the expansion is compressed to 12 principal components first
DESCRIPTOR = {"cutoff": 4.0, "max_radial": 5, "density_width": 0.3, "compression": 12}
#: Ridge strengths tried; the validation set chooses
RIDGE = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]

#: Each model's options and training, as a configuration file would give them.
MODELS: dict[str, dict[str, Any]] = {
    "linear": {
        "model": {"name": "linear"},
        "training": {
            "optimizer": "ridge",
            "ridge_regularizations": RIDGE,
            "ridge_max_support": 8000,
        },
    },
    "kernel": {
        "model": {"name": "kernel", "options": {"zeta": 2}},
        "training": {
            "optimizer": "ridge",
            "ridge_regularizations": RIDGE,
            "ridge_max_support": 8000,
        },
    },
}


def training_order(dataset: Dataset, seed: int) -> list[int]:
    """The training structures in a seeded random order; the first N form size N."""
    return np.random.default_rng(seed).permutation(dataset.indices()).tolist()


def score(model_dir: Path, validation: Path, grid_every: int) -> dict[str, Any]:
    """Metric and electron-count errors on every validation structure, NMAE vs RI on a
    regular subset of them (the grid metrics cost seconds per structure)."""
    indices = Dataset(validation).indices()
    cheap = evaluate(model_dir, validation, indices=indices, grid=False, progress=False)
    grid = evaluate(model_dir, validation, indices=indices[::grid_every], progress=False)
    return {
        "metric_error_percent": [s.metric_error_percent for s in cheap.structures],
        "electron_count_error_percent": [s.electron_count_error_percent for s in cheap.structures],
        "nmae_percent_vs_ri": {str(s.index): s.nmae_percent_vs_ri for s in grid.structures},
        "means": {**cheap.means(), "nmae_percent_vs_ri": grid.means()["nmae_percent_vs_ri"]},
    }


def curve_point(name: str, size: int, order: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """Train ``name`` on the first ``size`` structures of ``order`` and score it; a point
    finished by an earlier run of the same ``--work`` folder is read back, not redone."""
    run_dir = args.work / f"{name}-{size}"
    finished = run_dir / "point.json"
    if finished.exists():
        return json.loads(finished.read_text())
    config = resolve_config({**MODELS[name], "descriptor": DESCRIPTOR})
    validation = Dataset(args.validation).indices()
    split = Split(sorted(order[:size]), validation, [], validation_dataset=args.validation)
    start = time.perf_counter()
    result = train_run(config, args.train, run_dir, split=split, progress=False)
    seconds = time.perf_counter() - start
    scores = score(run_dir, args.validation, args.grid_every)
    print(f"{name} N={size}: {scores['means']} ({seconds:.0f} s)", flush=True)
    point = {
        "model": name,
        "training_structures": size,
        "training_seconds": seconds,
        "best_loss": result.best_loss,
        "model_file_bytes": (run_dir / "model.pt").stat().st_size,
        **scores,
    }
    finished.write_text(json.dumps(point))
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["linear"], choices=sorted(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 200, 400])
    parser.add_argument("--grid-every", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("transfer-curve"))
    parser.add_argument("--name", default="transfer_learning_curve")
    args = parser.parse_args()

    order = training_order(Dataset(args.train), args.seed)
    sizes = [size for size in args.sizes if size <= len(order)]
    points = [curve_point(name, size, order, args) for name in args.models for size in sizes]
    errors = {
        name: [p["means"]["nmae_percent_vs_ri"] for p in points if p["model"] == name]
        for name in args.models
    }
    learning_curve_plot(
        sizes, errors, "validation NMAE vs RI fit (%)", RESULTS / f"{args.name}.png"
    )
    result = {
        "reference": "RI fit (def2-universal-jkfit, Coulomb metric) of the PBE/def2-SVP density",
        "chosen_on": "ridge strength on the validation set; no test structure is read",
        "descriptor": DESCRIPTOR,
        "models": {name: MODELS[name] for name in args.models},
        "available_training_structures": len(order),
        "seed": args.seed,
        "points": points,
    }
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
