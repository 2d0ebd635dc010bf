"""Layout of an auxiliary (RI) basis and the canonical coefficient order.

Coefficients of a structure are one flat vector in the order atom -> l -> n -> m
(m = -l..l fastest), real spherical harmonics in the convention of featomic's
lambda-SOAP. :class:`BasisLayout` knows, per atomic number, how many radial functions
there are for each l, which is all that is needed to cut that vector into the blocks of a
metatensor ``TensorMap`` with keys (o3_lambda, o3_sigma, center_type).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BasisLayout:
    """Radial-function counts of an RI basis: ``nmax[Z][l]`` for l = 0..lmax(Z)."""

    nmax: dict[int, tuple[int, ...]]

    def __post_init__(self) -> None:
        clean = {int(z): tuple(int(n) for n in counts) for z, counts in self.nmax.items()}
        object.__setattr__(self, "nmax", dict(sorted(clean.items())))

    @property
    def species(self) -> list[int]:
        """Atomic numbers the basis covers, sorted."""
        return list(self.nmax)

    def lmax(self, z: int) -> int:
        """Largest angular momentum of element ``z``."""
        return len(self._counts(z)) - 1

    @property
    def max_lmax(self) -> int:
        """Largest angular momentum over all elements."""
        return max(len(c) - 1 for c in self.nmax.values())

    def atom_size(self, z: int) -> int:
        """Number of basis functions on one atom of element ``z``."""
        return sum((2 * l + 1) * n for l, n in enumerate(self._counts(z)))

    def size(self, numbers: Sequence[int]) -> int:
        """Number of basis functions of a structure with these atomic numbers."""
        return sum(self.atom_size(int(z)) for z in numbers)

    def keys(self) -> list[tuple[int, int]]:
        """(l, Z) pairs with at least one radial function, sorted by Z then l."""
        return [(l, z) for z, counts in self.nmax.items() for l, n in enumerate(counts) if n > 0]

    def atom_offsets(self, numbers: Sequence[int]) -> np.ndarray:
        """Start index of every atom's functions in the flat vector (length n_atoms + 1)."""
        sizes = [self.atom_size(int(z)) for z in numbers]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def function_table(self, numbers: Sequence[int]) -> np.ndarray:
        """One row (atom, Z, l, n, m) per basis function, in canonical order."""
        rows = []
        for atom, z in enumerate(numbers):
            for l, count in enumerate(self._counts(int(z))):
                for n in range(count):
                    for m in range(-l, l + 1):
                        rows.append((atom, int(z), l, n, m))
        return np.array(rows, dtype=int).reshape(-1, 5)

    def split(
        self, vector: np.ndarray, numbers: Sequence[int]
    ) -> dict[tuple[int, int], np.ndarray]:
        """Cut a flat coefficient vector into blocks ``{(l, Z): (atoms, 2l+1, n)}``."""
        self._check_length(vector, numbers)
        pieces: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in self.keys()}
        start = 0
        for z in numbers:
            for l, count in enumerate(self._counts(int(z))):
                width = (2 * l + 1) * count
                if count:
                    block = vector[start : start + width].reshape(count, 2 * l + 1).T
                    pieces[(l, int(z))].append(block)
                start += width
        present = set(int(z) for z in numbers)
        return {
            key: np.stack(blocks) for key, blocks in pieces.items() if key[1] in present and blocks
        }

    def join(self, blocks: dict[tuple[int, int], np.ndarray], numbers: Sequence[int]) -> np.ndarray:
        """Inverse of :meth:`split`: blocks ``{(l, Z): (atoms, 2l+1, n)}`` -> flat vector."""
        cursor = {key: 0 for key in blocks}
        out = []
        for z in numbers:
            for l, count in enumerate(self._counts(int(z))):
                if not count:
                    continue
                block = blocks[(l, int(z))]
                out.append(block[cursor[(l, int(z))]].T.reshape(-1))
                cursor[(l, int(z))] += 1
        return np.concatenate(out) if out else np.zeros(0)

    def merged(self, other: BasisLayout) -> BasisLayout:
        """The union of two layouts; an element both cover must have the same counts."""
        clash = [z for z in set(self.nmax) & set(other.nmax) if self.nmax[z] != other.nmax[z]]
        if clash:
            z = clash[0]
            raise ValueError(
                f"two RI basis layouts disagree for element Z={z}: radial functions per l "
                f"{self.nmax[z]} and {other.nmax[z]}; fits of one dataset must use one basis"
            )
        return BasisLayout({**self.nmax, **other.nmax})

    def s_function_mask(self, numbers: Sequence[int]) -> np.ndarray:
        """Boolean mask of the l = 0 functions (the only ones with a non-zero integral)."""
        return self.function_table(numbers)[:, 2] == 0

    def to_json(self) -> str:
        """Serialise for dataset and checkpoint metadata."""
        return json.dumps({str(z): list(c) for z, c in self.nmax.items()})

    @classmethod
    def from_json(cls, text: str) -> BasisLayout:
        """Inverse of :meth:`to_json`."""
        return cls({int(z): tuple(c) for z, c in json.loads(text).items()})

    def _counts(self, z: int) -> tuple[int, ...]:
        try:
            return self.nmax[z]
        except KeyError:
            raise ValueError(
                f"the RI basis has no functions for element Z={z}; it covers "
                f"Z={self.species}. Use a basis set that includes this element."
            ) from None

    def _check_length(self, vector: np.ndarray, numbers: Sequence[int]) -> None:
        expected = self.size(numbers)
        if vector.shape != (expected,):
            raise ValueError(
                f"coefficient vector has shape {vector.shape}, but the RI basis layout "
                f"gives {expected} functions for this structure"
            )


@dataclass(frozen=True)
class SignedPermutation:
    """A QC code's function order and phases -> canonical: ``canonical = signs * code[order]``.

    Every backend that reads coefficients from its code needs exactly this map (codes order
    m and choose signs of real harmonics differently); ``layout`` is the basis it covers.
    """

    order: np.ndarray
    signs: np.ndarray
    layout: BasisLayout

    def to_canonical(self, vector: np.ndarray) -> np.ndarray:
        """A vector over the basis (coefficients, projections) in canonical order."""
        return self.signs * np.asarray(vector, dtype=float)[self.order]

    def to_canonical_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """A matrix with both axes over the basis (the metric) in canonical order."""
        picked = np.asarray(matrix, dtype=float)[np.ix_(self.order, self.order)]
        return np.outer(self.signs, self.signs) * picked

    def to_canonical_columns(self, values: np.ndarray) -> np.ndarray:
        """Function values (points x functions) with columns in canonical order."""
        return np.asarray(values)[:, self.order] * self.signs

    def from_canonical(self, vector: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_canonical`: a canonical vector in the code's order."""
        out = np.empty(len(self.order))
        out[self.order] = self.signs * np.asarray(vector, dtype=float)
        return out
