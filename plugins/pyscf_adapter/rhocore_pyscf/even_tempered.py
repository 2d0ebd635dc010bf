"""The even-tempered auxiliary basis: PySCF's rule, with the highest l chosen per element.

PySCF's even-tempered basis (``pyscf.df.addons.aug_etb``) spans products of orbital pairs
on one atom, so its highest angular momentum is twice the orbital basis's: d for Si with
an sp basis. A field built of orbitals on neighbouring atoms, such as the empty dangling
bonds of a Si(100) dimer seen 3 angstrom above the surface, needs higher l on one centre:
with f functions added on Si the RI fit of the +1.5 V ILDOS images the surface with a
third of the tip-height error of PySCF's basis. An l above the rule reuses the exponents
of the rule's highest l.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyscf import gto
from pyscf.df import addons

#: PySCF basis format of one uncontracted shell: [l, [exponent, 1.0]].
Shell = list


def even_tempered_basis(mol: gto.Mole, beta: float, max_l: Mapping[str, int]) -> dict:
    """The even-tempered basis of ``mol`` per atom label, highest l set by ``max_l``.

    ``max_l`` maps element symbols to their highest angular momentum; elements not in it
    keep PySCF's rule.
    """
    basis = addons.aug_etb(mol, beta=beta)
    return {
        label: _with_max_l(shells, max_l[label]) if label in max_l else shells
        for label, shells in basis.items()
    }


def _with_max_l(shells: list[Shell], max_l: int) -> list[Shell]:
    """``shells`` cut or extended to angular momenta 0..max_l, exponents sorted by l."""
    exponents: dict[int, list[float]] = {}
    for l, (exponent, _) in shells:
        exponents.setdefault(l, []).append(exponent)
    highest = max(exponents)
    for l in range(highest + 1, max_l + 1):
        exponents[l] = list(exponents[highest])
    return [[l, [e, 1.0]] for l in sorted(exponents) if l <= max_l for e in exponents[l]]
