"""``initial_guess(mol, model)``: a trained density model starts a PySCF SCF.

The model predicts the RI coefficients of the total density of ``mol``'s structure; the
Kohn-Sham Fock matrix of that density, diagonalised once (:mod:`rhocore_pyscf.guess.density`),
gives the density matrix handed to ``mf.kernel(dm0=...)``. The model must have been
trained on the ``density`` target of the ``pyscf`` backend; its backend options (orbital
basis, functional, charge) must match the calculation it starts unless ``strict=False``.
"""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
from pyscf import gto

from rhocore.api import ModelFile, RhocoreError, checked_prediction, load_model_file
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.guess.density import GuessOrbitals, guess_from_density
from rhocore_pyscf.molecular.molecules import PySCFBackendError, build_auxmol
from rhocore_pyscf.options import EVEN_TEMPERED, PySCFOptions

#: Targets whose field is the total electron density (the guess needs that field).
DENSITY_TARGETS = ("density",)


class GuessModelError(RhocoreError, ValueError):
    """A model that cannot give a guess for this molecule, and why."""


def atoms_of(mol: gto.Mole) -> ase.Atoms:
    """The ``ase.Atoms`` of a PySCF molecule (positions in angstrom, ghost atoms refused)."""
    symbols = [mol.atom_pure_symbol(i) for i in range(mol.natm)]
    if any(gto.charge(symbol) == 0 for symbol in symbols):
        raise GuessModelError("the molecule has ghost atoms; the density model knows none")
    return ase.Atoms(symbols, positions=mol.atom_coords(unit="Angstrom"))


def density_model_options(model: ModelFile, label: str) -> PySCFOptions:
    """The PySCF options of a model's training data; refuses other backends and fields."""
    metadata = model.dataset_metadata
    if metadata.backend_name != "pyscf":
        raise GuessModelError(
            f"{label} was trained on data of backend '{metadata.backend_name}'; a PySCF guess "
            "needs a model trained on the 'pyscf' backend"
        )
    if metadata.target_name not in DENSITY_TARGETS:
        raise GuessModelError(
            f"{label} predicts the '{metadata.target_name}' field; an SCF guess needs the "
            "total density: train on the 'density' target"
        )
    return PySCFOptions.model_validate(metadata.backend_options)


def _basis_name(mol: gto.Mole) -> str | None:
    return mol.basis.lower().replace("_", "-") if isinstance(mol.basis, str) else None


def check_compatible(
    mol: gto.Mole, options: PySCFOptions, xc: str, model: ModelFile, label: str, strict: bool
) -> None:
    """Refuse a molecule the model's density does not describe (elements always; orbital
    basis, functional and charge when ``strict``)."""
    species = set(model.layout.species)
    missing = sorted({int(z) for z in mol.atom_charges()} - species)
    if missing:
        raise GuessModelError(
            f"{label} knows the elements {sorted(species)}, not {missing} of this molecule"
        )
    basis = _basis_name(mol)
    if options.aux_basis == EVEN_TEMPERED and basis != options.basis.lower():
        raise GuessModelError(
            f"{label} fits densities on the even-tempered basis generated from "
            f"'{options.basis}'; the molecule's basis is {mol.basis!r}. Build the molecule "
            f"with basis='{options.basis}'"
        )
    if not strict:
        return
    mismatches = []
    if basis != options.basis.lower():
        mismatches.append(f"orbital basis {mol.basis!r} (model: '{options.basis}')")
    if xc.lower() != options.xc.lower():
        mismatches.append(f"functional '{xc}' (model: '{options.xc}')")
    if mol.charge != options.charge:
        mismatches.append(f"charge {mol.charge} (model: {options.charge})")
    if mismatches:
        raise GuessModelError(
            f"{label} was trained on another calculation than this one: "
            + "; ".join(mismatches)
            + ". Use a matching model, or pass strict=False to start from its density anyway"
        )


def guess_orbitals(
    mol: gto.Mole,
    coefficients: np.ndarray,
    options: PySCFOptions,
    *,
    xc: str | None = None,
    grid_level: int | None = None,
) -> GuessOrbitals:
    """The guess of canonical RI ``coefficients`` fitted with the backend ``options``."""
    formula = atoms_of(mol).get_chemical_formula()
    auxmol = build_auxmol(mol, options, formula)
    ao_map = aux_ao_map(auxmol)
    coefficients = np.asarray(coefficients, dtype=float)
    if coefficients.shape != (len(ao_map.order),):
        raise PySCFBackendError(
            f"{len(coefficients)} coefficients given for {formula}, whose auxiliary basis "
            f"'{options.aux_basis}' has {len(ao_map.order)} functions"
        )
    return guess_from_density(
        mol,
        auxmol,
        ao_map.from_canonical(coefficients),
        xc or options.xc,
        options.grid_level if grid_level is None else grid_level,
    )


def initial_guess(
    mol: gto.Mole,
    model: ModelFile | str | Path,
    *,
    xc: str | None = None,
    strict: bool = True,
    grid_level: int | None = None,
) -> np.ndarray:
    """Density matrix for ``mf.kernel(dm0=...)`` from the density ``model`` predicts.

    ``model`` is a run directory, a ``model.pt`` or a loaded :class:`ModelFile`; ``xc``
    the functional of the SCF to start (default: the model's), which builds the guess
    potential and must be LDA or GGA. Shape (n_ao, n_ao) for closed shells,
    (2, n_ao, n_ao) otherwise.
    """
    label = f"model '{model}'" if not isinstance(model, ModelFile) else "the model"
    model_file = model if isinstance(model, ModelFile) else load_model_file(Path(model))
    options = density_model_options(model_file, label)
    xc = xc or options.xc
    check_compatible(mol, options, xc, model_file, label, strict)
    atoms = atoms_of(mol)
    coefficients = checked_prediction(model_file, atoms, f"molecule {atoms.get_chemical_formula()}")
    return guess_orbitals(mol, coefficients, options, xc=xc, grid_level=grid_level).density_matrix
