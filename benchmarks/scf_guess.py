"""SCF initial guesses compared in one run: PySCF's, the ML density guess and the oracle.

Every guess starts the same SCF (PBE/def2-SVP, ``conv_tol`` 1e-9 hartree, grid level 3,
PySCF's default DIIS, ``max_cycle`` 100), one molecule after another in the same process:

* PySCF's ``minao``, ``atom``, ``huckel``, ``mod_huckel``, ``sap`` and ``vsap``
  (``mf.get_init_guess(key=...)``);
* ``ml``: :func:`rhocore_pyscf.initial_guess` of ``--model`` with the SCF object itself
  (prediction, J and V_xc of the predicted density on the SCF's own grid and, for a model
  on the density-fitting basis, from the SCF's own three-centre tensors; one
  diagonalisation);
* ``oracle``: the RI fit of the converged density (Coulomb metric, ``d = J^-1 (P|rho)``
  with the electron count imposed by a Lagrange multiplier, as rhocore's fits do) on
  ``def2-universal-jkfit``, put through the same route
  (:func:`rhocore_pyscf.guess.density.guess_from_density` with the SCF's ``grids`` and
  ``with_df``): the limit any density model on that basis can reach.

Every guess's density matrix is then passed as ``dm0`` to the same ``mf.kernel`` call.

Main table: density fitting on ``def2-universal-jkfit`` (``mf.density_fit``), as PySCF
users run for speed. ``--no-density-fit``: the smaller table with exact J (no density
fitting in the SCF; the ML and oracle guesses then build their three-centre integrals
themselves, inside their timed guess).

What is measured, per molecule and guess:

``cycles``
    PySCF's ``mf.cycles`` (DIIS iterations of the loop).
``scf_fock_builds``
    Calls of ``mf.get_veff`` inside ``mf.kernel``, counted by a wrapper: the initial one on
    ``dm0``, one per cycle, and the extra convergence-check cycle PySCF does after
    convergence (``cycles + 2`` for a converged run, ``cycles + 1`` otherwise).
``guess_cost_iterations``
    Wall time of building the guess divided by the wall time of one SCF iteration of that
    molecule (ERIC-like: the guess's cost in SCF iterations). One SCF iteration is the
    median interval between consecutive ``callback`` calls (one full cycle: Fock matrix,
    DIIS, diagonalisation, density, ``get_veff``) of the molecule's ``minao`` run. An
    explicitly timed ``get_veff`` + Fock + diagonalisation on the converged density is
    recorded as a check (``fock_build_seconds``).
``fock_builds``
    ``scf_fock_builds + guess_cost_iterations``.
``wall_seconds``
    ``guess_seconds + kernel_seconds``. Loading the model (and its first, warm-up
    prediction) is reported once, separately (``model_load_seconds``).

Set-up shared fairly: the DFT grid (``with_non0tab``) and, with density fitting, the
Cholesky-decomposed three-centre tensors are built once per molecule *before anything
is timed* and handed to every guess's SCF object (``setup_seconds``, reported
separately). Without that the PySCF guesses would pay for them inside ``kernel`` and the
ML and oracle guesses inside the guess.

Energies: the ``minao`` run is the reference (its converged density is the oracle's
input, cached); every run reports ``energy_difference`` to it and is flagged when it
exceeds 1e-6 hartree. Runs that did not converge are counted and kept.

Molecules come from an extxyz file (``atoms.info['charge']`` the net charge, default 0);
spin from electron parity: odd-electron molecules are skipped with a note. The first
``--all-guesses-subset`` molecules run all six PySCF guesses; the best of them by mean
``fock_builds`` on that subset then runs, with ``minao``, ``ml`` and ``oracle``, on the
rest. Each molecule's rows are cached as ``--out/<setting>/<index>.json`` (with the
reference fit as ``<index>-reference.npz``) after every guess, so a killed run resumes
where it stopped. The summary (per molecule, per size bin 20-30, 31-40, 41-60 atoms and
all) is written by :func:`provenance.write_result` to ``benchmarks/results/<name>.json``.

    OMP_NUM_THREADS=2 python benchmarks/scf_guess.py molecules.xyz --model runs/density \\
        --name scf_guess --out build/scf_guess
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np
import scipy.linalg
from pyscf import df, dft, gto
from rhocore_pyscf import initial_guess
from rhocore_pyscf.guess.density import guess_from_density
from rhocore_pyscf.molecular.properties import basis_integrals
from rhocore_pyscf.rifit import METRIC_INTEGRALS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write_result  # noqa: E402

from rhocore.api import RhocoreError, checked_prediction, load_model_file  # noqa: E402
from rhocore.qc.rifit import solve_fit  # noqa: E402

PYSCF_GUESSES = ("minao", "atom", "huckel", "mod_huckel", "sap", "vsap")
ALL_GUESSES = (*PYSCF_GUESSES, "ml", "oracle")
SETTINGS = {
    "xc": "pbe",
    "basis": "def2-svp",
    "conv_tol": 1e-9,
    "grid_level": 3,
    "max_cycle": 100,
    "diis": "PySCF default (CDIIS, space 8)",
    "aux_basis": "def2-universal-jkfit",
}
ENERGY_TOLERANCE = 1e-6
SIZE_BINS = {"20-30": (20, 30), "31-40": (31, 40), "41-60": (41, 60)}
#: Largest accepted condition number of the Coulomb metric of the oracle's fit.
CONDITION_LIMIT = 1e16
#: Memory for one block of three-centre integrals of the oracle's fit (bytes).
BLOCK_BYTES = 2e8


def molecule(atoms: ase.Atoms, basis: str) -> gto.Mole:
    """The PySCF molecule of ``atoms`` (charge from ``atoms.info['charge']``), closed shell."""
    return gto.M(
        atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True)),
        unit="Angstrom",
        basis=basis,
        charge=int(atoms.info.get("charge", 0)),
        spin=0,
        verbose=0,
    )


def electron_count(atoms: ase.Atoms) -> int:
    return int(atoms.get_atomic_numbers().sum()) - int(atoms.info.get("charge", 0))


class Setup:
    """One molecule's grid and density fitting, built once, before anything is timed."""

    def __init__(self, mol: gto.Mole, density_fit: bool):
        self.mol = mol
        self.density_fit = density_fit
        start = time.perf_counter()
        self.grids = dft.gen_grid.Grids(mol)
        self.grids.level = SETTINGS["grid_level"]
        self.grids.build(with_non0tab=True)
        self.grid_seconds = time.perf_counter() - start
        self.with_df = None
        self.density_fit_seconds = 0.0
        if density_fit:
            start = time.perf_counter()
            self.with_df = df.DF(mol, auxbasis=SETTINGS["aux_basis"])
            self.with_df.build()
            self.density_fit_seconds = time.perf_counter() - start

    def solver(self) -> dft.rks.RKS:
        """A fresh RKS on the shared grid (and density fitting), counting its Fock builds."""
        mf = dft.RKS(self.mol)
        mf.xc = SETTINGS["xc"]
        mf.conv_tol = SETTINGS["conv_tol"]
        mf.max_cycle = SETTINGS["max_cycle"]
        if self.density_fit:
            mf = mf.density_fit(auxbasis=SETTINGS["aux_basis"])
            mf.with_df = self.with_df
        mf.grids = self.grids
        mf.fock_builds = 0
        mf.cycle_times = []
        get_veff = mf.get_veff

        def counted(*args, **kwargs):
            mf.fock_builds += 1
            return get_veff(*args, **kwargs)

        mf.get_veff = counted
        mf.callback = lambda envs: mf.cycle_times.append(time.perf_counter())
        return mf

    def auxmol(self) -> gto.Mole:
        if self.with_df is not None:
            return self.with_df.auxmol
        return df.addons.make_auxmol(self.mol, SETTINGS["aux_basis"])


def run_kernel(mf: dft.rks.RKS, dm0: np.ndarray, guess_seconds: float) -> dict[str, Any]:
    """``mf.kernel(dm0=dm0)``: cycles, Fock builds, seconds, energy, convergence."""
    start = time.perf_counter()
    mf.kernel(dm0=dm0)
    kernel_seconds = time.perf_counter() - start
    intervals = np.diff(mf.cycle_times)
    return {
        "cycles": int(mf.cycles),
        "scf_fock_builds": int(mf.fock_builds),
        "guess_seconds": guess_seconds,
        "kernel_seconds": kernel_seconds,
        "wall_seconds": guess_seconds + kernel_seconds,
        "median_cycle_seconds": float(np.median(intervals)) if len(intervals) else None,
        "energy": float(mf.e_tot),
        "converged": bool(mf.converged),
    }


def fit_density(mol: gto.Mole, auxmol: gto.Mole, density_matrix: np.ndarray) -> np.ndarray:
    """Coulomb-metric RI coefficients of ``density_matrix`` with the electron count imposed.

    ``(P|rho)`` is accumulated over blocks of auxiliary shells (at most ``BLOCK_BYTES`` of
    three-centre integrals at a time), then ``rhocore.qc.rifit.solve_fit``.
    """
    metric_name, three_centre_name = METRIC_INTEGRALS["coulomb"]
    packed = density_matrix * 2.0
    packed[np.diag_indices_from(packed)] *= 0.5
    packed = packed[np.tril_indices(mol.nao_nr())]
    ao_loc = auxmol.ao_loc_nr()
    per_function = 8 * len(packed)
    projections = np.empty(auxmol.nao_nr())
    start = 0
    while start < auxmol.nbas:
        stop = start + 1
        while (
            stop < auxmol.nbas and (ao_loc[stop + 1] - ao_loc[start]) * per_function < BLOCK_BYTES
        ):
            stop += 1
        block = df.incore.aux_e2(
            mol,
            auxmol,
            three_centre_name,
            aosym="s2ij",
            shls_slice=(0, mol.nbas, 0, mol.nbas, start, stop),
        )
        projections[ao_loc[start] : ao_loc[stop]] = packed @ block
        start = stop
    return solve_fit(
        auxmol.intor(metric_name, hermi=1),
        projections,
        basis_integrals(auxmol),
        n_electrons=float(mol.nelectron),
        condition_limit=CONDITION_LIMIT,
    )


def fock_build_seconds(mf: dft.rks.RKS, density_matrix: np.ndarray) -> float:
    """One full ``get_veff`` + Fock matrix + diagonalisation (after the SCF's warm-up)."""
    start = time.perf_counter()
    veff = type(mf).get_veff(mf, mf.mol, density_matrix)  # not the counting wrapper
    fock = mf.get_hcore() + veff
    scipy.linalg.eigh(fock, mf.get_ovlp())
    return time.perf_counter() - start


class MoleculeCache:
    """Rows of one molecule and setting, written after every guess (resume after a kill)."""

    def __init__(self, folder: Path, index: int):
        self.path = folder / f"{index:05d}.json"
        self.reference_path = folder / f"{index:05d}-reference.npz"
        self.data: dict[str, Any] = (
            json.loads(self.path.read_text()) if self.path.exists() else {"runs": {}}
        )

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1))
        temporary.replace(self.path)


def run_molecule(
    index: int,
    atoms: ase.Atoms,
    guesses: list[str],
    model: Any,
    cache: MoleculeCache,
    density_fit: bool,
) -> dict[str, Any]:
    """Every guess in ``guesses`` on one molecule (the cached ones skipped)."""
    data = cache.data
    data.update(
        index=index,
        formula=atoms.get_chemical_formula(),
        n_atoms=len(atoms),
        charge=int(atoms.info.get("charge", 0)),
    )
    todo = [name for name in guesses if name not in data["runs"]]
    if "minao" not in data["runs"] and "minao" not in todo:
        todo.insert(0, "minao")
    if not todo:
        return data
    mol = molecule(atoms, SETTINGS["basis"])
    setup = Setup(mol, density_fit)
    data["n_ao"] = int(mol.nao_nr())
    data["setup_seconds"] = {
        "grid": setup.grid_seconds,
        "density_fit": setup.density_fit_seconds,
    }
    todo.sort(key=lambda name: name != "minao")  # the reference first
    for name in todo:
        mf = setup.solver()
        start = time.perf_counter()
        if name in PYSCF_GUESSES:
            dm0 = mf.get_init_guess(key=name)
        elif name == "ml":
            if model is None:
                continue
            try:
                dm0 = initial_guess(mf, model)
            except (RhocoreError, ValueError) as error:
                data["runs"][name] = {"error": str(error)}
                cache.save()
                continue
        else:  # oracle
            coefficients = np.load(cache.reference_path)["coefficients"]
            dm0 = guess_from_density(
                mol,
                setup.auxmol(),
                coefficients,
                SETTINGS["xc"],
                SETTINGS["grid_level"],
                grids=mf.grids,
                with_df=setup.with_df,
            ).density_matrix
        row = run_kernel(mf, dm0, time.perf_counter() - start)
        if name == "minao":
            dm = mf.make_rdm1()
            data["iteration_seconds"] = row["median_cycle_seconds"]
            data["fock_build_seconds"] = fock_build_seconds(mf, dm)
            data["reference_energy"] = row["energy"]
            data["reference_converged"] = row["converged"]
            start = time.perf_counter()
            coefficients = fit_density(mol, setup.auxmol(), dm)
            data["oracle_fit_seconds"] = time.perf_counter() - start
            np.savez(cache.reference_path, coefficients=coefficients)
        data["runs"][name] = row
        cache.save()
    return data


def accounted(data: dict[str, Any]) -> dict[str, Any]:
    """Each run with its energy difference and guess cost in SCF iterations."""
    rows = {}
    iteration = data.get("iteration_seconds")
    for name, run in data["runs"].items():
        if "error" in run:
            rows[name] = run
            continue
        cost = run["guess_seconds"] / iteration if iteration else float("nan")
        difference = run["energy"] - data["reference_energy"]
        rows[name] = {
            **run,
            "guess_cost_iterations": cost,
            "fock_builds": run["scf_fock_builds"] + cost,
            "energy_difference": difference,
            "energy_flagged": bool(abs(difference) > ENERGY_TOLERANCE),
        }
    return rows


def mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(molecules: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Means of each guess over the molecules where it ran (and over the common ones)."""
    per_guess = {}
    for name in names:
        runs = [
            m["runs"][name] for m in molecules if "error" not in m["runs"].get(name, {"error": 1})
        ]
        if not runs:
            continue
        per_guess[name] = {
            "n_molecules": len(runs),
            "mean_cycles": mean([r["cycles"] for r in runs]),
            "mean_scf_fock_builds": mean([r["scf_fock_builds"] for r in runs]),
            "mean_guess_cost_iterations": mean([r["guess_cost_iterations"] for r in runs]),
            "mean_fock_builds": mean([r["fock_builds"] for r in runs]),
            "mean_guess_seconds": mean([r["guess_seconds"] for r in runs]),
            "mean_wall_seconds": mean([r["wall_seconds"] for r in runs]),
            "not_converged": sum(not r["converged"] for r in runs),
            "max_abs_energy_difference": max(abs(r["energy_difference"]) for r in runs),
            "energy_flagged": sum(r["energy_flagged"] for r in runs),
        }
    return per_guess


def comparisons(molecules: list[dict[str, Any]], best: str | None) -> dict[str, Any]:
    """Reductions of ML and oracle against ``best`` and ``minao``, on the molecules where all
    four ran without error: Fock builds (guess included) and wall time."""
    compared = [n for n in dict.fromkeys(("minao", best, "ml", "oracle")) if n]
    common = [m for m in molecules if all("fock_builds" in m["runs"].get(n, {}) for n in compared)]
    result: dict[str, Any] = {"compared": compared, "n_molecules": len(common)}
    if not common or best is None:
        return result

    def total(name: str, key: str) -> float:
        return float(np.mean([m["runs"][name][key] for m in common]))

    for baseline in dict.fromkeys(("minao", best)):
        for name in ("ml", "oracle"):
            if name not in compared:
                continue
            result[f"{name}_fewer_fock_builds_percent_vs_{baseline}"] = 100 * (
                1 - total(name, "fock_builds") / total(baseline, "fock_builds")
            )
            result[f"{name}_wall_speedup_vs_{baseline}"] = total(baseline, "wall_seconds") / total(
                name, "wall_seconds"
            )
    if "ml" in compared:
        gap = total(best, "fock_builds") - total("oracle", "fock_builds")
        result["ml_fraction_of_oracle_reduction"] = (
            (total(best, "fock_builds") - total("ml", "fock_builds")) / gap if gap else None
        )
    return result


def best_guess(molecules: list[dict[str, Any]]) -> tuple[str | None, dict[str, float]]:
    """The PySCF guess with the fewest mean Fock builds (guess included) on the molecules
    that ran all the PySCF guesses that ran anywhere."""
    ran = [n for n in PYSCF_GUESSES if any(n in m["runs"] for m in molecules)]
    subset = [m for m in molecules if all("fock_builds" in m["runs"].get(n, {}) for n in ran)]
    means = {n: float(np.mean([m["runs"][n]["fock_builds"] for m in subset])) for n in ran}
    return (min(means, key=means.get) if subset else None), means


def table(summaries: dict[str, dict[str, Any]]) -> str:
    """A compact text table: one block per size bin, one line per guess."""
    lines = [
        f"{'bin':6} {'guess':10} {'n':>3} {'cycles':>6} {'scfFock':>7} {'guessIt':>7} "
        f"{'Fock':>6} {'guess s':>8} {'wall s':>8} {'noconv':>6} {'max|dE|':>8}"
    ]
    for bin_name, per_guess in summaries.items():
        for name, s in per_guess.items():
            lines.append(
                f"{bin_name:6} {name:10} {s['n_molecules']:3d} {s['mean_cycles']:6.2f} "
                f"{s['mean_scf_fock_builds']:7.2f} {s['mean_guess_cost_iterations']:7.2f} "
                f"{s['mean_fock_builds']:6.2f} {s['mean_guess_seconds']:8.3f} "
                f"{s['mean_wall_seconds']:8.3f} {s['not_converged']:6d} "
                f"{s['max_abs_energy_difference']:8.1e}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("structures", type=Path, help="extxyz file of molecules")
    parser.add_argument("--model", type=Path, help="run directory or model.pt (ML column)")
    parser.add_argument(
        "--guesses",
        default=",".join(ALL_GUESSES),
        help=f"comma-separated subset of {','.join(ALL_GUESSES)}",
    )
    parser.add_argument(
        "--all-guesses-subset",
        type=int,
        default=5,
        help="the first N molecules run all PySCF guesses; the rest minao and the best",
    )
    parser.add_argument("--no-density-fit", action="store_true", help="exact J (smaller table)")
    parser.add_argument("--limit", type=int, help="only the first N molecules of the file")
    parser.add_argument("--name", help="result file benchmarks/results/<name>.json")
    parser.add_argument("--out", type=Path, default=Path("build/scf_guess"), help="caches")
    parser.add_argument(
        "--results", type=Path, help="folder of the result (default benchmarks/results)"
    )
    args = parser.parse_args()
    guesses = [g.strip() for g in args.guesses.split(",") if g.strip()]
    unknown = sorted(set(guesses) - set(ALL_GUESSES))
    if unknown:
        parser.error(f"unknown guesses {unknown}")
    if args.model is None:
        guesses = [g for g in guesses if g != "ml"]
    setting = "nodf" if args.no_density_fit else "df"
    name = args.name or f"scf_guess_{setting}"
    folder = args.out / name / setting
    folder.mkdir(parents=True, exist_ok=True)

    model = None
    model_load_seconds = None
    frames = ase.io.read(args.structures, index=":")
    if args.limit is not None:
        frames = frames[: args.limit]
    if args.model is not None:
        start = time.perf_counter()
        model = load_model_file(args.model)
        try:  # the first prediction compiles the model: count it as loading
            checked_prediction(model, frames[0], "warm-up")
        except RhocoreError:
            pass
        model_load_seconds = time.perf_counter() - start

    skipped = []
    molecules = []
    best = None
    for index, atoms in enumerate(frames):
        if electron_count(atoms) % 2:
            skipped.append(
                {
                    "index": index,
                    "formula": atoms.get_chemical_formula(),
                    "reason": "odd electron count (open shell): skipped",
                }
            )
            print(f"[{index}] {atoms.get_chemical_formula()}: odd electron count, skipped")
            continue
        if index < args.all_guesses_subset:
            todo = guesses
        else:
            if best is None:
                best, _ = best_guess(molecules)
            todo = [g for g in guesses if g not in PYSCF_GUESSES or g in ("minao", best)]
        start = time.perf_counter()
        data = run_molecule(
            index, atoms, todo, model, MoleculeCache(folder, index), not args.no_density_fit
        )
        data["runs"] = accounted(data)
        molecules.append(data)
        done = {
            n: f"{r['cycles']}c/{r['fock_builds']:.1f}F"
            for n, r in data["runs"].items()
            if "cycles" in r
        }
        print(
            f"[{index}] {data['formula']} ({data['n_atoms']} atoms) "
            f"{time.perf_counter() - start:.1f} s: {done}",
            flush=True,
        )

    best, best_means = best_guess(molecules)
    names = [g for g in ALL_GUESSES if any(g in m["runs"] for m in molecules)]
    bins = {"all": molecules}
    for bin_name, (low, high) in SIZE_BINS.items():
        members = [m for m in molecules if low <= m["n_atoms"] <= high]
        if members:
            bins[bin_name] = members
    summaries = {b: summarise(members, names) for b, members in bins.items()}
    result = {
        "settings": {
            **SETTINGS,
            "density_fit": not args.no_density_fit,
            "structures": str(args.structures),
            "model": str(args.model) if args.model else None,
            "guesses": guesses,
            "all_guesses_subset": args.all_guesses_subset,
            "energy_tolerance_hartree": ENERGY_TOLERANCE,
        },
        "definitions": {
            "cycles": "PySCF mf.cycles",
            "scf_fock_builds": "mf.get_veff calls inside mf.kernel: initial one on dm0, one "
            "per cycle, and the extra convergence-check cycle",
            "iteration_seconds": "median interval between consecutive callbacks of the "
            "molecule's minao run (one SCF cycle)",
            "guess_cost_iterations": "guess_seconds / iteration_seconds",
            "fock_builds": "scf_fock_builds + guess_cost_iterations",
            "wall_seconds": "guess_seconds + kernel_seconds (grid and density-fitting "
            "tensors built beforehand for every guess: setup_seconds; model loading and "
            "warm-up prediction: model_load_seconds)",
            "energy_difference": "e_tot - e_tot of the minao run (reference), hartree",
            "oracle": "Coulomb-metric RI fit of the minao run's converged density on "
            "def2-universal-jkfit, electron count imposed, through guess_from_density "
            "with the SCF's grids and with_df",
        },
        "model_load_seconds": model_load_seconds,
        "best_pyscf_guess": best,
        "best_pyscf_guess_mean_fock_builds": best_means,
        "skipped": skipped,
        "comparisons": {b: comparisons(members, best) for b, members in bins.items()},
        "summary": summaries,
        "molecules": molecules,
    }
    path = write_result(name, result, **({"folder": args.results} if args.results else {}))
    print(table(summaries))
    print(f"best PySCF guess: {best}")
    print(json.dumps(result["comparisons"], indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
