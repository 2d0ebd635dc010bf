"""Time of the lambda-SOAP descriptor per water molecule; prints JSON.

Layout: radial-function counts of def2-universal-jkfit for O and H. Two cases: isolated
molecules, and molecules inside 8-molecule clusters (more neighbours per atom).
Usage: ``python benchmarks/descriptor_speed.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rhocore.basis import BasisLayout
from rhocore.descriptors import DescriptorOptions, LambdaSoap
from rhocore.models.linear import LinearModel
from rhocore.models.nonlinear import NonlinearModel
from rhocore.testing.models import random_waters

LAYOUT = BasisLayout({8: (10, 8, 4, 2, 1), 1: (2, 2, 2)})


def seconds_per_molecule(descriptor: LambdaSoap, frames, molecules: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        descriptor.compute(frames)
        best = min(best, time.perf_counter() - start)
    return best / (len(frames) * molecules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    options = DescriptorOptions()
    descriptor = LambdaSoap(options, LAYOUT, [1, 8])
    sizes = descriptor.feature_sizes()
    result = {
        "torch_threads": torch.get_num_threads(),
        "descriptor_options": options.model_dump(mode="json"),
        "max_angular": descriptor.max_angular,
        "layout": LAYOUT.nmax,
        "feature_sizes": {f"l={l},Z={z}": n for (l, z), n in sizes.items()},
        "parameters": {
            cls.name: sum(p.numel() for p in cls(None, LAYOUT, sizes).parameters())
            for cls in (LinearModel, NonlinearModel)
        },
        "ms_per_isolated_water": 1e3
        * seconds_per_molecule(descriptor, random_waters(200, molecules=1), 1, args.repeats),
        "ms_per_water_in_8_molecule_cluster": 1e3
        * seconds_per_molecule(descriptor, random_waters(25, molecules=8), 8, args.repeats),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
