"""``rhocore demo``: the end-to-end path on the embedded PySCF backend.

Structures -> DFT + RI fit -> dataset -> trained model -> held-out metrics, in a few
minutes on a laptop. Every stage resumes: a rerun reuses the dataset it finds.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import ase.io
import yaml

from rhocore.config import resolve_config
from rhocore.structures import distorted_waters
from rhocore.workflows.evaluate import EvaluationReport, evaluate, write_report
from rhocore.workflows.generate import generate
from rhocore.workflows.train import train_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Demo:
    """A packaged demo: its config file and how many structures it generates."""

    config: str
    n_structures: int
    description: str


DEMOS = {
    "water-homo": Demo(
        "water-homo.yaml", 40, "HOMO density of distorted water molecules, PBE/def2-SVP"
    ),
}


def run_demo(name: str, run_dir: Path, *, progress: bool = True) -> EvaluationReport:
    """Run demo ``name`` in ``run_dir`` and return its held-out evaluation."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo '{name}'; available: {', '.join(DEMOS)}")
    demo = DEMOS[name]
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    structures = run_dir / "structures.xyz"
    if not structures.exists():
        ase.io.write(structures, distorted_waters(demo.n_structures, seed=0))
    text = importlib.resources.files("rhocore.demos").joinpath(demo.config).read_text()
    data = yaml.safe_load(text)
    data["structures"] = {"file": str(structures.resolve())}
    config = resolve_config(data, source=f"demo {name}")

    dataset = run_dir / "dataset.h5"
    print(f"[1/3] DFT + RI fit of {demo.n_structures} structures -> {dataset}")
    summary = generate(config, dataset, progress=progress)
    print(summary.table())
    print(f"[2/3] training '{config.model_cls.name}' model -> {run_dir}")
    train_run(config, dataset, run_dir, progress=progress)
    split = json.loads((run_dir / "split.json").read_text())
    print(f"[3/3] evaluating on {len(split['test'])} held-out structures")
    report = evaluate(run_dir / "model.pt", dataset, indices=split["test"], progress=progress)
    write_report(report, run_dir / "metrics.json", run_dir / "parity.png")
    print(report.table())
    print(f"metrics: {run_dir / 'metrics.json'}, parity plot: {run_dir / 'parity.png'}")
    return report
