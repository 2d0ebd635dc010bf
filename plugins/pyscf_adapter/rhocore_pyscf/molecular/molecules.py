"""PySCF molecules (orbital and auxiliary basis) of an ``ase.Atoms``, with user-facing errors."""

from __future__ import annotations

import ase
import numpy as np
from pyscf import gto
from pyscf.df import addons

from rhocore.api import RhocoreError
from rhocore_pyscf.even_tempered import even_tempered_basis
from rhocore_pyscf.options import EVEN_TEMPERED, PySCFOptions


class PySCFBackendError(RhocoreError, RuntimeError):
    """A structure the PySCF backend cannot handle with the given options."""


def build_mol(atoms: ase.Atoms, options: PySCFOptions, *, for_scf: bool = True) -> gto.Mole:
    """The PySCF molecule of ``atoms`` (positions in angstrom) in the orbital basis.

    With ``for_scf=False`` the molecule is neutral with the lowest spin: integrals and
    field evaluation do not depend on charge and spin, and a field stored without its SCF
    settings must still be evaluable.
    """
    formula = atoms.get_chemical_formula()
    if np.any(atoms.pbc):
        raise PySCFBackendError(
            f"structure {formula} is periodic (pbc={list(atoms.pbc)}); the pyscf backend "
            "handles molecules only. Set pbc=False for a cluster, or use a periodic backend."
        )
    charge, spin = (structure_charge(atoms, options), options.spin) if for_scf else (0, None)
    try:
        return gto.M(
            atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True)),
            unit="Angstrom",
            basis=options.basis,
            charge=charge,
            spin=spin,
            cart=False,
            verbose=0,
        )
    except gto.basis.BasisNotFoundError as error:
        raise PySCFBackendError(
            f"structure {formula}: the orbital basis '{options.basis}' does not cover every "
            f"element ({error}). Choose a basis (backend option 'basis') that does."
        ) from None
    except RuntimeError as error:
        reason = " ".join(str(error).split())
        raise PySCFBackendError(
            f"structure {formula}: PySCF cannot build the molecule with charge={charge}, "
            f"spin={spin} ({reason}). Check the backend options 'charge' and 'spin' (2S, the "
            "number of unpaired electrons)."
        ) from None


def structure_charge(atoms: ase.Atoms, options: PySCFOptions) -> int:
    """The net charge of ``atoms``: its own ``info['charge']`` if set, else the option's."""
    charge = atoms.info.get("charge", options.charge)
    if float(charge) != int(charge):
        raise PySCFBackendError(
            f"structure {atoms.get_chemical_formula()}: info['charge'] = {charge} is not an "
            "integer number of elementary charges"
        )
    return int(charge)


def build_auxmol(mol: gto.Mole, options: PySCFOptions, formula: str) -> gto.Mole:
    """The molecule of ``mol`` with the auxiliary (RI) basis of ``options`` as its AOs."""
    if options.aux_basis == EVEN_TEMPERED:
        basis = even_tempered_basis(mol, options.beta, options.even_tempered_max_l)
        auxmol = addons.make_auxmol(mol, basis)
        if auxmol.cart:
            raise PySCFBackendError(
                "the pyscf backend needs spherical (cart=False) basis functions"
            )
        return auxmol
    return build_named_auxmol(mol, options.aux_basis, formula)


def build_named_auxmol(mol: gto.Mole, aux_basis: str, formula: str) -> gto.Mole:
    """The molecule of ``mol`` with the named PySCF basis ``aux_basis`` as its spherical AOs.

    The auxiliary functions are spherical whatever ``mol.cart`` is: rhocore's coefficients
    are per real spherical harmonic.
    """
    for symbol in sorted({mol.atom_pure_symbol(i) for i in range(mol.natm)}):
        try:
            gto.basis.load(aux_basis, symbol)
        except gto.basis.BasisNotFoundError:
            raise PySCFBackendError(
                f"structure {formula}: the auxiliary basis '{aux_basis}' has no functions "
                f"for {symbol}. Choose another 'aux_basis', or '{EVEN_TEMPERED}' to "
                "generate one from the orbital basis."
            ) from None
    auxmol = addons.make_auxmol(mol, aux_basis)
    if auxmol.cart:
        auxmol.cart = False
        auxmol.build(False, False)
    return auxmol
