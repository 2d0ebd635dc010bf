"""Batches of training structures bounded by atoms (or by structures).

:class:`AtomBatchSampler` groups structures into batches of at most ``batch_atoms``
atoms, so that the memory of one training step is bounded by atoms, not by structures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch.utils.data


def atom_batches(order: Sequence[int], n_atoms: Sequence[int], batch_atoms: int) -> list[list[int]]:
    """Consecutive structures of ``order`` grouped into batches of at most ``batch_atoms`` atoms.

    A structure with more atoms than that is a batch of its own.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    atoms = 0
    for index in order:
        size = int(n_atoms[index])
        if current and atoms + size > batch_atoms:
            batches.append(current)
            current, atoms = [], 0
        current.append(int(index))
        atoms += size
    if current:
        batches.append(current)
    return batches


class AtomBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Seeded random batches of structures: ``batch_size`` structures, or up to
    ``batch_atoms`` atoms when that is set (a larger structure alone).

    The order of an epoch depends on ``seed`` and the epoch set by :meth:`set_epoch` only.
    """

    def __init__(
        self,
        n_atoms: Sequence[int],
        batch_size: int,
        batch_atoms: int | None = None,
        *,
        seed: int = 0,
        shuffle: bool = True,
    ):
        self.n_atoms = [int(count) for count in n_atoms]
        self.batch_size = batch_size
        self.batch_atoms = batch_atoms
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch."""
        count = len(self.n_atoms)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(count).tolist()
        else:
            order = list(range(count))
        if self.batch_atoms is not None:
            return atom_batches(order, self.n_atoms, self.batch_atoms)
        return [
            order[start : start + self.batch_size] for start in range(0, count, self.batch_size)
        ]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
