"""Time of the lambda-SOAP descriptor per water molecule; prints JSON.

Layout: radial-function counts of def2-universal-jkfit for O and H. Two cases: isolated
molecules, and molecules inside 8-molecule clusters (more neighbours per atom). Then, for
1, 10 and 100 isolated molecules in one call, rhocore's ``LambdaSoap.compute`` side by
side with featomic's own ``EquivariantPowerSpectrum`` (the unique pairs and normalisation
applied the same way, which is how rhocore computed features before), with the largest
deviation between the two.
Usage: ``python benchmarks/descriptor_speed.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence

import ase
import torch
from featomic.torch import systems_to_torch
from featomic.torch.clebsch_gordan import EquivariantPowerSpectrum

from rhocore.data.generators import distorted_waters
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.descriptors.tensormaps import key_labels
from rhocore.models.linear import LinearModel
from rhocore.models.nonlinear import NonlinearModel
from rhocore.qc.basis import BasisLayout
from rhocore.testing.models import random_waters

LAYOUT = BasisLayout({8: (10, 8, 4, 2, 1), 1: (2, 2, 2)})
COMPARISON_OPTIONS = DescriptorOptions(max_radial=8, max_angular=5)
COMPARISON_WATERS = (1, 10, 100)


def seconds_per_molecule(descriptor: LambdaSoap, frames, molecules: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        descriptor.compute(frames)
        best = min(best, time.perf_counter() - start)
    return best / (len(frames) * molecules)


def featomic_features(
    calculator: EquivariantPowerSpectrum, descriptor: LambdaSoap, frames: Sequence[ase.Atoms]
) -> dict[tuple[int, int], torch.Tensor]:
    """Values per (l, Z) from featomic's CG product, unique pairs kept, normalised."""
    raw = calculator.compute(
        systems_to_torch(list(frames)),
        selected_keys=key_labels(descriptor.keys),
        neighbors_to_properties=True,
    )
    values = {}
    for key, block in raw.items():
        l1, l2, a, n1, b, n2 = block.properties.values.to(torch.int64).T
        keep = (l1 < l2) | ((l1 == l2) & ((a < b) | ((a == b) & (n1 <= n2))))
        values[(int(key["o3_lambda"]), int(key["center_type"]))] = block.values[..., keep]
    if descriptor.options.normalize:
        norms = {
            z: torch.linalg.vector_norm(block, dim=(1, 2)).clamp_min(1e-12)
            for (l, z), block in values.items()
            if l == 0
        }
        values = {(l, z): block / norms[z][:, None, None] for (l, z), block in values.items()}
    return values


def elapsed_ms(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return 1e3 * (time.perf_counter() - start)


def comparison(repeats: int) -> dict:
    """Milliseconds per call of featomic's and rhocore's CG product, and their deviation."""
    descriptor = LambdaSoap(COMPARISON_OPTIONS, LAYOUT, [1, 8])
    calculator = EquivariantPowerSpectrum(
        descriptor._expansion, neighbor_types=descriptor.species, dtype=torch.float64
    )
    result = {"descriptor_options": COMPARISON_OPTIONS.model_dump(mode="json")}
    for count in COMPARISON_WATERS:
        frames = distorted_waters(count)
        new = descriptor.compute(frames)
        old = featomic_features(calculator, descriptor, frames)
        deviation = max(
            float((new.block({"o3_lambda": l, "center_type": z}).values - old[(l, z)]).abs().max())
            for l, z in descriptor.keys
        )
        # best of `repeats`, alternating the two so that both see the same machine load
        featomic_ms, rhocore_ms = [], []
        for _ in range(repeats):
            featomic_ms.append(
                elapsed_ms(lambda f=frames: featomic_features(calculator, descriptor, f))
            )
            rhocore_ms.append(elapsed_ms(lambda f=frames: descriptor.compute(f)))
        times = {"featomic_ms": min(featomic_ms), "rhocore_ms": min(rhocore_ms)}
        result[f"{count}_waters"] = {
            **times,
            "speedup": times["featomic_ms"] / times["rhocore_ms"],
            "max_abs_deviation": deviation,
        }
    return result


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
        "featomic_vs_rhocore_cg_product": comparison(args.repeats),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
