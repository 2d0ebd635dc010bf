"""FHI-aims auxiliary-basis order and phases -> rhocore's canonical convention.

FHI-aims writes RI vectors and matrices in its own function order and with its own real
spherical harmonics. rhocore stores them atom -> l -> n -> m (m = -l..l) in featomic's
real harmonics (:mod:`rhocore.qc.basis`). A :class:`rhocore.qc.basis.SignedPermutation` holds
the order
and the signs that take one to the other:

``canonical[i] = signs[i] * aims[order[i]]``

for vectors (coefficients, projections), and the same on both axes of matrices.

The phases depend on the keyword generation that wrote the files (:func:`aims_sign`),
measured on real data, not assumed (``tests/test_aims_convention.py``):

* mainline files (FHI-aims 240925: ``ri_restart_coeffs.out`` ...) are already in
  featomic's phases: Wigner-D rotation of methane's coefficients under its own symmetry
  rotations agrees to <= 0.8 % with no sign change and is off by O(1) with any other rule;
* legacy ``ri_fit_*`` files carry the Condon-Shortley phase (-1)^m on m > 0: the
  processed files of the earlier tool that removed exactly that phase are canonical
  (rotated water frames agree to 0.1 %, every other rule gives O(1) errors).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rhocore.api import BasisLayout, SignedPermutation

Generation = Literal["legacy", "mainline"]


def aims_sign(l: int, m: int, generation: Generation) -> int:
    """Sign that takes the function (l, m) of an FHI-aims RI file to featomic's (l, m).

    Legacy files carry the Condon-Shortley phase (-1)^m on m > 0; mainline files none.
    """
    if generation == "legacy" and m > 0 and m % 2 == 1:
        return -1
    return 1


def from_function_table(
    table: np.ndarray, numbers: np.ndarray, *, generation: Generation = "legacy"
) -> SignedPermutation:
    """The conversion for functions listed in FHI-aims' order (legacy files by default).

    ``table`` has one row (atom, l, n, m) per function in the order of the FHI-aims file,
    0-based atom and radial index n counted within each (atom, l). ``numbers`` are the
    atomic numbers of the structure; ``generation`` decides the phases.
    """
    table = np.asarray(table, dtype=int)
    numbers = np.asarray(numbers, dtype=int)
    counts: dict[int, dict[int, int]] = {}
    for atom, l, n, _m in table:
        per_l = counts.setdefault(int(numbers[atom]), {})
        per_l[int(l)] = max(per_l.get(int(l), 0), int(n) + 1)
    layout = BasisLayout(
        {z: tuple(per_l.get(l, 0) for l in range(max(per_l) + 1)) for z, per_l in counts.items()}
    )
    canonical = layout.function_table(numbers)
    position = {tuple(row): i for i, row in enumerate(table.tolist())}
    if len(position) != len(table):
        raise ValueError("the FHI-aims function table lists a function twice")
    try:
        permutation = np.array(
            [position[(atom, l, n, m)] for atom, _z, l, n, m in canonical.tolist()], dtype=int
        )
    except KeyError as missing:
        raise ValueError(
            f"the FHI-aims function table lacks function (atom, l, n, m) = {missing}; "
            "it does not describe a complete basis"
        ) from None
    if len(permutation) != len(table):
        raise ValueError("the FHI-aims function table has functions outside the basis layout")
    signs = np.array(
        [aims_sign(l, m, generation) for _a, _z, l, _n, m in canonical.tolist()], dtype=float
    )
    return SignedPermutation(order=permutation, signs=signs, layout=layout)


def from_layout(
    layout: BasisLayout, numbers: np.ndarray, *, generation: Generation = "mainline"
) -> SignedPermutation:
    """The conversion for files in atom -> l -> n -> m order (mainline files by default)."""
    table = layout.function_table(numbers)
    return from_function_table(table[:, [0, 2, 3, 4]], numbers, generation=generation)
