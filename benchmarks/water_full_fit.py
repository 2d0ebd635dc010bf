"""The 100-molecule point of the water learning curve (run after ``water.py``).

``water.py`` keeps 10 of the 100 training molecules for validation, which chooses the
ridge regularisation. This fits the ``linear`` density model on all 100 with the
regularisation given here (the one chosen at 90) and prints the test metrics as JSON.

    python benchmarks/water_full_fit.py 1e-10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from water import make_config, test_metrics

from rhocore.workflows.config import resolve_config
from rhocore.workflows.train import Split, train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("regularization", type=float)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/water"))
    args = parser.parse_args()
    config = make_config(
        args.out / "frames_100_219.xyz", "density", "def2-universal-jkfit", "linear", 1
    ).to_dict()
    config["training"]["ridge_regularizations"] = [args.regularization]
    split = Split(list(range(100)), [], list(range(100, 120)))
    run_dir = args.out / "curve-linear-100"
    train_run(resolve_config(config), args.out / "density.h5", run_dir, split=split)
    print(json.dumps(test_metrics(run_dir, args.out / "density.h5", split), indent=1))


if __name__ == "__main__":
    main()
