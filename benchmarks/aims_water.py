"""Accuracy on real FHI-aims data: imported rho_learn water HOMO and density fits.

Imports the processed FHI-aims folders of ../shared/data with `rhocore aims import`'s
Python API, then trains the linear model (ridge) in cross-validation folds and reports
the held-out metric error ``100 sqrt(dd^T S dd / d^T S d)`` (and its square, the
relative squared L2 error), next to the RI floor the README gives. Prints JSON and writes
``benchmarks/results/<name>.json`` with provenance; the imported datasets and the trained
runs go to ``--work`` (default: a temporary folder).

    python benchmarks/aims_water.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import write_result
from rhocore_aims.importer import import_folders

from rhocore.data.dataset import Dataset
from rhocore.fields.grids import metric_error_percent
from rhocore.models.file import load_model_file
from rhocore.workflows.config import resolve_config
from rhocore.workflows.train import Split, train_run

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DESCRIPTOR = {"cutoff": 4.0, "max_radial": 8, "max_angular": 8, "density_width": 0.5}
#: RI floors given by ../shared/data/README.md (percent, grid MAE of the fit vs SCF field)
RI_FLOOR = {"homo": 0.38, "density": 0.18}


def folds(indices: list[int], n_test: int) -> list[Split]:
    """Consecutive test blocks of ``n_test``; validation = the next structure after them."""
    splits = []
    for start in range(0, len(indices), n_test):
        test = indices[start : start + n_test]
        rest = [index for index in indices if index not in test]
        validation = rest[start % len(rest) : start % len(rest) + 1]
        train = [index for index in rest if index not in validation]
        splits.append(Split(train=train, validation=validation, test=test))
    return splits


def cross_validate(dataset_path: Path, target: str, n_test: int, out: Path) -> dict:
    """Mean held-out metric error over folds of the linear ridge model."""
    config = resolve_config(
        {
            "descriptor": DESCRIPTOR,
            "model": {"name": "linear"},
            "training": {"optimizer": "ridge"},
        }
    )
    dataset = Dataset(dataset_path)
    indices = dataset.indices()
    errors = {}
    start = time.perf_counter()
    for number, split in enumerate(folds(indices, n_test)):
        run_dir = out / f"{target}-fold{number}"
        train_run(config, dataset_path, run_dir, split=split, progress=False)
        model = load_model_file(run_dir)
        for index in split.test:
            predicted = model.predict([dataset.atoms(index)])[0]
            errors[index] = metric_error_percent(
                predicted, dataset.coefficients(index), dataset.overlap(index)
            )
    errors_array = np.array(list(errors.values()))
    return {
        "structures": len(indices),
        "folds": len(folds(indices, n_test)),
        "train_per_fold": len(indices) - n_test - 1,
        "metric_error_percent_mean": float(errors_array.mean()),
        "metric_error_percent_max": float(errors_array.max()),
        "squared_metric_error_percent_mean": float(np.mean(errors_array**2) / 100),
        "ri_floor_percent_readme": RI_FLOOR[target],
        "seconds": time.perf_counter() - start,
        "metric_error_percent_per_structure": {str(key): value for key, value in errors.items()},
    }


def import_and_validate(target: str, root: Path, frames: range, n_test: int, work: Path) -> dict:
    """Import one rho_learn folder set, then cross-validate the linear model on it."""
    folders = [
        folder for folder in sorted((root / "structures").iterdir()) if int(folder.name) in frames
    ]
    dataset_path = work / f"{target}.h5"
    dataset_path.unlink(missing_ok=True)
    start = time.perf_counter()
    summary = import_folders(
        folders, dataset_path, xyz=root / "water_monomers_1k.xyz", target=target, progress=False
    )
    import_seconds = time.perf_counter() - start
    return {
        "imported": len(summary.imported),
        "skipped": len(summary.skipped),
        "import_seconds": import_seconds,
        **cross_validate(dataset_path, target, n_test, work),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="datasets and runs (default: temporary)")
    parser.add_argument("--name", default="aims_water", help="result file name")
    args = parser.parse_args()
    cases = {
        "homo": (DATA / "rho_learn_water_homo", range(0, 10**6), 1),
        "density": (DATA / "rho_learn_water_density", range(92, 10**6), 5),
    }
    results = {"descriptor": DESCRIPTOR, "model": "linear", "optimizer": "ridge"}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        for target, (root, frames, n_test) in cases.items():
            results[target] = import_and_validate(target, root, frames, n_test, work)
            print(target, json.dumps(results[target]), flush=True)
    path = write_result(args.name, results)
    print(json.dumps(results, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
