"""Peak memory of one training step against the number of atoms: dense vs block metric.

Water clusters of 63 to 1002 atoms (liquid density, random orientations) get the overlap
metric of a real auxiliary basis from PySCF (by default PySCF's even-tempered basis
generated from STO-3G: 50 functions on O, 5 on H) and synthetic coefficients; each is
written to a dataset through :class:`rhocore.data.dataset.writer.DatasetWriter`. Then, for
every cluster and each way of holding the metric, a fresh Python process reads the structure
and runs one Adam step of the linear model through :func:`rhocore.training.trainer.train`
(descriptors, metric to torch, forward, loss, backward, step, checkpoint):

* ``dense``: the dense S, as rhocore trained before (``Dataset.overlap``);
* ``blocks``: atom-pair blocks within ``--cutoff`` angstrom (``metric_cutoff``).

Each process reports its peak resident memory (VmHWM), and the peak above its memory
right before reading the data (imports done, descriptor and model built, one warm-up step
on a single water taken): the step.
Scaling exponents are fitted to the step memory on log-log axes (against atoms, and for
the blocks against the atom pairs kept); for the largest cluster
the relative error of d^T S d is given for a few cutoffs. Writes
``benchmarks/results/<name>.json`` with provenance.
Usage: ``python benchmarks/train_memory.py [--molecules 21 42 84 167 334] [--cutoff 5]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase
import numpy as np
from provenance import write_result

WATER = np.array([[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [-0.2400, 0.9266, 0.0]])
#: Grid spacing (angstrom) of one water per 29.9 angstrom^3, the density of liquid water.
SPACING = 3.104
#: Cutoffs (angstrom) whose error d^T S d is reported for the largest cluster.
CUTOFFS = (3.0, 4.0, 5.0, 6.0, 8.0)


def water_cluster(molecules: int, seed: int = 0) -> ase.Atoms:
    """The ``molecules`` waters nearest the centre of a jittered cubic grid, randomly turned."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    side = int(np.ceil(molecules ** (1 / 3))) + 2
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    grid = (grid - (side - 1) / 2) * SPACING
    chosen = grid[np.argsort(np.linalg.norm(grid, axis=1), kind="stable")[:molecules]]
    rotations = Rotation.random(molecules, random_state=seed).as_matrix()
    positions = [
        WATER @ rotation.T + centre + rng.normal(scale=0.15, size=3)
        for rotation, centre in zip(rotations, chosen, strict=True)
    ]
    return ase.Atoms("OH2" * molecules, positions=np.concatenate(positions))


def canonical_overlap(atoms: ase.Atoms, basis: str, aux_basis: str):
    """Overlap S of the aux basis in canonical order, computed a few atoms' rows at a time."""
    from rhocore_pyscf import rifit
    from rhocore_pyscf.convention import aux_ao_map
    from rhocore_pyscf.molecular.molecules import build_auxmol, build_mol
    from rhocore_pyscf.options import PySCFOptions

    options = PySCFOptions(basis=basis, aux_basis=aux_basis, metric="overlap")
    auxmol = build_auxmol(build_mol(atoms, options, for_scf=False), options, "cluster")
    ao_map = aux_ao_map(auxmol)
    layout = ao_map.layout
    canonical = layout.atom_offsets(atoms.numbers)
    code = auxmol.aoslice_by_atom()  # (shell start, shell stop, AO start, AO stop) per atom
    size = int(canonical[-1])
    out = np.empty((size, size))
    step = 32
    for first in range(0, len(atoms), step):
        last = min(first + step, len(atoms))
        rows = auxmol.intor(
            "int1e_ovlp", shls_slice=(code[first, 0], code[last - 1, 1], 0, auxmol.nbas)
        )
        picked = ao_map.order[canonical[first] : canonical[last]] - code[first, 2]
        assert picked.min() >= 0 and picked.max() < len(rows), "atoms' functions not contiguous"
        block = rows[picked][:, ao_map.order]
        block *= ao_map.signs[canonical[first] : canonical[last], None] * ao_map.signs[None]
        out[canonical[first] : canonical[last]] = block
    integrals = ao_map.to_canonical(rifit.basis_integrals(auxmol))
    return out, layout, integrals


def write_datasets(args: argparse.Namespace, folder: Path) -> list[dict]:
    """One dataset file per cluster size; returns what each holds."""
    from rhocore.data.dataset import DatasetEntry, DatasetMetadata, DatasetWriter
    from rhocore.qc.backend import RIFit

    written = []
    for molecules in args.molecules:
        atoms = water_cluster(molecules)
        start = time.perf_counter()
        metric, layout, integrals = canonical_overlap(atoms, args.basis, args.aux_basis)
        coefficients = np.random.default_rng(molecules).normal(size=len(metric))
        fit = RIFit(
            coefficients=coefficients,
            projections=metric @ coefficients,
            metric=metric,
            metric_kind="overlap",
            layout=layout,
            integrals=integrals,
        )
        metadata = DatasetMetadata(
            backend_name="pyscf",
            backend_version="benchmark",
            backend_options={"basis": args.basis, "aux_basis": args.aux_basis},
            target_name="synthetic",
            target_options={},
            layout=layout,
            metric_kind="overlap",
            rhocore_version="benchmark",
        )
        path = folder / f"water{molecules}.h5"
        entry = DatasetEntry(0, atoms, fit, None, None, None, True, "done")
        with DatasetWriter(path, metadata) as writer:
            writer.write(entry)
        written.append(
            {
                "molecules": molecules,
                "atoms": len(atoms),
                "functions": len(metric),
                "path": str(path),
                "setup_seconds": round(time.perf_counter() - start, 1),
            }
        )
        del metric, fit, entry
        print(f"wrote {path.name}: {len(atoms)} atoms", file=sys.stderr)
    return written


def peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM; unlike getrusage's ru_maxrss it starts
    afresh at exec instead of inheriting the parent's peak), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def warm_up(dataset, descriptor, model, options, mode: str) -> None:
    """One step on the first water alone, so that lazily loaded code is not counted."""
    from rhocore.data.samples import Sample
    from rhocore.qc.metric import BlockMetric
    from rhocore.training.trainer import train

    layout = dataset.metadata.layout
    atoms = dataset.atoms(0)[:3]
    size = layout.size(atoms.numbers)
    metric = np.eye(size)
    if mode == "blocks":
        metric = BlockMetric.from_dense(metric, layout, atoms, coefficients=np.ones(size))
    sample = Sample(atoms, dataset.coefficients(0)[:size], metric)
    with tempfile.TemporaryDirectory() as run_dir:
        train(model, descriptor, [sample], [], options, Path(run_dir), progress=False)


def child(path: str, mode: str, cutoff: float) -> dict:
    """One training step on the single structure of ``path``; peak memory in MiB."""
    from rhocore.data.dataset import Dataset
    from rhocore.data.loader import load_samples
    from rhocore.data.samples import Sample
    from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
    from rhocore.models.linear import LinearModel
    from rhocore.training.options import TrainingOptions
    from rhocore.training.trainer import train

    dataset = Dataset(path)
    layout = dataset.metadata.layout
    descriptor = LambdaSoap(DescriptorOptions(), layout, layout.species)
    model = LinearModel(None, layout, descriptor.feature_sizes())
    options = TrainingOptions(
        epochs=1,
        batch_size=1,
        ridge_warm_start=False,
        metric_cutoff=cutoff if mode == "blocks" else None,
    )
    warm_up(dataset, descriptor, model, options, mode)
    before = peak_rss_mib()
    start = time.perf_counter()
    extra = {}
    if mode == "dense":
        sample = Sample(dataset.atoms(0), dataset.coefficients(0), dataset.overlap(0))
    else:
        (sample,) = load_samples(dataset, [0], metric_cutoff=cutoff)
        extra = {
            "pairs_kept": len(sample.metric.pairs),
            "pairs_total": len(sample.atoms) * (len(sample.atoms) + 1) // 2,
            "cutoff_error": sample.metric.cutoff_error(sample.coefficients),
        }
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(model, descriptor, [sample], [], options, Path(run_dir), progress=False)
    peak = peak_rss_mib()
    return {
        "mode": mode,
        "baseline_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "step_mib": round(peak - before, 1),
        "seconds": round(time.perf_counter() - start, 1),
        "loss": result.history[0]["train_loss"],
        **extra,
    }


def exponent(atoms: list[int], memory: list[float]) -> float:
    """Slope of log(memory) against log(atoms), over the points with a measurable step (a
    small step can stay below the warm-up's peak and read as 0 MiB)."""
    kept = [(size, mib) for size, mib in zip(atoms, memory, strict=True) if mib > 0]
    sizes, mibs = np.array(kept).T
    return float(np.polyfit(np.log(sizes), np.log(mibs), 1)[0])


def main() -> None:
    from rhocore.data.dataset import Dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, nargs="+", default=[21, 42, 84, 167, 334])
    parser.add_argument("--cutoff", type=float, default=5.0, help="metric cutoff, angstrom")
    parser.add_argument("--basis", default="sto-3g", help="orbital basis the aux basis follows")
    parser.add_argument("--aux-basis", default="even-tempered")
    parser.add_argument("--child", nargs=3, metavar=("PATH", "MODE", "CUTOFF"))
    parser.add_argument("--write", metavar="FOLDER")
    parser.add_argument("--name", default="train_memory", help="result file name")
    args = parser.parse_args()
    if args.child:
        path, mode, cutoff = args.child
        print(json.dumps(child(path, mode, float(cutoff))))
        return
    if args.write:
        print(json.dumps(write_datasets(args, Path(args.write))))
        return
    with tempfile.TemporaryDirectory(prefix="train_memory") as folder:
        # the datasets are written by a process of their own: the measured ones stay clean
        command = [sys.executable, *sys.argv, "--write", folder]
        points = json.loads(
            subprocess.run(command, capture_output=True, text=True, check=True).stdout
        )
        for point in points:
            for mode in ("blocks", "dense"):
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    point["path"],
                    mode,
                    str(args.cutoff),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise RuntimeError(
                        f"{mode} step on {point['atoms']} atoms failed:\n{done.stderr}"
                    )
                point[mode] = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{point['atoms']} atoms {mode}: {point[mode]}", file=sys.stderr)
        largest = points[-1]
        dataset = Dataset(largest["path"])
        coefficients = dataset.coefficients(0)
        largest["cutoff_errors"] = {
            str(cutoff): dataset.metric_blocks(0, cutoff).cutoff_error(coefficients)
            for cutoff in CUTOFFS
        }
        dataset.close()
        for point in points:
            del point["path"]
    atoms = [point["atoms"] for point in points]
    dense, blocks = largest["dense"], largest["blocks"]
    report = {
        "aux_basis": f"{args.aux_basis} from {args.basis}",
        "metric_cutoff_angstrom": args.cutoff,
        "points": points,
        "step_memory_exponent": {
            mode: exponent(atoms, [point[mode]["step_mib"] for point in points])
            for mode in ("blocks", "dense")
        },
        # in a finite cluster the pairs within the cutoff per atom grow until the surface
        # atoms are a small fraction: the block memory follows the pairs kept
        "blocks_step_memory_exponent_vs_pairs_kept": exponent(
            [point["blocks"]["pairs_kept"] for point in points],
            [point["blocks"]["step_mib"] for point in points],
        ),
        "largest": {
            "atoms": largest["atoms"],
            "dense_over_blocks_peak_rss": dense["peak_rss_mib"] / blocks["peak_rss_mib"],
            "dense_over_blocks_step": dense["step_mib"] / blocks["step_mib"],
            "loss_relative_difference": abs(blocks["loss"] / dense["loss"] - 1),
        },
    }
    path = write_result(args.name, report)
    print(json.dumps(report, indent=1))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
