"""Size and time of lambda-SOAP features with and without compression, on 7-element molecules.

Small organic molecules (H C N O F S Cl) make the (neighbour type x radial) channels of the
expansion many: (7 x 6)^2 channel pairs per (l_1, l_2). ``DescriptorOptions.compression``
keeps K principal components per (centre type, l) before the product. For each K (and
without compression) this measures float64 feature bytes per atom, the time per atom of
the features (computed in pieces, as training and prediction do), the time of the fit,
and the fraction of the expansion's squared norm the K components keep on the measured
structures. The projection is fitted on other structures of the same file than those
measured. Keys: the (l, Z) of def2-universal-jkfit (its radial counts below).

    python benchmarks/descriptor_compression.py --structures /work/data/transfer/validation.xyz

The result, with provenance, is ``benchmarks/results/descriptor_compression.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from featomic.torch import systems_to_torch
from provenance import write_result

from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.qc.basis import BasisLayout

#: def2-universal-jkfit shells per l (pyscf's copy) of H, C, N, O, F, S, Cl.
LAYOUT = BasisLayout(
    {
        1: (2, 2, 2),
        6: (10, 8, 5, 1, 1),
        7: (10, 8, 4, 2, 1),
        8: (10, 8, 4, 2, 1),
        9: (10, 8, 4, 2, 1),
        16: (13, 11, 9, 4, 1),
        17: (13, 11, 9, 4, 1),
    }
)
#: Atoms per species in a piece of features (keeps an uncompressed piece below 400 MB).
PIECE = 32


def measure(descriptor: LambdaSoap, frames: list[ase.Atoms], repeats: int) -> dict[str, float]:
    """Feature bytes per atom (overall and per centre type) and the best time per atom."""
    atoms = sum(len(frame) for frame in frames)
    best = float("inf")
    by_type: dict[int, int] = {}
    for _ in range(repeats):
        by_type = {}
        start = time.perf_counter()
        for piece in descriptor.compute_chunks(frames, atoms=PIECE):
            for key, block in piece.items():
                z = int(key["center_type"])
                by_type[z] = by_type.get(z, 0) + block.values.numel() * 8
        best = min(best, time.perf_counter() - start)
    counts = {z: sum(int((frame.numbers == z).sum()) for frame in frames) for z in by_type}
    return {
        "bytes_per_atom": sum(by_type.values()) / atoms,
        "bytes_per_atom_by_center_type": {
            str(z): size / counts[z] for z, size in sorted(by_type.items()) if counts[z]
        },
        "ms_per_atom": 1e3 * best / atoms,
    }


def kept_norm(descriptor: LambdaSoap, frames: list[ase.Atoms]) -> dict[str, float]:
    """Fraction of the expansion's squared norm on the kept components, per l (all types)."""
    expanded = descriptor.module.expand(systems_to_torch(frames), None)
    projection = descriptor.module.projection
    kept: dict[int, list[float]] = {}
    for z, (values, _) in expanded.items():
        index = descriptor.species.index(z)
        for l, block in enumerate(values):
            pair = kept.setdefault(l, [0.0, 0.0])
            pair[0] += float(torch.sum((block @ projection[index, l]) ** 2))
            pair[1] += float(torch.sum(block**2))
    return {f"l={l}": kept_sum / total for l, (kept_sum, total) in sorted(kept.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--structures", type=Path, required=True, help="extended XYZ file")
    parser.add_argument("--measured", type=int, default=20, help="structures measured")
    parser.add_argument("--fitted", type=int, default=100, help="structures the fit uses")
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 12, 16, 24])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="descriptor_compression")
    args = parser.parse_args()
    frames = ase.io.read(args.structures, index=":")
    order = np.random.default_rng(0).permutation(len(frames))
    measured = [frames[i] for i in order[: args.measured]]
    fitted = [frames[i] for i in order[args.measured : args.measured + args.fitted]]
    cases = {}
    for width in [None, *args.widths]:
        options = DescriptorOptions(cutoff=4.0, max_radial=5, compression=width)
        descriptor = LambdaSoap(options, LAYOUT, LAYOUT.species)
        case: dict[str, object] = {}
        if width is not None:
            start = time.perf_counter()
            descriptor.fit_compression(fitted, seed=0)
            case["fit_seconds"] = time.perf_counter() - start
            case["kept_squared_norm"] = kept_norm(descriptor, measured)
        case.update(measure(descriptor, measured, args.repeats))
        case["feature_sizes"] = {
            f"l={l},Z={z}": n for (l, z), n in descriptor.feature_sizes().items()
        }
        cases["none" if width is None else str(width)] = case
        print(width, {k: v for k, v in case.items() if k != "feature_sizes"}, flush=True)
    result = {
        "structures": str(args.structures),
        "measured_structures": len(measured),
        "measured_atoms": sum(len(frame) for frame in measured),
        "fitted_structures": len(fitted),
        "torch_threads": torch.get_num_threads(),
        "descriptor_options": DescriptorOptions(cutoff=4.0, max_radial=5).model_dump(mode="json"),
        "max_angular": 4,
        "cases": cases,
    }
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
