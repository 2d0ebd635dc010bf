"""Reading training structures from a dataset file in data-loader workers.

:class:`StructureData` is a torch dataset over entries of a ``dataset.h5``: each item is
read when asked for, and each worker process opens the HDF5 file itself (the
:class:`~rhocore.data.dataset.reader.Dataset` it holds reopens after pickling or forking), so
that ``num_workers`` processes read, and cut metrics into blocks, in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch.utils.data

from rhocore.data.dataset import Dataset
from rhocore.data.samples import Sample
from rhocore.parallel.progress import progress_bar


class StructureData(torch.utils.data.Dataset):
    """Entries ``indices`` of a dataset as :class:`~rhocore.data.samples.Sample`, read lazily.

    Metrics come as atom-pair blocks within ``metric_cutoff`` angstrom (None: all pairs).
    """

    def __init__(
        self,
        dataset: Dataset | Path | str,
        indices: Sequence[int],
        metric_cutoff: float | None = None,
    ):
        self.dataset = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
        self.indices = [int(index) for index in indices]
        self.metric_cutoff = metric_cutoff

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Sample:
        index = self.indices[position]
        return Sample(
            atoms=self.dataset.atoms(index),
            coefficients=self.dataset.coefficients(index),
            metric=self.dataset.metric_blocks(index, self.metric_cutoff),
        )


def _one(sample: Sample) -> Sample:
    """Collation of single items: keep the sample as it is (no tensor conversion)."""
    return sample


def load_samples(
    dataset: Dataset | Path | str,
    indices: Sequence[int],
    *,
    metric_cutoff: float | None = None,
    num_workers: int = 0,
    progress: bool = False,
) -> list[Sample]:
    """Read entries ``indices`` (in that order), with ``num_workers`` worker processes."""
    data = StructureData(dataset, indices, metric_cutoff)
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, num_workers=num_workers, collate_fn=_one
    )
    return list(
        progress_bar(loader, desc="reading", unit="structure", disable=not progress or not data)
    )
