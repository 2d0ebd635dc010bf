"""Time and memory of prediction against system size, next to the PySCF SCF; prints JSON.

Periodic liquid-like water boxes (1 g/cm^3, randomly oriented distorted molecules placed
without overlaps) of 1 to 1000 molecules (3 to 3000 atoms). For each size a fresh Python
process builds the descriptor (cutoff 4 angstrom, max_radial 8, max_angular 6, as in
``benchmarks/water.py``) and TorchScript ``linear`` and ``nonlinear`` models with random
weights on the basis layout of def2-universal-jkfit for H and O (from the PySCF backend),
warms up once and times ``repeats`` predictions (``rhocore.training.trainer.predict``: features
in pieces of 64 atoms per species, model, flat coefficient vector), and the features
alone (``median_ms.descriptor``). Reported per model: the
median (and least) wall time and the median process CPU time (all threads) per atom;
per size, the peak resident memory of that process (torch allocations included). The
exponent k of time ~ atoms^k is fitted over the sizes of at least 100 atoms.

PySCF's SCF (PBE/def2-SVP, RKS, no density fitting) runs, in the same invocation and
also in fresh processes, on the small sizes as molecular clusters: the molecules of the
box without periodic images. Prediction is timed on the same clusters for the ML/SCF
ratio.

With ``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git worktree add
/tmp/base <commit>``) every size is also run by that code (a worker with ``PYTHONPATH=DIR``,
same interpreter), interleaved with the current code, so both see the same machine load;
the result then holds both, the speed-up per size and the largest difference of the
features (boxes up to 300 atoms) and of the predicted coefficients between them.
``--device cuda`` runs the current code's prediction on a GPU. The result is written to
``benchmarks/results/<--result>.json`` with its provenance and printed.

    python benchmarks/predict_scaling.py [--molecules 1 10 32 100 334 667 1000] [--repeats 5]
        [--baseline DIR] [--device cpu|cuda] [--result predict_scaling]

The machine may be shared: every record carries ``os.getloadavg()`` before and after it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ase
import ase.io
import numpy as np
from provenance import write_result
from scipy.spatial.transform import Rotation
from tqdm.auto import tqdm

from rhocore.data.generators import distorted_waters

DESCRIPTOR = {"cutoff": 4.0, "max_radial": 8, "max_angular": 6, "density_width": 0.5}
SCF_OPTIONS = {"xc": "pbe", "basis": "def2-svp", "aux_basis": "def2-universal-jkfit"}
#: Water molecules per box: 3, 30, 96, 300, 1002, 2001 and 3000 atoms.
MOLECULES = (1, 10, 32, 100, 334, 667, 1000)
SCF_MOLECULES = (1, 10)
#: Largest box whose features the workers save for the comparison with the baseline.
COMPARED_ATOMS = 300
MODELS = ("linear", "nonlinear")
#: Volume of one molecule at 1 g/cm^3, angstrom^3 (18.015 g/mol / N_A).
WATER_VOLUME = 18.015 / 0.602214
#: Closest allowed O-O and other intermolecular distances when placing molecules, angstrom.
MIN_OO, MIN_OTHER = 2.5, 1.5
#: OpenMP threads sleep instead of spinning while they wait: on a shared machine (load
#: above the core count) spinning threads made 2-thread runs ten times slower.
WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
#: Candidate placements tried at once.
CANDIDATES = 64


def water_box(molecules: int, seed: int = 0) -> ase.Atoms:
    """A cubic periodic box of ``molecules`` waters at 1 g/cm^3.

    Molecules (distorted, randomly oriented) are inserted one by one at random positions,
    a position being rejected when an O-O distance to an earlier molecule (nearest
    periodic image) is below 2.5 angstrom or any other intermolecular distance below
    1.5 angstrom.
    """
    rng = np.random.default_rng(seed)
    length = (molecules * WATER_VOLUME) ** (1 / 3)
    shapes = [water.positions for water in distorted_waters(molecules, seed=seed)]
    placed = np.zeros((0, 3))
    limit = np.full((3, 0), MIN_OTHER)
    for shape in shapes:
        for _round in range(1000):
            # a batch of candidate placements, the first one without a clash is kept
            rotations = Rotation.random(CANDIDATES, random_state=rng).as_matrix()
            candidates = np.einsum("cij,aj->cai", rotations, shape)
            candidates += rng.uniform(0, length, size=(CANDIDATES, 1, 3))
            delta = candidates[:, :, None, :] - placed[None, None, :, :]
            delta -= length * np.round(delta / length)
            clear = (np.linalg.norm(delta, axis=-1) >= limit).all(axis=(1, 2))
            if clear.any():
                placed = np.concatenate([placed, candidates[np.argmax(clear)]])
                new_limits = np.full((3, 3), MIN_OTHER)
                new_limits[0, 0] = MIN_OO
                limit = np.concatenate([limit, new_limits], axis=1)
                break
        else:
            raise RuntimeError(f"could not place {molecules} waters at 1 g/cm^3 without overlap")
    return ase.Atoms("OH2" * molecules, positions=placed, cell=[length] * 3, pbc=True)


def as_cluster(box: ase.Atoms) -> ase.Atoms:
    """The molecules of ``box`` (whole, as placed) without a cell: a molecular cluster."""
    return ase.Atoms(box.numbers, positions=box.positions)


def current_rss_mb() -> float:
    """Resident memory of this process now, MB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Largest resident memory of this process so far, MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def worker(args: argparse.Namespace) -> dict:
    """Time the prediction of one structure by every model in this (fresh) process."""
    import torch

    from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
    from rhocore.plugins.registry import get_registry
    from rhocore.qc.basis import BasisLayout
    from rhocore.training import trainer as training

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    layout = BasisLayout({int(z): tuple(c) for z, c in json.loads(args.layout).items()})
    descriptor = LambdaSoap(DescriptorOptions(**DESCRIPTOR), layout, [1, 8])
    models = {}
    for name in args.models:
        model = get_registry().get("model", name)(None, layout, descriptor.feature_sizes())
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.normal_(std=1e-3)
        models[name] = torch.jit.script(model.eval()).to(device)
    atoms = ase.io.read(args.worker)
    if device.type != "cpu":
        from rhocore.models.atomistic import CoefficientModel, output_name, predict_coefficients

        descriptor.module.to(device)
        modules = {
            name: CoefficientModel(descriptor.module, model, output_name("benchmark"))
            for name, model in models.items()
        }

    def predicted(name: str) -> np.ndarray:
        if device.type == "cpu":
            return training.predict(models[name], descriptor, [atoms])[0]
        cutoff = descriptor.options.cutoff
        return predict_coefficients(modules[name], [atoms], layout, cutoff, device=device)[0]

    def stamp() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def elapsed(start: tuple[float, float]) -> tuple[float, float]:
        wall, cpu = stamp()
        return 1e3 * (wall - start[0]), 1e3 * (cpu - start[1])

    vectors: dict[str, np.ndarray] = {}

    def predict() -> dict[str, tuple[float, float]]:
        """(wall, CPU) milliseconds of the features alone and of every model's prediction."""
        times = {}
        start = stamp()
        for _piece in descriptor.compute_chunks([atoms]):
            pass
        times["descriptor"] = elapsed(start)
        for name in models:
            start = stamp()
            vector = predicted(name)
            times[name] = elapsed(start)
            vectors[name] = vector
            if not np.isfinite(vector).all() or vector.size != layout.size(atoms.numbers):
                raise RuntimeError(f"{name}: wrong or non-finite predicted coefficients")
        return times

    before = current_rss_mb()
    predict()  # warm-up: first-call costs, and the size's allocations
    runs = [predict() for _ in range(args.repeats)]
    n_atoms = len(atoms)
    result = {
        "atoms": n_atoms,
        "periodic": bool(atoms.pbc.all()),
        "median_ms": {stage: statistics.median(run[stage][0] for run in runs) for stage in runs[0]},
    }
    for name in models:
        walls = [run[name][0] for run in runs]
        cpus = [run[name][1] for run in runs]
        result[name] = {
            "total_ms": statistics.median(walls),
            "ms_per_atom": statistics.median(walls) / n_atoms,
            "min_ms_per_atom": min(walls) / n_atoms,
            "cpu_ms_per_atom": statistics.median(cpus) / n_atoms,
            "all_total_ms": walls,
        }
    peak = peak_rss_mb()
    result.update(
        rss_before_mb=before,
        peak_rss_mb=peak,
        peak_increase_mb=peak - before,
        peak_increase_kb_per_atom=1e3 * (peak - before) / n_atoms,
    )
    if args.dump is not None:
        arrays = {f"vector_{name}": vector for name, vector in vectors.items()}
        if n_atoms <= COMPARED_ATOMS:
            features = descriptor.compute([atoms])
            for key, block in zip(features.keys.values.tolist(), features.blocks(), strict=True):
                arrays["features_" + "_".join(map(str, key))] = block.values.cpu().numpy()
        np.savez(args.dump, **arrays)
    return result


def run_worker(mode: str, structure: Path, arguments: list[str], code: Path | None = None) -> dict:
    """Run a worker (``--worker`` or ``--scf-worker``) on a structure file in a fresh
    interpreter, with the rhocore of ``code`` when given; returns its JSON with the load
    average before and after."""
    command = [sys.executable, str(Path(__file__).resolve()), mode, str(structure), *arguments]
    env = {**os.environ, **WORKER_ENV}
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    load_before = os.getloadavg()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} for {structure} failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    result["loadavg_before"] = load_before
    result["loadavg_after"] = os.getloadavg()
    return result


def scf_worker(args: argparse.Namespace) -> dict:
    """Wall and CPU seconds and peak memory of PySCF's SCF (RKS) of a molecular cluster."""
    from pyscf import lib
    from rhocore_pyscf.backend import PySCFBackend

    lib.num_threads(args.threads)
    atoms = ase.io.read(args.scf_worker)
    backend = PySCFBackend(SCF_OPTIONS)
    before = current_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    result = backend.run_scf(atoms)
    return {
        "atoms": len(atoms),
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "converged": result.converged,
        "peak_rss_mb": peak_rss_mb(),
        "peak_increase_mb": peak_rss_mb() - before,
    }


def exponent(records: list[dict], model: str, key: str, min_atoms: int = 100) -> float | None:
    """Slope of log(time) against log(atoms) over the records of >= ``min_atoms`` atoms."""
    chosen = [r for r in records if r["atoms"] >= min_atoms]
    if len(chosen) < 2:
        return None
    atoms = np.log([r["atoms"] for r in chosen])
    times = np.log([r[model][key] * r["atoms"] for r in chosen])
    return float(np.polyfit(atoms, times, 1)[0])


def largest_difference(first: Path, second: Path) -> dict[str, float]:
    """Largest absolute difference of every array two workers saved (features, vectors)."""
    with np.load(first) as one, np.load(second) as other:
        return {name: float(np.abs(one[name] - other[name]).max()) for name in one.files}


def exponents(records: list[dict], models: list[str]) -> dict:
    """Scaling exponents of wall (median and least) and CPU time per model."""
    return {
        name: {
            "wall": exponent(records, name, "ms_per_atom"),
            "min_wall": exponent(records, name, "min_ms_per_atom"),
            "cpu": exponent(records, name, "cpu_ms_per_atom"),
        }
        for name in models
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, nargs="+", default=list(MOLECULES))
    parser.add_argument("--scf-molecules", type=int, nargs="*", default=list(SCF_MOLECULES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="registered models")
    parser.add_argument("--threads", type=int, default=2, help="torch and PySCF threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="torch device of the current code")
    parser.add_argument("--baseline", type=Path, help="checkout of the code to compare with")
    parser.add_argument("--result", default="predict_scaling", help="result file name ('': none)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scf-worker", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args)))
        return
    if args.scf_worker is not None:
        print(json.dumps(scf_worker(args)))
        return

    from rhocore_pyscf.backend import PySCFBackend

    water = as_cluster(water_box(1))
    layout = PySCFBackend(SCF_OPTIONS).basis_layout(water)
    layout_json = json.dumps({str(z): list(c) for z, c in layout.nmax.items()})
    threads = ["--threads", str(args.threads)]
    ml = ["--layout", layout_json, "--models", *args.models, "--repeats", str(args.repeats)]
    codes = {"current": None} if args.baseline is None else {"baseline": args.baseline.resolve()}
    codes["current"] = None
    records: dict[str, list[dict]] = {code: [] for code in codes}
    differences = []
    with tempfile.TemporaryDirectory() as folder:
        boxes, clusters = {}, {}
        for n in tqdm(sorted(set(args.molecules) | set(args.scf_molecules)), desc="water boxes"):
            box = water_box(n)
            boxes[n], clusters[n] = Path(folder) / f"box_{n}.xyz", Path(folder) / f"cluster_{n}.xyz"
            ase.io.write(boxes[n], box)
            ase.io.write(clusters[n], as_cluster(box))
        for n in tqdm(args.molecules, desc="prediction (boxes)"):
            dumps = {}
            for code, path in codes.items():
                dumps[code] = Path(folder) / f"{code}_{n}.npz"
                device = ["--device", "cpu" if code == "baseline" else args.device]
                extra = threads + ml + device + ["--dump", str(dumps[code])]
                records[code].append(run_worker("--worker", boxes[n], extra, path))
            if args.baseline is not None:
                differences.append(
                    {"atoms": 3 * n, **largest_difference(dumps["baseline"], dumps["current"])}
                )
        scf = []
        for n in tqdm(args.scf_molecules, desc="SCF vs prediction (clusters)"):
            entry = run_worker("--scf-worker", clusters[n], threads)
            predicted = run_worker("--worker", clusters[n], threads + ml)
            for name in args.models:
                ml_ms = predicted[name]["total_ms"]
                entry[name] = {"ml_ms": ml_ms, "ml_over_scf": 1e-3 * ml_ms / entry["wall_s"]}
            scf.append(entry)
    result = {
        "models": args.models,
        "threads": args.threads,
        "repeats": args.repeats,
        "device": args.device,
        "descriptor": DESCRIPTOR,
        "layout": layout.nmax,
        "scf_options": SCF_OPTIONS,
        "cpu_count": os.cpu_count(),
        "boxes": records["current"],
        "exponent": exponents(records["current"], args.models),
        "scf_clusters": scf,
    }
    if args.baseline is not None:
        result["baseline"] = {
            "code": str(args.baseline),
            "boxes": records["baseline"],
            "exponent": exponents(records["baseline"], args.models),
        }
        result["speedup"] = [
            {
                "atoms": new["atoms"],
                **{
                    name: old[name]["ms_per_atom"] / new[name]["ms_per_atom"]
                    for name in args.models
                },
            }
            for old, new in zip(records["baseline"], records["current"], strict=True)
        ]
        result["largest_difference"] = differences
    if args.result:
        write_result(args.result, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
