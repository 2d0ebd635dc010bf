"""``initial_guess(mol, model)``: a trained density model starts a PySCF SCF.

The model predicts the RI coefficients of the total density of ``mol``'s structure; the
Kohn-Sham Fock matrix of that density, diagonalised once (:mod:`rhocore_pyscf.guess.density`),
gives the density matrix handed to ``mf.kernel(dm0=...)``. The model must have been
trained on the ``density`` target of the ``pyscf`` backend; its backend options (orbital
basis, functional) and the net charges of its training structures must cover the
calculation it starts unless ``strict=False``. Without a model, the pretrained one is used.
"""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
from ase.data import chemical_symbols
from pyscf import df, gto
from pyscf.scf.hf import SCF
from pyscf.scf.uhf import UHF

from rhocore.api import ModelFile, RhocoreError, checked_prediction, load_model_file
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.guess.density import GuessOrbitals, guess_from_density
from rhocore_pyscf.guess.pretrained import PRETRAINED_LABEL, pretrained_model_path
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


def _symbols(numbers: list[int]) -> str:
    return ", ".join(chemical_symbols[z] for z in numbers)


def covered_charges(model: ModelFile, options: PySCFOptions) -> list[int]:
    """Net charges of the model's training structures (each structure's own, recorded in the
    model file), else the backend option ``charge`` of a model file without that record."""
    return model.net_charges if model.net_charges is not None else [options.charge]


def check_compatible(
    mol: gto.Mole, options: PySCFOptions, xc: str, model: ModelFile, label: str, strict: bool
) -> None:
    """Refuse a molecule the model's density does not describe, in one line naming every
    gap: elements (and the orbital basis of an even-tempered auxiliary basis) always;
    orbital basis, functional and charge when ``strict``."""
    species = sorted(model.layout.species)
    missing = sorted({int(z) for z in mol.atom_charges()} - set(species))
    gaps = [f"elements {_symbols(missing)} (model: {_symbols(species)})"] if missing else []
    basis = _basis_name(mol)
    if options.aux_basis == EVEN_TEMPERED and basis != options.basis.lower():
        gaps.append(
            f"orbital basis {mol.basis!r} (model: '{options.basis}', which generates its "
            "even-tempered auxiliary basis)"
        )
    hard = len(gaps)
    if strict:
        if basis != options.basis.lower() and options.aux_basis != EVEN_TEMPERED:
            gaps.append(f"orbital basis {mol.basis!r} (model: '{options.basis}')")
        if xc.lower() != options.xc.lower():
            gaps.append(f"functional '{xc}' (model: '{options.xc}')")
        charges = covered_charges(model, options)
        if mol.charge not in charges:
            gaps.append(f"charge {mol.charge} (model: {', '.join(map(str, charges))})")
    if gaps:
        advice = (
            "Use a model trained on them"
            if hard
            else "Use a matching model, or pass strict=False to start from its density anyway"
        )
        raise GuessModelError(
            f"{label} does not cover this calculation: {'; '.join(gaps)}. {advice}"
        )


def guess_orbitals(
    mol: gto.Mole,
    coefficients: np.ndarray,
    options: PySCFOptions,
    *,
    xc: str | None = None,
    grid_level: int | None = None,
    scf: SCF | None = None,
) -> GuessOrbitals:
    """The guess of canonical RI ``coefficients`` fitted with the backend ``options``.

    With ``scf`` (the SCF the guess starts) and no ``grid_level``, the density is evaluated
    on the SCF's own grid, and a density-fitted SCF lends its three-centre tensors to J:
    the SCF reuses both, so the guess costs little beyond them.
    """
    formula = atoms_of(mol).get_chemical_formula()
    auxmol = build_auxmol(mol, options, formula)
    ao_map = aux_ao_map(auxmol)
    coefficients = np.asarray(coefficients, dtype=float)
    if coefficients.shape != (len(ao_map.order),):
        raise PySCFBackendError(
            f"{len(coefficients)} coefficients given for {formula}, whose auxiliary basis "
            f"'{options.aux_basis}' has {len(ao_map.order)} functions"
        )
    reuse_grid = scf is not None and grid_level is None and hasattr(scf, "grids")
    return guess_from_density(
        mol,
        auxmol,
        ao_map.from_canonical(coefficients),
        xc or options.xc,
        options.grid_level if grid_level is None else grid_level,
        grids=scf.grids if reuse_grid else None,
        with_df=shared_density_fit(scf),
    )


def shared_density_fit(scf: SCF | None) -> df.DF | None:
    """``scf``'s molecular density fitting (on any auxiliary basis), else None."""
    with_df = getattr(scf, "with_df", None)
    return with_df if isinstance(with_df, df.DF) else None


def initial_guess(
    mol: gto.Mole | SCF,
    model: ModelFile | str | Path | None = None,
    *,
    xc: str | None = None,
    strict: bool = True,
    grid_level: int | None = None,
) -> np.ndarray:
    """Density matrix for ``mf.kernel(dm0=...)`` from the density ``model`` predicts.

    ``mol`` is the molecule, or better the SCF object ``mf`` itself: then the guess reuses
    its grid and, for ``mf.density_fit()``, its three-centre tensors, and has the shape
    ``mf`` takes. ``model`` is a run directory, a ``model.pt`` or a loaded
    :class:`ModelFile`; None means the pretrained PBE/def2-SVP density model
    (:func:`~rhocore_pyscf.guess.pretrained.pretrained_model_path`). ``xc`` is the
    functional of the guess potential (default: the SCF's, else the model's), which must be
    LDA or GGA. Shape (n_ao, n_ao) for a restricted closed shell, (2, n_ao, n_ao) otherwise.
    """
    scf = mol if isinstance(mol, SCF) else None
    mol = scf.mol if scf is not None else mol
    if model is None:
        label, model = PRETRAINED_LABEL, pretrained_model_path()
    else:
        label = f"model '{model}'" if not isinstance(model, ModelFile) else "the model"
    model_file = model if isinstance(model, ModelFile) else load_model_file(Path(model))
    options = density_model_options(model_file, label)
    xc = xc or getattr(scf, "xc", None) or options.xc
    check_compatible(mol, options, xc, model_file, label, strict)
    atoms = atoms_of(mol)
    coefficients = checked_prediction(model_file, atoms, f"molecule {atoms.get_chemical_formula()}")
    guess = guess_orbitals(mol, coefficients, options, xc=xc, grid_level=grid_level, scf=scf)
    density = guess.density_matrix
    if scf is not None and isinstance(scf, UHF) and density.ndim == 2:
        density = np.array([0.5 * density, 0.5 * density])
    return density
