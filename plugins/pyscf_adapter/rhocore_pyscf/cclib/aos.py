"""AO order of a QC program, read from cclib's AO labels, mapped onto PySCF's AO order.

Every program lists its atomic orbitals its own way: PySCF orders each atom's shells by l
while most codes interleave them (s, s, p, s, p, d, ...); within a shell ORCA and Psi4
list p as (z, x, y), spherical functions run 0, +1, -1, +2, -2, ... in Gaussian, ORCA
and Psi4, and each code has its own phases (ORCA's m = +-3, +-4 functions carry a minus
sign) and its own normalisation of Cartesian functions. Here a program AO is described
by what it *is* — atom, l, which of the atom's l-shells, and its Cartesian exponents
(lx, ly, lz) or its real solid harmonic m with a sign — parsed per code from cclib's
``aonames`` (Psi4, which has none, from its documented order). :func:`pyscf_ao_map`
turns that into PySCF AO indices and factors, so that MO coefficients move from the
program's basis to PySCF's. Pure functions of labels and basis data, testable alone.

"Standard" real solid harmonics (the reference for every sign here): for m > 0 the
coefficient of x^m z^(l-m) is positive, for m < 0 that of x^(|m|-1) y z^(l-|m|), for
m = 0 that of z^l — the convention of Gaussian and of most codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from pyscf import gto

from rhocore.api import RhocoreError

#: Angular momentum of a shell letter of cclib's ``gbasis`` and of AO labels.
L_OF_LETTER = {letter: l for l, letter in enumerate("SPDFGHI")}

#: How a code normalises its Cartesian functions: each to unity ("unit"), or all
#: components of a shell with the constant of x^l ("axis").
CartesianNorm = Literal["unit", "axis"]


class AOOrderError(RhocoreError, ValueError):
    """AO labels or basis data from which no AO order can be read."""


@dataclass(frozen=True)
class ProgramAO:
    """One atomic orbital of a program, by what it is rather than where it is.

    ``shell`` counts the atom's shells of angular momentum ``l`` in program order (0, 1,
    ...). A Cartesian AO has exponents ``cartesian`` = (lx, ly, lz); a spherical one has
    ``m``; ``sign`` is the program's function relative to the standard one (p functions
    given by m are stored as their Cartesian x, y, z with that sign).
    """

    atom: int
    l: int
    shell: int
    cartesian: tuple[int, int, int] | None = None
    m: int | None = None
    sign: float = 1.0


#: A code's label grammar: the label after the atom ("2PX", "5D+1", "DXY") -> (l, component)
#: where the component is (lx, ly, lz) or ("m", m, sign).
LabelReader = Callable[[str], tuple[int, tuple]]


@dataclass(frozen=True)
class Convention:
    """How one code (cclib ``metadata['package']``) names and normalises its AOs."""

    read_label: LabelReader | None
    cartesian_norm: CartesianNorm = "unit"


def _cartesian(l: int, letters: str) -> tuple[int, tuple]:
    """(lx, ly, lz) from a string of x/y/z letters, e.g. 'XYY' -> (1, 2, 0)."""
    if len(letters) != l:
        raise AOOrderError(f"Cartesian label '{letters}' does not have l = {l} letters")
    return l, tuple(letters.count(axis) for axis in "XYZ")


def _strip(label: str) -> str:
    """The label without its leading shell number and spaces: '2PX' -> 'PX'."""
    return label.lstrip("0123456789 ").upper()


def read_letters_or_signed_m(label: str) -> tuple[int, tuple]:
    """Gaussian, GAMESS, GAMESS-UK, Jaguar, NWChem, Q-Chem (Cartesian) labels.

    'S'; Cartesian 'X', 'PX', 'XX', 'DXY', 'FXXY', 'YYX'; spherical with a signed m after
    the l letter, 'D 0', 'D+1', 'D-2' (Gaussian) or 'D-2', 'D1' (NWChem).
    """
    text = _strip(label)
    if text == "S":
        return 0, (0, 0, 0)
    if match := re.fullmatch(r"([PDFGHI])\s*([+-]?\d+)", text):
        l, m = L_OF_LETTER[match[1]], int(match[2])
        return l, ("m", m, 1.0)
    if match := re.fullmatch(r"([PDFGHI]?)([XYZ]+)", text):
        letters = match[2]
        l = L_OF_LETTER[match[1]] if match[1] else len(letters)
        return _cartesian(l, letters)
    raise AOOrderError(f"AO label '{label}' is not understood")


def read_qchem(label: str) -> tuple[int, tuple]:
    """Q-Chem: 'S', 'PX', Cartesian 'DXY', and spherical 'D 1'..'D 5' = m = -l..l."""
    text = _strip(label)
    if match := re.fullmatch(r"([DFGHI])\s*(\d+)", text):
        l = L_OF_LETTER[match[1]]
        index = int(match[2])
        if not 1 <= index <= 2 * l + 1:
            raise AOOrderError(f"AO label '{label}': index {index} outside 1..{2 * l + 1}")
        return l, ("m", index - 1 - l, 1.0)
    return read_letters_or_signed_m(label)


#: ORCA's names of the five d functions, by m.
ORCA_D = {"DZ2": 0, "DXZ": 1, "DYZ": -1, "DX2Y2": 2, "DXY": -2}


def read_orca(label: str) -> tuple[int, tuple]:
    """ORCA: 'S', 'PZ', 'PX', 'PY', 'DZ2', 'DXZ', 'DYZ', 'DX2Y2', 'DXY', 'F0', 'F+1', ...

    ORCA's functions with |m| = 3 and 4 (f+-3, g+-3, g+-4) are the negatives of the
    standard ones.
    """
    text = _strip(label)
    if text in ORCA_D:
        return 2, ("m", ORCA_D[text], 1.0)
    if match := re.fullmatch(r"([FGHI])([+-]?\d+)", text):
        l, m = L_OF_LETTER[match[1]], int(match[2])
        return l, ("m", m, -1.0 if abs(m) in (3, 4) else 1.0)
    return read_letters_or_signed_m(label)


def read_molpro(label: str) -> tuple[int, tuple]:
    """Molpro: 's', 'px', 'd0', 'd2-', 'd1+', 'f3+' (m's sign after its value)."""
    text = _strip(label)
    if match := re.fullmatch(r"([DFGHI])(\d+)([+-]?)", text):
        l, size = L_OF_LETTER[match[1]], int(match[2])
        return l, ("m", -size if match[3] == "-" else size, 1.0)
    return read_letters_or_signed_m(label)


#: Codes whose AO order rhocore knows, by cclib's ``metadata['package']``. Psi4 prints
#: no AO labels: its order is generated by :func:`psi4_shell`.
CONVENTIONS: dict[str, Convention] = {
    "Gaussian": Convention(read_letters_or_signed_m),
    "GAMESS": Convention(read_letters_or_signed_m),
    "GAMESSUK": Convention(read_letters_or_signed_m),
    "Jaguar": Convention(read_letters_or_signed_m),
    "NWChem": Convention(read_letters_or_signed_m),
    "QChem": Convention(read_qchem),
    "ORCA": Convention(read_orca),
    "Molpro": Convention(read_molpro),
    "Psi4": Convention(None, cartesian_norm="axis"),
}


def cartesian_exponents(l: int) -> list[tuple[int, int, int]]:
    """Cartesian components of a shell in PySCF's order (xx, xy, xz, yy, yz, zz for d)."""
    return [(lx, ly, l - lx - ly) for lx in range(l, -1, -1) for ly in range(l - lx, -1, -1)]


def psi4_shell(l: int, spherical: bool) -> list[tuple]:
    """Components of one Psi4 shell in Psi4's order.

    Spherical: m = 0, +1, -1, +2, -2, ... (p therefore z, x, y); Cartesian: the order of
    :func:`cartesian_exponents`.
    """
    if not spherical or l == 0:
        return list(cartesian_exponents(l))
    ms = [0] + [sign * size for size in range(1, l + 1) for sign in (1, -1)]
    return [("m", m, 1.0) for m in ms]


def program_aos(
    package: str,
    gbasis: Sequence[Sequence[tuple[str, list]]],
    aonames: Sequence[str] | None,
    nbasis: int,
) -> list[ProgramAO]:
    """The program's AOs in its own order, from cclib's ``gbasis`` and ``aonames``.

    The program is assumed to list AOs atom by atom and shell by shell as ``gbasis`` does;
    each label is checked to belong to the shell it falls on (its l and, with the
    shell's other labels, a complete set of components). Raises :class:`AOOrderError`.
    """
    convention = CONVENTIONS.get(package)
    if convention is None:
        raise AOOrderError(
            f"rhocore does not know the AO order of {package or 'this code'} (known: "
            f"{', '.join(sorted(CONVENTIONS))})"
        )
    shells = [
        (atom, L_OF_LETTER[shell[0].upper()])
        for atom, atom_shells in enumerate(gbasis)
        for shell in atom_shells
    ]
    spherical_count = sum(2 * l + 1 for _, l in shells)
    cartesian_count = sum((l + 1) * (l + 2) // 2 for _, l in shells)
    aos: list[ProgramAO] = []
    seen: dict[tuple[int, int], int] = {}
    if convention.read_label is None:
        spherical = _psi4_is_spherical(nbasis, spherical_count, cartesian_count)
        for atom, l in shells:
            shell = seen.get((atom, l), 0)
            seen[(atom, l)] = shell + 1
            aos += [_ao(atom, l, shell, c) for c in psi4_shell(l, spherical)]
        return aos
    if aonames is None:
        raise AOOrderError(f"the output of {package} has no AO labels (cclib 'aonames')")
    if len(aonames) != nbasis:
        raise AOOrderError(f"{len(aonames)} AO labels for {nbasis} basis functions")
    position = 0
    for atom, l in shells:
        shell = seen.get((atom, l), 0)
        seen[(atom, l)] = shell + 1
        size = None
        components = []
        while size is None or len(components) < size:
            if position >= len(aonames):
                raise AOOrderError(
                    f"the AO labels end inside the l={l} shell {shell} of atom {atom + 1}; "
                    f"the basis ({len(shells)} shells) needs more functions than nbasis={nbasis}"
                )
            label = aonames[position]
            try:
                label_l, component = convention.read_label(label.split("_", 1)[-1])
            except AOOrderError as error:
                raise AOOrderError(f"{package}: {error}") from None
            if label_l != l:
                raise AOOrderError(
                    f"AO {position + 1} ('{label}') has l={label_l} where the basis puts "
                    f"the l={l} shell {shell} of atom {atom + 1}: {package} does not list "
                    "its AOs shell by shell"
                )
            if size is None:
                size = 2 * l + 1 if component[0] == "m" else (l + 1) * (l + 2) // 2
            components.append(component)
            position += 1
        if len(set(components)) != size:
            raise AOOrderError(
                f"the labels of the l={l} shell {shell} of atom {atom + 1} repeat a component"
            )
        aos += [_ao(atom, l, shell, c) for c in components]
    if position != nbasis:
        raise AOOrderError(f"the basis covers {position} of the {nbasis} AO labels")
    return aos


def _psi4_is_spherical(nbasis: int, spherical_count: int, cartesian_count: int) -> bool:
    """Spherical or Cartesian from the function count (they differ once l >= 2)."""
    if nbasis == spherical_count:
        return True
    if nbasis == cartesian_count:
        return False
    raise AOOrderError(
        f"nbasis={nbasis} is neither the spherical ({spherical_count}) nor the Cartesian "
        f"({cartesian_count}) count of the basis printout"
    )


#: The standard p functions by m: +1 is x, -1 is y, 0 is z.
P_BY_M = {1: (1, 0, 0), -1: (0, 1, 0), 0: (0, 0, 1)}


def _ao(atom: int, l: int, shell: int, component: tuple) -> ProgramAO:
    """A :class:`ProgramAO`; a p function given by m becomes its Cartesian x, y or z."""
    if component[0] == "m":
        _, m, sign = component
        if not -l <= m <= l:
            raise AOOrderError(f"m={m} is outside -{l}..{l}")
        if l == 1:
            return ProgramAO(atom, l, shell, cartesian=P_BY_M[int(m)], sign=float(sign))
        return ProgramAO(atom, l, shell, m=int(m), sign=float(sign))
    return ProgramAO(atom, l, shell, cartesian=tuple(int(n) for n in component))


def is_cartesian(aos: Sequence[ProgramAO]) -> bool:
    """Whether the functions with l >= 2 are Cartesian; mixed sets raise (PySCF has one kind)."""
    kinds = {ao.cartesian is not None for ao in aos if ao.l >= 2}
    if len(kinds) > 1:
        raise AOOrderError(
            "the basis mixes Cartesian and spherical functions with l >= 2 (e.g. 6D 7F); "
            "PySCF needs one kind for every shell"
        )
    return kinds == {True}


@cache
def pyscf_spherical_signs(l: int) -> tuple[float, ...]:
    """Sign of each PySCF spherical component of a shell (m = -l..l) vs the standard one."""
    if l < 2:
        return (1.0,) * (2 * l + 1)
    transform = gto.cart2sph(l)  # rows: Cartesian components (PySCF order), cols: m = -l..l
    index = {c: i for i, c in enumerate(cartesian_exponents(l))}
    signs = []
    for column, m in enumerate(range(-l, l + 1)):
        if m > 0:
            reference = (m, 0, l - m)
        elif m < 0:
            reference = (-m - 1, 1, l + m)
        else:
            reference = (0, 0, l)
        value = transform[index[reference], column]
        if abs(value) < 1e-10:
            raise RuntimeError(f"PySCF's l={l}, m={m} function lacks its leading term")
        signs.append(float(np.sign(value)))
    return tuple(signs)


@dataclass(frozen=True)
class AOMap:
    """Program AO j = ``factor[j]`` * PySCF AO ``index[j]``."""

    index: np.ndarray
    factor: np.ndarray

    def mo_coefficients(self, mocoeffs: np.ndarray, nao: int) -> np.ndarray:
        """PySCF-order coefficients (n_ao, n_mo) of cclib ``mocoeffs`` rows (n_mo, nbasis)."""
        mocoeffs = np.asarray(mocoeffs, dtype=float)
        out = np.zeros((nao, mocoeffs.shape[0]))
        out[self.index] = (mocoeffs * self.factor[None, :]).T
        return out

    def program_matrix(self, pyscf_matrix: np.ndarray) -> np.ndarray:
        """An AO matrix (overlap) of PySCF's functions in the program's basis."""
        picked = pyscf_matrix[np.ix_(self.index, self.index)]
        return self.factor[:, None] * picked * self.factor[None, :]


def pyscf_ao_map(
    aos: Sequence[ProgramAO],
    mol: gto.Mole,
    gbasis: Sequence[Sequence[tuple[str, list]]],
    cartesian_norm: CartesianNorm = "unit",
) -> AOMap:
    """The PySCF AO index and factor of each program AO in ``mol``, built from ``gbasis``.

    The k-th l-shell of an atom in the program is the k-th l-shell of that atom in PySCF;
    their exponents are compared, so a basis built differently is an error.
    """
    overlap_diagonal = np.einsum("ii->i", mol.intor("int1e_ovlp")) if mol.cart else None
    offsets = mol.ao_loc_nr()
    pyscf_shells: dict[tuple[int, int, int], int] = {}
    counts: dict[tuple[int, int], int] = {}
    for shell in range(mol.nbas):
        atom, l = int(mol.bas_atom(shell)), int(mol.bas_angular(shell))
        if mol.bas_nctr(shell) != 1:
            raise AOOrderError("a PySCF shell of the cclib basis has several contractions")
        k = counts.get((atom, l), 0)
        counts[(atom, l)] = k + 1
        pyscf_shells[(atom, l, k)] = shell
    program_exponents = _program_exponents(gbasis)
    index, factor = [], []
    for ao in aos:
        shell = pyscf_shells.get((ao.atom, ao.l, ao.shell))
        if shell is None:
            raise AOOrderError(f"PySCF has no l={ao.l} shell {ao.shell} on atom {ao.atom + 1}")
        expected = program_exponents[(ao.atom, ao.l, ao.shell)]
        if not np.allclose(np.sort(mol.bas_exp(shell)), np.sort(expected), rtol=1e-10):
            raise AOOrderError(
                f"the l={ao.l} shell {ao.shell} of atom {ao.atom + 1} has other exponents in "
                "PySCF than in the output's basis printout"
            )
        start = int(offsets[shell])
        if ao.cartesian is not None and (mol.cart or ao.l < 2):
            position = start + cartesian_exponents(ao.l).index(ao.cartesian)
            if mol.cart and cartesian_norm == "unit":
                scale = 1.0 / np.sqrt(overlap_diagonal[position])
            elif mol.cart:  # the x^l component's normalisation for the whole shell
                scale = 1.0 / np.sqrt(overlap_diagonal[start])
            else:
                scale = 1.0
            scale *= ao.sign
        elif ao.m is not None and not mol.cart:
            column = ao.m + ao.l
            position = start + column
            scale = ao.sign * pyscf_spherical_signs(ao.l)[column]
        else:
            raise AOOrderError(
                f"a {'Cartesian' if ao.cartesian else 'spherical'} l={ao.l} function on atom "
                f"{ao.atom + 1} in a {'Cartesian' if mol.cart else 'spherical'} PySCF molecule"
            )
        index.append(position)
        factor.append(scale)
    index_array = np.asarray(index, dtype=int)
    if len(set(index)) != len(index) or len(index) != mol.nao:
        raise AOOrderError(
            f"the {len(index)} program AOs do not map one to one onto PySCF's {mol.nao}"
        )
    return AOMap(index=index_array, factor=np.asarray(factor))


def _program_exponents(
    gbasis: Sequence[Sequence[tuple[str, list]]],
) -> dict[tuple[int, int, int], np.ndarray]:
    """Primitive exponents of every (atom, l, k-th l-shell) of ``gbasis``."""
    exponents: dict[tuple[int, int, int], np.ndarray] = {}
    counts: dict[tuple[int, int], int] = {}
    for atom, shells in enumerate(gbasis):
        for letter, primitives in shells:
            l = L_OF_LETTER[letter.upper()]
            k = counts.get((atom, l), 0)
            counts[(atom, l)] = k + 1
            exponents[(atom, l, k)] = np.array([p[0] for p in primitives], dtype=float)
    return exponents
