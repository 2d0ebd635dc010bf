"""A finished QC output read with cclib: PySCF molecule, MO coefficients, orbital data.

:func:`read_output` parses any file cclib reads, builds the PySCF molecule of its basis
printout (cclib's bridge, then charge, spin and Cartesian/spherical functions as the file
used — the bridge itself always makes a neutral singlet of Cartesian functions), moves
the MO coefficients into PySCF's AO order (:mod:`rhocore_pyscf.cclib.aos`) and checks
the result: the MOs must be orthonormal in PySCF's AO overlap, a printed AO overlap must
agree with PySCF's, and the occupations must hold every electron of the nuclei. Anything
it cannot use is refused with :class:`CclibOutputError`, naming the file, the missing
piece and the print keyword of that code that supplies it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np
from pyscf import gto

from rhocore.api import OrbitalData, RhocoreError
from rhocore_pyscf.cclib.aos import (
    CONVENTIONS,
    AOOrderError,
    is_cartesian,
    program_aos,
    pyscf_ao_map,
)

#: Print keywords that make each code write what rhocore reads: (basis printout, all MOs).
PRINT_KEYWORDS: dict[str, tuple[str, str]] = {
    "Gaussian": ("the route keyword 'gfinput'", "'pop=full'"),
    "ORCA": ("'print[p_basis] 2' in %output", "'print[p_mos] 1' in %output"),
    "Psi4": ("'set print_basis true'", "'set print_mos true'"),
    "GAMESS": (
        "its default output (ATOMIC BASIS SET); do not lower NPRINT",
        "its default output (EIGENVECTORS); do not lower NPRINT",
    ),
    "QChem": (
        "'print_general_basis = true' in $rem",
        "'print_orbitals = <number of virtual orbitals>' in $rem (true prints only 5)",
    ),
}


class CclibOutputError(RhocoreError, ValueError):
    """A QC output that cannot become a dataset entry; the message names the file."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)


@dataclass
class CclibOutput:
    """What rhocore uses of one output; ``mo_coeff`` is (n_spin, n_ao, n_mo), PySCF order."""

    path: Path
    package: str
    atoms: ase.Atoms
    mol: gto.Mole
    mo_coeff: np.ndarray
    orbitals: OrbitalData
    total_energy: float
    orthonormality_error: float


def parse(path: Path | str):
    """cclib's data of ``path`` (``ccData``); unreadable files raise :class:`CclibOutputError`."""
    import cclib

    logging.getLogger("cclib").setLevel(logging.ERROR)
    try:
        data = cclib.io.ccread(str(path), loglevel=logging.ERROR)
    except Exception as error:  # cclib's parsers raise anything on a file they misread
        problem = " ".join(f"{type(error).__name__}: {error}".split())
        raise CclibOutputError(path, f"cclib cannot parse the file ({problem})") from None
    if data is None:
        raise CclibOutputError(path, "cclib does not recognise it as the output of a code it reads")
    return data


def read_atoms(path: Path | str, data=None) -> ase.Atoms:
    """The last geometry of the output (angstrom), the one its MO coefficients belong to."""
    data = parse(path) if data is None else data
    if not hasattr(data, "atomnos") or not hasattr(data, "atomcoords"):
        raise CclibOutputError(path, "cclib found no geometry (atomnos, atomcoords) in it")
    numbers = np.asarray(data.atomnos, dtype=int)
    if np.any(numbers <= 0):
        raise CclibOutputError(
            path, "it has ghost or dummy atoms (atomic number 0); rhocore needs real atoms only"
        )
    return ase.Atoms(numbers=numbers, positions=np.asarray(data.atomcoords[-1], dtype=float))


def read_output(path: Path | str, tolerance: float = 1e-4) -> CclibOutput:
    """Read, convert and check the output ``path``; ``tolerance`` bounds max |C S C^T - I|."""
    path = Path(path)
    data = parse(path)
    package = str(data.metadata.get("package", "unknown"))
    atoms = read_atoms(path, data)
    _require(data, path, package)
    _refuse_partial_orbitals(data, path, package)
    _refuse_core_potentials(data, path, atoms)
    try:
        aos = program_aos(package, data.gbasis, getattr(data, "aonames", None), data.nbasis)
        mol = _molecule(data, path, is_cartesian(aos))
        ao_map = pyscf_ao_map(aos, mol, data.gbasis, CONVENTIONS[package].cartesian_norm)
    except AOOrderError as error:
        raise CclibOutputError(path, f"cannot map its AOs onto PySCF's: {error}") from None
    mo_coeff = np.stack([ao_map.mo_coefficients(c, mol.nao) for c in data.mocoeffs])
    overlap = mol.intor("int1e_ovlp")
    error = orthonormality_error(mo_coeff, overlap)
    if error > tolerance:
        raise CclibOutputError(
            path,
            f"its MO coefficients are not orthonormal in the AO overlap of its basis "
            f"(max |C S C^T - I| = {error:.2e} > {tolerance:.0e}): the AO order or "
            f"normalisation of {package} differs from rhocore's reading, the MOs belong to "
            "another geometry (an optimisation's earlier step), or they are printed with too "
            "few digits (raise the backend option orthonormality_tolerance only then)",
        )
    printed = getattr(data, "aooverlaps", None)
    # a zero on its diagonal: cclib read only part of the printed matrix (GAMESS, l = 4)
    if printed is not None and np.all(np.abs(np.diag(printed)) > 0):
        deviation = float(np.max(np.abs(ao_map.program_matrix(overlap) - printed)))
        if deviation > tolerance:
            raise CclibOutputError(
                path,
                f"the AO overlap it prints differs from PySCF's of its basis by {deviation:.2e}"
                f" (> {tolerance:.0e}): the AO order of {package} is not what rhocore reads",
            )
    orbitals = orbital_data(data, path)
    _check_electron_count(orbitals, mol, path)
    energies = getattr(data, "scfenergies", None)
    return CclibOutput(
        path=path,
        package=package,
        atoms=atoms,
        mol=mol,
        mo_coeff=mo_coeff,
        orbitals=orbitals,
        total_energy=float(energies[-1]) if energies is not None and len(energies) else np.nan,
        orthonormality_error=error,
    )


def orthonormality_error(mo_coeff: np.ndarray, overlap: np.ndarray) -> float:
    """max |C^T S C - I| over spin channels, for ``mo_coeff`` of shape (n_spin, n_ao, n_mo)."""
    return max(float(np.max(np.abs(c.T @ overlap @ c - np.eye(c.shape[1])))) for c in mo_coeff)


def _hint(package: str, which: int) -> str:
    keywords = PRINT_KEYWORDS.get(package)
    if keywords is None:
        return f"make {package} print it (see docs/cclib.rst)"
    return f"{package} prints it with {keywords[which]}"


def _require(data, path: Path, package: str) -> None:
    """Refuse outputs without a basis printout, MO coefficients or orbital energies."""
    if not hasattr(data, "gbasis"):
        raise CclibOutputError(
            path, f"missing basis printout (cclib 'gbasis'): {_hint(package, 0)}"
        )
    if not hasattr(data, "mocoeffs"):
        raise CclibOutputError(
            path, f"missing MO coefficients (cclib 'mocoeffs'): {_hint(package, 1)}"
        )
    for name in ("moenergies", "homos", "nbasis"):
        if not hasattr(data, name):
            raise CclibOutputError(path, f"missing orbital data (cclib '{name}')")


def _refuse_partial_orbitals(data, path: Path, package: str) -> None:
    """NaN rows of ``mocoeffs``: the program printed only part of the virtual orbitals."""
    for spin, coefficients in enumerate(data.mocoeffs):
        missing = np.nonzero(~np.isfinite(coefficients).all(axis=1))[0]
        energies = np.asarray(data.moenergies[spin], dtype=float)
        missing = np.union1d(missing, np.nonzero(~np.isfinite(energies))[0])
        if missing.size:
            channel = "" if len(data.mocoeffs) == 1 else f" of spin {('alpha', 'beta')[spin]}"
            raise CclibOutputError(
                path,
                f"partial virtual orbitals: {missing.size} of {len(coefficients)} MOs{channel} "
                f"(MOs {missing[0] + 1}-{missing[-1] + 1}) have no coefficients because the "
                f"output prints only part of the virtual orbitals; print all: "
                f"{_hint(package, 1)}",
            )


def _refuse_core_potentials(data, path: Path, atoms: ase.Atoms) -> None:
    """ECP calculations: the basis holds valence functions, the core electrons are missing."""
    core = np.asarray(getattr(data, "coreelectrons", np.zeros(len(atoms))), dtype=int)
    if np.any(core > 0):
        symbols = atoms.get_chemical_symbols()
        per_atom = ", ".join(f"{symbols[i]}{i + 1} {int(core[i])}" for i in np.nonzero(core)[0][:6])
        raise CclibOutputError(
            path,
            f"ECP core electrons: {int(core.sum())} core electrons ({per_atom}"
            f"{', ...' if np.count_nonzero(core) > 6 else ''}) are replaced by an effective "
            "core potential, so its basis and orbitals hold valence electrons only; rhocore "
            "fits all-electron fields: use an all-electron calculation",
        )


def _molecule(data, path: Path, cartesian: bool) -> gto.Mole:
    """PySCF molecule of the output's basis, charge and multiplicity (angstrom)."""
    from cclib.bridge.cclib2pyscf import makepyscf

    numbers = np.asarray(data.atomnos)
    for z in np.unique(numbers):
        atoms_of_z = np.nonzero(numbers == z)[0]
        first = data.gbasis[atoms_of_z[0]]
        if any(data.gbasis[i] != first for i in atoms_of_z[1:]):
            raise AOOrderError(
                f"atoms of Z={int(z)} carry different basis functions; rhocore reads one "
                "basis per element"
            )
    charge, multiplicity = int(getattr(data, "charge", 0)), int(getattr(data, "mult", 1))
    try:
        mol = makepyscf(data, charge=charge, mult=multiplicity)
        mol.cart = cartesian
        mol.verbose = 0
        mol.build()
    except (RuntimeError, KeyError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise CclibOutputError(
            path,
            f"PySCF cannot build its molecule (charge {charge}, multiplicity {multiplicity}): "
            f"{reason}",
        ) from None
    if mol.nao != data.nbasis:
        raise AOOrderError(
            f"its basis printout gives {mol.nao} {'Cartesian' if cartesian else 'spherical'} "
            f"functions, the output has nbasis={data.nbasis}"
        )
    return mol


def orbital_data(data, path: Path | str) -> OrbitalData:
    """Energies (eV, as cclib gives them) and occupations from cclib's ``homos``.

    One ``mocoeffs`` set with two ``homos`` is restricted open-shell: doubly occupied up
    to the beta HOMO, singly up to the alpha HOMO. The Fermi level is the midpoint
    between the highest occupied and lowest unoccupied orbital (eV).
    """
    n_spin = len(data.mocoeffs)
    homos = [int(h) for h in np.atleast_1d(data.homos)]
    energies = np.asarray([np.asarray(e, dtype=float) for e in data.moenergies[:n_spin]])
    if energies.shape != (n_spin, data.mocoeffs[0].shape[0]):
        raise CclibOutputError(
            path,
            f"{energies.shape[-1]} orbital energies for {data.mocoeffs[0].shape[0]} MOs",
        )
    occupations = np.zeros_like(energies)
    if n_spin == 2:
        for spin in range(2):
            occupations[spin, : homos[spin] + 1] = 1.0
    else:
        occupations[0, : homos[0] + 1] = 1.0 if len(homos) == 2 else 2.0
        occupations[0, : min(homos) + 1] = 2.0
    occupied = occupations > 0
    homo = float(energies[occupied].max())
    fermi = homo if occupied.all() else 0.5 * (homo + float(energies[~occupied].min()))
    return OrbitalData(energies[:, None, :], occupations[:, None, :], np.ones(1), fermi_level=fermi)


def _check_electron_count(orbitals: OrbitalData, mol: gto.Mole, path: Path) -> None:
    """The occupations must hold every electron of the nuclei minus the charge."""
    counted = orbitals.n_electrons
    if abs(counted - mol.nelectron) > 1e-8:
        raise CclibOutputError(
            path,
            f"electron count: its MO occupations hold {counted:g} electrons, the nuclei and "
            f"charge {mol.charge} need {mol.nelectron}; frozen or missing core orbitals?",
        )
