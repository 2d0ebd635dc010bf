"""Cost of the periodic ``pyscf`` backend on Si(001) slabs: SCF and RI-fit time, memory.

Bulk-terminated Si(001) slabs (no 2x1 reconstruction) of 2x1 surface cells (``--surface``),
the bottom passivated with two H per Si along the missing bonds, ~10 angstrom of vacuum
along z; Gamma-point PBE with GTH pseudopotentials, 0.2 eV Fermi-Dirac smearing (the clean
top is metallic; with 0.1 eV the 6-layer gth-dzvp SCF misses conv_tol 1e-8 in PySCF's final
check), an even-tempered auxiliary basis and the overlap metric. Every case runs in its own
process so that its peak memory is its own; one JSON object per case goes to standard
output, so sizes that fit a 2-core machine can be chosen from it.

    python benchmarks/pyscf_periodic_cost.py --layers 4 6 8 --surface 2 1 --basis gth-szv
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import ase
import numpy as np
from ase.build import diamond100
from ase.neighborlist import neighbor_list

#: Si lattice constant (angstrom) and Si-H bond length (angstrom).
SI_LATTICE = 5.431
SI_H_BOND = 1.48


def silicon_slab(layers: int, size: tuple[int, int] = (2, 1), vacuum: float = 10.0) -> ase.Atoms:
    """Si(001) slab of ``layers`` Si layers with an H-passivated bottom (pbc along x, y).

    Built one layer thicker; the bottom layer is then replaced by H atoms on the bonds the
    lowest remaining Si atoms had to it. This unrelaxed dihydride puts neighbouring H 1.42
    angstrom apart (the known clash of the ideal (1x1) dihydride): fine for cost, not
    for physics.
    """
    full = diamond100("Si", size=(*size, layers + 1), a=SI_LATTICE, orthogonal=True)
    full.pbc = [True, True, False]
    height = full.positions[:, 2]
    removed = height < height.min() + 0.1
    lowest = np.abs(height - height[~removed].min()) < 0.1
    first, second, bonds = neighbor_list("ijD", full, 0.5 * SI_LATTICE)
    missing = lowest[first] & removed[second]
    hydrogens = [
        full.positions[i] + SI_H_BOND * bond / np.linalg.norm(bond)
        for i, bond in zip(first[missing], bonds[missing], strict=True)
    ]
    slab = full[~removed] + ase.Atoms(f"H{len(hydrogens)}", positions=hydrogens)
    slab.center(vacuum=vacuum / 2, axis=2)
    slab.pbc = [True, True, False]
    return slab


def backend_options(basis: str, ke_cutoff: float) -> dict:
    """Gamma-point PBE/GTH settings of the benchmark."""
    return {
        "basis": basis,
        "pseudo": "gth-pbe",
        "aux_basis": "even-tempered",
        "metric": "overlap",
        "ke_cutoff": ke_cutoff,
        "smearing": 0.2,
        "conv_tol": 1e-8,
    }


def measure(layers: int, surface: list[int], basis: str, ke_cutoff: float) -> dict:
    """SCF (with the vacuum level), total-density fit and their cost for one slab."""
    from rhocore_pyscf import PySCFBackend

    from rhocore.testing.backends import density_weights

    atoms = silicon_slab(layers, tuple(surface))
    backend = PySCFBackend(backend_options(basis, ke_cutoff))
    start = time.perf_counter()
    scf = backend.run_scf(atoms)
    scf_s = time.perf_counter() - start
    state = scf.state
    start = time.perf_counter()
    fit = backend.fit(scf, density_weights(scf.orbitals))
    fit_s = time.perf_counter() - start
    return {
        "formula": atoms.get_chemical_formula(),
        "layers": layers,
        "surface_cells": surface,
        "basis": basis,
        "ke_cutoff_hartree": ke_cutoff,
        "mesh": [int(n) for n in state.cell.mesh],
        "n_orbitals": int(state.cell.nao),
        "n_aux": int(fit.coefficients.size),
        "converged": scf.converged,
        "scf_s": round(scf_s, 2),
        "fit_s": round(fit_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "n_electrons": scf.orbitals.n_electrons,
        "fitted_electrons": round(fit.fitted_integral, 5),
        "fermi_level_ev": round(scf.orbitals.fermi_level, 4),
        "vacuum_level_ev": round(scf.orbitals.vacuum_level, 4),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }


def main() -> None:
    """Run every (layers, basis) case in a child process and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 6])
    parser.add_argument("--surface", type=int, nargs=2, default=[2, 1], help="(1x1) cells")
    parser.add_argument("--basis", nargs="+", default=["gth-szv", "gth-dzvp"])
    parser.add_argument("--ke-cutoff", type=float, default=100.0, help="hartree")
    parser.add_argument("--threads", type=int, default=2, help="OpenMP threads per case")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))), flush=True)
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for basis in args.basis:
        for layers in args.layers:
            case = json.dumps(
                {
                    "layers": layers,
                    "surface": args.surface,
                    "basis": basis,
                    "ke_cutoff": args.ke_cutoff,
                }
            )
            subprocess.run([sys.executable, __file__, "--one", case], env=env, check=True)


if __name__ == "__main__":
    main()
