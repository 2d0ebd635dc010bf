"""``rhocore demo``: the end-to-end path on the embedded PySCF backend.

Structures -> DFT + RI fit -> dataset -> trained model -> held-out metrics, in a few
minutes on a laptop, and for the surface demo an STM image of a held-out slab next to its
DFT reference. Every stage resumes: a rerun reuses the dataset it finds.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ase
import ase.io
import yaml

from rhocore.data.generators import distorted_waters, si100_variants
from rhocore.errors import InputError
from rhocore.workflows.config import resolve_config
from rhocore.workflows.evaluate import EvaluationReport, evaluate, write_report
from rhocore.workflows.generate import generate
from rhocore.workflows.train import train_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Demo:
    """A packaged demo: its config, its structures and, for surfaces, the STM bias (V)."""

    config: str
    n_structures: int
    description: str
    structures: Callable[[int], list[ase.Atoms]]
    stm_bias: float | None = None


DEMOS = {
    "water-homo": Demo(
        "water-homo.yaml",
        40,
        "HOMO density of distorted water molecules, PBE/def2-SVP",
        lambda count: distorted_waters(count, seed=0),
    ),
    "si-stm": Demo(
        "si-stm.yaml",
        20,
        "STM image of Si(100)-(2x1), filled states at -1.5 V, from an ILDOS model",
        lambda count: si100_variants(count, seed=0, layers=4),
        stm_bias=-1.5,
    ),
}


def run_demo(name: str, run_dir: Path, *, progress: bool = True) -> EvaluationReport:
    """Run demo ``name`` in ``run_dir`` and return its held-out evaluation."""
    if name not in DEMOS:
        raise InputError(f"unknown demo '{name}'; available: {', '.join(DEMOS)}")
    demo = DEMOS[name]
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    structures = run_dir / "structures.xyz"
    if not structures.exists():
        ase.io.write(structures, demo.structures(demo.n_structures))
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
    if demo.stm_bias is not None:
        stm_image(run_dir, structures, dataset, split["test"][0], demo.stm_bias, progress)
    return report


def stm_image(
    run_dir: Path, structures: Path, dataset: Path, index: int, bias: float, progress: bool
) -> None:
    """Constant-current image of a held-out slab, predicted next to its DFT reference."""
    from rhocore.workflows.stm import CONSTANT_CURRENT, StmSettings, stm_images

    settings = StmSettings(bias=bias, mode=CONSTANT_CURRENT, height=3.0)
    print(f"[+] STM image of held-out slab {index} at {bias:+g} V")
    result = stm_images(
        run_dir / "model.pt",
        structures,
        settings,
        run_dir / "stm",
        frame=index,
        reference=dataset,
        reference_index=index,
        progress=progress,
    )
    print(result.summary())
