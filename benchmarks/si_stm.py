"""ML-driven STM images of Si(100)-(2x1): a trained ILDOS model vs DFT + RI on held-out slabs.

For each bias: distorted Si(100)-(2x1) slabs (buckling amplitude and direction, thermal
noise) -> periodic PySCF (PBE, GTH) + RI fit of the ILDOS -> dataset -> linear model
(ridge) -> on held-out slabs: ILDOS NMAE above the surface vs the RI reference and vs
the exact Kohn-Sham ILDOS, constant-current tip-height RMSE (pm), Pearson r of the
images, and the time of an ML image vs the DFT + RI route for the same structure,
measured side by side in this run. Prints JSON; with --docs writes the figures of
docs/stm.rst.

    python benchmarks/si_stm.py --out benchmarks/results/si_stm --docs
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import ase.io
import numpy as np

from rhocore.config import resolve_config
from rhocore.dataset import Dataset
from rhocore.modelfile import load_model_file
from rhocore.plugins import get_registry
from rhocore.stm import nmae_percent_above, topmost_z
from rhocore.structures import si100_variants
from rhocore.workflows.generate import generate
from rhocore.workflows.stm import (
    CONSTANT_CURRENT,
    StmSettings,
    field_grid,
    load_source,
    stm_images,
)
from rhocore.workflows.train import Split, train_run

DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"

#: Periodic PBE with GTH pseudopotentials; the cost per slab is in benchmarks/results.
BACKEND = {
    "xc": "pbe",
    "basis": "gth-szv",
    "aux_basis": "even-tempered",
    "metric": "overlap",
    "ke_cutoff": 100.0,
    # a little Fermi-Dirac smearing: without it 2 of 32 distorted slabs did not converge
    "smearing": 0.1,
    "max_cycle": 200,
}
DESCRIPTOR = {"cutoff": 5.0, "max_radial": 6, "max_angular": 4, "density_width": 0.5}


def make_config(structures: Path, bias: float, kpts: list[int], sigma: float):
    """Validated configuration of one bias on a ``kpts`` Monkhorst-Pack mesh."""
    return resolve_config(
        {
            "structures": {"file": str(structures)},
            "backend": {"name": "pyscf", "options": {**BACKEND, "kpts": kpts}},
            "target": {"name": "ildos", "options": {"bias": bias, "sigma": sigma}},
            "descriptor": DESCRIPTOR,
            "model": {"name": "linear"},
            "training": {"optimizer": "ridge"},
        }
    )


def run_bias(bias: float, args: argparse.Namespace) -> dict:
    """Dataset, model and held-out image metrics of one bias."""
    out = args.out / f"bias{bias:+.1f}"
    out.mkdir(parents=True, exist_ok=True)
    structures = args.out / "slabs.xyz"
    config = make_config(structures, bias, args.kpts, args.sigma)
    dataset = out / "dataset.h5"
    start = time.perf_counter()
    summary = generate(config, dataset, progress=False)
    generate_seconds = time.perf_counter() - start
    done = Dataset(dataset).indices()  # structures whose SCF failed are left out
    n = args.n_train + args.n_validation
    split = Split(train=done[: args.n_train], validation=done[args.n_train : n], test=done[n:])
    train_run(config, dataset, out / "run", split=split, progress=False)
    model = load_model_file(out / "run")
    rows = [held_out(out, model, dataset, structures, index, bias, args) for index in split.test]
    means = {key: float(np.mean([row[key] for row in rows])) for key in rows[0] if key != "index"}
    worst = {
        "height_rmse_pm_max": max(row["height_rmse_pm"] for row in rows),
        "pearson_r_min": min(row["pearson_r"] for row in rows),
        "nmae_percent_vs_ri_max": max(row["nmae_percent_vs_ri"] for row in rows),
    }
    return {
        "bias_V": bias,
        "generate_seconds": generate_seconds,
        "computed": len(summary.computed),
        "failed": len(summary.failed),
        **means,
        **worst,
        "per_structure": rows,
    }


def held_out(
    out: Path, model, dataset: Path, structures: Path, index: int, bias: float, args
) -> dict:
    """Metrics and timings of one held-out slab: ML image vs the DFT + RI route.

    The constant-current set point is the mean predicted ILDOS ``tip`` angstrom above the
    topmost atom; the reference is imaged at the same isovalue.
    """
    settings = StmSettings(bias=bias, mode=CONSTANT_CURRENT, height=args.tip_height, repeat=(4, 2))
    images = out / f"images_{index}"
    start = time.perf_counter()
    result = stm_images(
        model,
        structures,
        settings,
        images,
        frame=index,
        reference=dataset,
        reference_index=index,
        progress=False,
    )
    image_seconds = time.perf_counter() - start
    registry = get_registry()
    predicted = field_grid(
        load_source(model, structures, frame=index), settings, registry, progress=False
    )
    exact = field_grid(load_source(dataset, index, exact=True), settings, registry, False)
    atoms = Dataset(dataset).atoms(index)
    scf_fit_seconds = dft_seconds(atoms, make_config(structures, bias, args.kpts, args.sigma))
    return {
        "index": index,
        "nmae_percent_vs_ri": result.metrics["nmae_percent_above_surface"],
        "nmae_percent_vs_exact": nmae_percent_above(
            predicted.values, exact.values, predicted, topmost_z(atoms)
        ),
        "height_rmse_pm": result.metrics["height_rmse_pm"],
        "pearson_r": result.metrics["pearson_r"],
        "ml_image_seconds": image_seconds,
        "dft_ri_seconds": scf_fit_seconds,
        "speedup": scf_fit_seconds / image_seconds,
    }


def dft_seconds(atoms: ase.Atoms, config) -> float:
    """Time of the DFT + RI route for one slab: SCF, ILDOS weights and the RI fit."""
    backend, target = config.make_backend(), config.make_target()
    start = time.perf_counter()
    scf = backend.run_scf(atoms)
    backend.fit(scf, target.weights(scf.orbitals))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/si_stm"))
    parser.add_argument("--biases", type=float, nargs="+", default=[-1.5, 1.5])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-validation", type=int, default=4)
    parser.add_argument("--n-test", type=int, default=4)
    parser.add_argument("--kpts", type=int, nargs=3, default=[4, 2, 1], help="k-point mesh")
    parser.add_argument("--sigma", type=float, default=0.2, help="ILDOS window edge width, eV")
    parser.add_argument("--tip-height", type=float, default=3.0, help="angstrom above the top")
    parser.add_argument("--docs", action="store_true", help="copy figures to docs/images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    total = args.n_train + args.n_validation + args.n_test
    slabs = args.out / "slabs.xyz"
    if not slabs.exists():
        ase.io.write(slabs, si100_variants(total, seed=7, layers=args.layers))
    results = {
        "layers": args.layers,
        "tip_height_angstrom": args.tip_height,
        "backend": {**BACKEND, "kpts": args.kpts},
        "sigma_eV": args.sigma,
        "descriptor": DESCRIPTOR,
    }
    for bias in args.biases:
        results[f"{bias:+.1f} V"] = run_bias(bias, args)
        print(json.dumps(results[f"{bias:+.1f} V"], indent=1), flush=True)
        if args.docs:
            first = results[f"{bias:+.1f} V"]["per_structure"][0]["index"]
            name = "filled" if bias < 0 else "empty"
            source = args.out / f"bias{bias:+.1f}" / f"images_{first}"
            for png in source.glob("*comparison.png"):
                shutil.copy(png, DOCS_IMAGES / f"si100_stm_{name}_states.png")
    # one process per bias may share --out: each adds its biases to results.json
    path = args.out / "results.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**merged, **results}, indent=1))


if __name__ == "__main__":
    main()
