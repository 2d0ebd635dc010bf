"""PySCF's auxiliary-basis AO order and phases -> rhocore's canonical order.

PySCF lists AOs shell by shell (shells in basis-file order, a shell's contractions before
its m components) with p as (x, y, z) and m = -l..l for l >= 2; rhocore wants
atom -> l -> radial n -> m with the real harmonics of :mod:`rhocore.qc.rotations`. The
signed permutation of the m components is measured by evaluating PySCF's spherical GTOs
and comparing their angular parts with rhocore's harmonics, so no phase is assumed.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from pyscf import gto

from rhocore.api import BasisLayout, SignedPermutation, real_spherical_harmonics


@cache
def pyscf_to_canonical_m(l: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """For canonical m = -l..l: the PySCF component index within a shell and its sign.

    PySCF's component ``order[k]`` equals ``sign[k] * c * Y_l,m=k-l`` with c > 0 common to
    the shell. Raises if PySCF's functions are not a signed permutation of rhocore's.
    """
    probe = gto.M(atom="He 0 0 0", basis={"He": [[l, [1.0, 1.0]]]}, unit="Bohr", verbose=0)
    points = np.random.default_rng(17).normal(size=(8 * (2 * l + 1), 3))
    radial = np.exp(-np.sum(points**2, axis=1)) * np.linalg.norm(points, axis=1) ** l
    angular = probe.eval_gto("GTOval_sph", points) / radial[:, None]
    # expansion[m, k]: coefficient of canonical Y_m in PySCF component k
    expansion = np.linalg.lstsq(real_spherical_harmonics(l, points), angular, rcond=None)[0]
    order = np.argmax(np.abs(expansion), axis=1)
    picked = expansion[np.arange(2 * l + 1), order]
    scale = np.abs(picked[0])
    is_signed_permutation = (
        len(set(order.tolist())) == 2 * l + 1
        and np.allclose(np.abs(picked), scale, rtol=1e-8)
        and np.count_nonzero(np.abs(expansion) > 1e-8 * scale) == 2 * l + 1
    )
    if not is_signed_permutation:
        raise RuntimeError(
            f"PySCF's l={l} spherical functions are not a signed permutation of rhocore's "
            "real harmonics; this PySCF version changed its convention"
        )
    return tuple(int(k) for k in order), tuple(float(s) for s in np.sign(picked))


def aux_ao_map(auxmol: gto.Mole) -> SignedPermutation:
    """The signed permutation from ``auxmol``'s AO order to rhocore's canonical order.

    Radial index n counts a (atom, l)'s contractions in PySCF's shell order.
    """
    entries = []  # (atom, l, n, m index, PySCF AO index, sign)
    offsets = auxmol.ao_loc_nr()
    radial_count: dict[tuple[int, int], int] = {}
    for shell in range(auxmol.nbas):
        atom, l = int(auxmol.bas_atom(shell)), int(auxmol.bas_angular(shell))
        order, signs = pyscf_to_canonical_m(l)
        for contraction in range(auxmol.bas_nctr(shell)):
            n = radial_count.get((atom, l), 0)
            radial_count[(atom, l)] = n + 1
            start = offsets[shell] + contraction * (2 * l + 1)
            for m_index in range(2 * l + 1):
                entries.append((atom, l, n, m_index, start + order[m_index], signs[m_index]))
    entries.sort(key=lambda entry: entry[:4])
    return SignedPermutation(
        order=np.array([entry[4] for entry in entries], dtype=int),
        signs=np.array([entry[5] for entry in entries], dtype=float),
        layout=_layout(auxmol, radial_count),
    )


def _layout(auxmol: gto.Mole, radial_count: dict[tuple[int, int], int]) -> BasisLayout:
    """Radial counts per element and l; every atom of an element must agree."""
    per_atom: dict[int, tuple[int, ...]] = {}
    for atom in range(auxmol.natm):
        lmax = max((l for a, l in radial_count if a == atom), default=-1)
        per_atom[atom] = tuple(radial_count.get((atom, l), 0) for l in range(lmax + 1))
    nmax: dict[int, tuple[int, ...]] = {}
    for atom, counts in per_atom.items():
        z = int(gto.charge(auxmol.atom_pure_symbol(atom)))
        if nmax.setdefault(z, counts) != counts:
            raise ValueError(
                f"atoms of element Z={z} carry different auxiliary functions "
                f"({nmax[z]} and {counts} radial functions per l); rhocore needs one basis "
                "per element"
            )
    return BasisLayout(nmax)
