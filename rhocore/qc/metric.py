"""The RI metric of a structure as atom-pair blocks, optionally cut off by distance.

In canonical order (atom -> l -> n -> m) the functions of one atom are contiguous, so the
metric S is a grid of atom-pair blocks S[i, j]. :class:`BlockMetric` keeps the blocks with
i <= j (S is symmetric) in one flat array, pairs sorted by interatomic distance, so that
the pairs within a cutoff are a prefix (what the dataset reads lazily). With a cutoff the
number of blocks, and the memory of training, grows linearly with the atoms instead of
quadratically. Dropping pairs changes ``d^T S d``; :meth:`BlockMetric.cutoff_error` says
by how much. :class:`rhocore.training.loss.TorchBlockMetric` evaluates ``Δ^T S Δ`` from
the blocks in torch (differentiable), without ever forming the dense matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np
from ase.geometry import get_distances

from rhocore.qc.basis import BasisLayout


def pair_distances(atoms: ase.Atoms) -> np.ndarray:
    """Distances (angstrom) between all atoms, minimum image along periodic directions."""
    positions = np.asarray(atoms.positions, dtype=float)
    if not np.any(atoms.pbc):
        return get_distances(positions)[1]
    return get_distances(positions, cell=atoms.cell, pbc=atoms.pbc)[1]


@dataclass
class BlockMetric:
    """Metric S of one structure as the blocks S[i, j], i <= j, of its atom pairs.

    ``offsets`` (n_atoms + 1) are the atoms' first functions in the flat coefficient
    vector; ``pairs`` (n_pairs, 2) the atom pairs (i <= j) sorted by ``distances``
    (angstrom); ``values`` the blocks one after another, each (n_i, n_j) row-major.
    ``norm`` is ``d^T S d`` of the reference coefficients with every pair (None where
    unknown), and ``cutoff`` the distance (angstrom) beyond which pairs were dropped.
    Units of S: those of the metric (bohr^3 for the overlap).
    """

    offsets: np.ndarray
    pairs: np.ndarray
    distances: np.ndarray
    values: np.ndarray
    norm: float | None = None
    cutoff: float | None = None

    @classmethod
    def from_dense(
        cls,
        matrix: np.ndarray,
        layout: BasisLayout,
        atoms: ase.Atoms,
        cutoff: float | None = None,
        coefficients: np.ndarray | None = None,
    ) -> BlockMetric:
        """Blocks of a dense symmetric ``matrix`` of ``atoms`` (pairs within ``cutoff``).

        With ``coefficients`` d, :attr:`norm` is set to ``d^T S d`` of the full matrix.
        """
        matrix = np.asarray(matrix, dtype=float)
        offsets = layout.atom_offsets(atoms.numbers)
        if matrix.shape != (offsets[-1],) * 2:
            raise ValueError(
                f"metric of shape {matrix.shape} does not match the {offsets[-1]} RI basis "
                f"functions of {len(atoms)} atoms"
            )
        first, second = np.triu_indices(len(atoms))
        distances = pair_distances(atoms)[first, second]
        order = np.lexsort((second, first, distances))
        pairs = np.stack([first[order], second[order]], axis=1)
        norm = None
        if coefficients is not None:
            norm = float(coefficients @ matrix @ coefficients)
        full = cls(offsets, pairs, distances[order], np.zeros(0), norm).truncated(cutoff)
        starts = full.block_starts()
        full.values = np.empty(starts[-1])
        for k, (i, j) in enumerate(full.pairs):
            block = matrix[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
            full.values[starts[k] : starts[k + 1]] = block.ravel()
        return full

    @property
    def n_functions(self) -> int:
        """Number of basis functions of the structure (the side of the dense S)."""
        return int(self.offsets[-1])

    def block_starts(self) -> np.ndarray:
        """Start of every block in :attr:`values` (length n_pairs + 1)."""
        return block_starts(self.offsets, self.pairs)

    def truncated(self, cutoff: float | None) -> BlockMetric:
        """The blocks of pairs at most ``cutoff`` angstrom apart (None: all of them)."""
        if cutoff is None:
            return self
        if self.cutoff is not None and cutoff > self.cutoff:
            cutoff = self.cutoff
        kept = int(np.searchsorted(self.distances, cutoff, side="right"))
        stop = int(self.block_starts()[kept])
        return BlockMetric(
            self.offsets,
            self.pairs[:kept],
            self.distances[:kept],
            self.values[:stop],
            self.norm,
            float(cutoff),
        )

    def blocks(self) -> list[tuple[int, int, np.ndarray]]:
        """The blocks as (i, j, S[i, j]) with S[i, j] of shape (n_i, n_j)."""
        sizes = np.diff(self.offsets)
        starts = self.block_starts()
        return [
            (int(i), int(j), self.values[starts[k] : starts[k + 1]].reshape(sizes[i], sizes[j]))
            for k, (i, j) in enumerate(self.pairs)
        ]

    def to_dense(self) -> np.ndarray:
        """The dense symmetric S (dropped pairs are zero)."""
        out = np.zeros((self.n_functions, self.n_functions))
        self.fill_dense(out)
        return out

    def fill_dense(self, out: np.ndarray) -> None:
        """Write the blocks, and their transposes, into the dense matrix ``out``."""
        offsets = self.offsets
        for i, j, block in self.blocks():
            rows = slice(offsets[i], offsets[i + 1])
            columns = slice(offsets[j], offsets[j + 1])
            out[rows, columns] = block
            out[columns, rows] = block.T

    def quadratic(self, vector: np.ndarray) -> float:
        """``v^T S v`` from the blocks."""
        offsets = self.offsets
        total = 0.0
        for i, j, block in self.blocks():
            value = (
                vector[offsets[i] : offsets[i + 1]] @ block @ vector[offsets[j] : offsets[j + 1]]
            )
            total += value if i == j else 2.0 * value
        return float(total)

    def cutoff_error(self, coefficients: np.ndarray) -> float:
        """Relative change of ``d^T S d`` by the dropped pairs: |d^T S_cut d / d^T S d - 1|.

        Zero without a cutoff; needs :attr:`norm` (the value with all pairs) otherwise.
        """
        if self.norm is None:
            raise ValueError("the metric's d^T S d with all pairs (norm) is not known")
        if self.norm == 0.0:
            return 0.0
        return abs(self.quadratic(coefficients) / self.norm - 1.0)


def block_starts(offsets: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Start of each pair's block in the flat values, and their total (length n_pairs + 1)."""
    sizes = np.diff(offsets)
    lengths = sizes[pairs[:, 0]] * sizes[pairs[:, 1]] if len(pairs) else np.zeros(0, int)
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
