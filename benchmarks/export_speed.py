"""Cost of an exported model (``rhocore export``) against rhocore's own prediction; JSON.

A linear model with random weights on the water benchmark's basis (def2-universal-jkfit
radial counts for O and H) and default descriptor is saved as ``model.pt`` and exported.
Measured: export time (scripting, saving and the probe check), file size, load time of
the file through metatomic's ASE calculator, and the best time per call for water
clusters of 1, 8 and 64 molecules: ``MetatomicCalculator.run_model`` (neighbour list
included) against ``ModelFile.predict``, side by side in this run (their ratio), with the
largest relative difference. Writes ``benchmarks/results/<name>.json`` with provenance.
Usage: ``python benchmarks/export_speed.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from metatomic.torch import ModelOutput
from metatomic_ase import MetatomicCalculator
from provenance import write_result

from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.descriptors.tensormaps import tensormap_to_coefficients
from rhocore.models.file import load_model_file, save_model_file
from rhocore.models.linear import LinearModel
from rhocore.qc.basis import BasisLayout
from rhocore.testing.datasets import synthetic_metadata
from rhocore.testing.models import random_waters
from rhocore.workflows.export import export_model

LAYOUT = BasisLayout({8: (10, 8, 4, 2, 1), 1: (2, 2, 2)})
CLUSTERS = (1, 8, 64)


def best_time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="export_speed", help="result file name")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = DescriptorOptions()
    descriptor = LambdaSoap(options, LAYOUT, [1, 8])
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.01 * torch.randn(parameter.shape, generator=generator))
    model.eval()
    result: dict[str, object] = {"torch_threads": 1, "layout": LAYOUT.nmax}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        metadata = synthetic_metadata(layout=LAYOUT, target_name="homo")
        save_model_file(run / "model.pt", model, options, [1, 8], metadata, {})
        start = time.perf_counter()
        export_model(run, run / "exported.pt")
        result["export_s"] = time.perf_counter() - start
        result["file_mb"] = (run / "exported.pt").stat().st_size / 1e6
        start = time.perf_counter()
        calculator = MetatomicCalculator(str(run / "exported.pt"))
        result["load_s"] = time.perf_counter() - start
        model_file = load_model_file(run)
        request = {"rhocore::homo": ModelOutput(sample_kind="atom")}
        for molecules in CLUSTERS:
            atoms = random_waters(1, seed=molecules, molecules=molecules)[0]

            def exported(atoms=atoms):
                return calculator.run_model(atoms, request)["rhocore::homo"]

            def rhocore_predict(atoms=atoms):
                return model_file.predict([atoms])[0]

            got = tensormap_to_coefficients(exported(), [atoms.numbers], LAYOUT)[0].numpy()
            expected = rhocore_predict()
            exported_ms = 1e3 * best_time(exported, args.repeats)
            rhocore_ms = 1e3 * best_time(rhocore_predict, args.repeats)
            result[f"{molecules}_waters"] = {
                "atoms": len(atoms),
                "exported_ms": exported_ms,
                "rhocore_predict_ms": rhocore_ms,
                "rhocore_predict_over_exported": rhocore_ms / exported_ms,
                "max_relative_difference": float(
                    np.abs(got - expected).max() / np.abs(expected).max()
                ),
            }
    result["repeats"] = args.repeats
    path = write_result(args.name, result)
    print(json.dumps(result, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
