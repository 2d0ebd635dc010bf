"""The HDF5 dataset (``dataset.h5``): one file per generate run, resumable and lazy.

Root attributes hold :class:`DatasetMetadata` (backend, target, basis layout, metric,
units), so training and evaluation never need the configuration or the backend that made
the data. Each structure is the group ``/structures/<index>``, ``index`` being its position
in the input structure list. :class:`DatasetWriter` adds entries crash-safely (a run killed
at any moment leaves the file as it was after its last complete entry) and refuses entries
with NaN, infinity or shapes that do not fit the layout. :class:`Dataset` reads lazily,
survives pickling into data-loader worker processes and checks what it reads, so that a
damaged file is a :class:`DatasetError` naming the file, the entry and the field. From
format 2 on, the metric is stored as atom-pair blocks sorted by distance
(:mod:`rhocore.qc.metric`), so the pairs within a cutoff are read without the rest. See
docs/datasets.rst.

The modules: :mod:`~rhocore.data.dataset.format` (what a file holds, its versions and the
checks every opening makes), :mod:`~rhocore.data.dataset.writer` and
:mod:`~rhocore.data.dataset.reader`.
"""

from rhocore.data.dataset.format import (
    FORMAT,
    FORMAT_VERSION,
    DatasetEntry,
    DatasetError,
    DatasetMetadata,
)
from rhocore.data.dataset.reader import Dataset
from rhocore.data.dataset.writer import DatasetWriter, is_being_written

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Dataset",
    "DatasetEntry",
    "DatasetError",
    "DatasetMetadata",
    "DatasetWriter",
    "is_being_written",
]
