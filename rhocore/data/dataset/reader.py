"""Reading a dataset file: lazily, from any process, checking what it reads.

:class:`Dataset` opens the file on first access and again in every process it is pickled
into (data-loader workers). Every read is checked against the basis layout, so a damaged
file is a :class:`~rhocore.data.dataset.format.DatasetError` naming the file, the entry and
the field. A format-2 metric is read as the atom-pair blocks within a cutoff, without the
rest; a format-1 entry's dense matrix is cut into blocks.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Any, Literal

import ase
import h5py
import numpy as np
from ase.data import chemical_symbols

from rhocore.data.dataset.format import (
    FORMAT_VERSION,
    ORBITAL_ARRAYS,
    STAGING_GROUP,
    STATUSES,
    STRUCTURES_GROUP,
    DatasetEntry,
    DatasetError,
    DatasetMetadata,
    check_format,
    entry_status,
    indices_with_status,
    json_mapping,
    reading,
    upgraded_attrs,
)
from rhocore.data.dataset.writer import finish_killed_write, is_lock_error
from rhocore.qc.backend import OrbitalData, RIFit
from rhocore.qc.basis import BasisLayout
from rhocore.qc.metric import BlockMetric

#: Metric values read at a time when a dense S is assembled from its blocks.
DENSE_CHUNK = 1 << 22


class Dataset:
    """Read-only, lazy view of a dataset file.

    The HDF5 file opens on first access and again in every process this object is
    pickled into (data-loader workers), never sharing a handle across processes.
    ``locking=False`` reads a file another process is writing (for inspection: what it
    reads may change under it); by default HDF5's file lock refuses that.
    Every read checks shapes against the basis layout, so a damaged entry is a
    :class:`DatasetError` naming the file, the entry and the field.
    """

    def __init__(self, path: Path | str, *, locking: bool = True):
        self.path = Path(path)
        self.locking = locking
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._metadata: DatasetMetadata | None = None
        self._attrs: dict[str, Any] = {}
        self._version = FORMAT_VERSION
        if not self.path.is_file():
            raise DatasetError(f"dataset file {self.path} does not exist")

    @property
    def file(self) -> h5py.File:
        """The open HDF5 file of this process."""
        if self._file is None or self._pid != os.getpid():
            finish_killed_write(self.path)
            try:
                handle = h5py.File(self.path, "r", locking=None if self.locking else False)
            except OSError as error:
                if is_lock_error(error):
                    raise DatasetError(
                        f"{self.path} is being written by another process (a running `rhocore "
                        "generate`?); wait for it to finish, or look at it with `rhocore "
                        "dataset info`"
                    ) from None
                raise DatasetError(f"{self.path} is not a readable HDF5 file: {error}") from error
            try:
                with reading(self.path, "the root attributes"):
                    version = self._version = check_format(handle, self.path)
                    self._attrs = upgraded_attrs(handle, version, self.path)
                    self._metadata = DatasetMetadata.from_attrs(self._attrs, str(self.path))
            except BaseException:
                handle.close()
                raise
            self._file, self._pid = handle, os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        """Close the file; the next access reopens it."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    @property
    def metadata(self) -> DatasetMetadata:
        """Backend, target, basis layout and metric of every entry."""
        _ = self.file
        assert self._metadata is not None
        return self._metadata

    @property
    def format_version(self) -> int:
        """Format version of the file as stored (it is read as the current one)."""
        _ = self.file
        return self._version

    @property
    def units(self) -> dict[str, str]:
        """Units of the stored quantities."""
        _ = self.file
        try:
            return json_mapping(self._attrs.get("units", "{}"))
        except ValueError as error:
            raise DatasetError(
                f"{self.path}: root attribute 'units' is damaged ({error})"
            ) from None

    def indices(self, status: Literal["done", "failed", "all"] = "done") -> list[int]:
        """Sorted indices of the entries with ``status`` (``"all"``: done and failed)."""
        statuses = STATUSES if status == "all" else (status,)
        return indices_with_status(self.file, statuses)

    def __len__(self) -> int:
        return len(self.indices())

    def summary(self) -> dict[str, int]:
        """Number of entries by status."""
        return {status: len(self.indices(status)) for status in STATUSES}  # type: ignore[arg-type]

    def entry_names(self) -> list[str]:
        """Names of the groups in /structures as stored (structure indices, unless damaged)."""
        with reading(self.path, f"group /{STRUCTURES_GROUP}"):
            group = self.file.get(STRUCTURES_GROUP)
            return [] if group is None else list(group)

    def staging_entries(self) -> list[str] | None:
        """Partial entries in the staging group; None when the file has none.

        Writers drop the empty group on a clean close, so a list (even empty) means a
        writer has the file open now, or was killed.
        """
        with reading(self.path, f"group /{STAGING_GROUP}"):
            group = self.file.get(STAGING_GROUP)
            return None if group is None else sorted(group)

    def _group(self, index: int, *, done: bool = True) -> h5py.Group:
        name = f"{STRUCTURES_GROUP}/{int(index)}"
        with reading(self.path, f"structure {index}"):
            group = self.file.get(name)
            if group is None:
                raise DatasetError(f"structure {index} is not in {self.path}")
            status = entry_status(group, self.path, str(index))
            if done and status != "done":
                reason = group.attrs.get("reason", "no reason recorded")
                raise DatasetError(f"structure {index} of {self.path} failed: {reason}")
            return group

    def _array(
        self, group: h5py.Group, index: int, name: str, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """Array ``name`` of entry ``index``, checked to have ``shape`` where given."""
        where = f"{self.path}: structure {index}"
        with reading(self.path, f"structure {index}, field '{name}'", name):
            item = group.get(name)
            if not isinstance(item, h5py.Dataset):
                found = "missing" if item is None else "a group, not an array"
                raise DatasetError(
                    f"{where}: field '{name}' is {found}; the entry is damaged", field=name
                )
            value = np.asarray(item[()])
        if shape is not None and value.shape != shape:
            raise DatasetError(
                f"{where}: field '{name}' has shape {value.shape}, expected {shape}; the entry "
                "is damaged",
                field=name,
            )
        return value

    def atoms(self, index: int) -> ase.Atoms:
        """The structure of entry ``index`` (positions in angstrom)."""
        return self._atoms(self._group(index, done=False), index)

    def _atoms(self, group: h5py.Group, index: int) -> ase.Atoms:
        numbers = self._array(group, index, "numbers")
        known = numbers.ndim == 1 and numbers.dtype.kind in "iu"
        if not known or not np.all((numbers > 0) & (numbers < len(chemical_symbols))):
            raise DatasetError(
                f"{self.path}: structure {index}: field 'numbers' must hold atomic numbers, "
                f"found {numbers.dtype} of shape {numbers.shape}: {numbers!r:.60}; the entry "
                "is damaged",
                field="numbers",
            )
        return ase.Atoms(
            numbers=numbers,
            positions=self._array(group, index, "positions", (len(numbers), 3)),
            cell=self._array(group, index, "cell", (3, 3)),
            pbc=self._array(group, index, "pbc", (3,)),
        )

    def expected_integral(self, index: int) -> float | None:
        """What the field of entry ``index`` integrates to, if recorded (for a total
        density: the electron count)."""
        value = self._group(index).attrs.get("expected_integral")
        return None if value is None else float(value)

    def _size(self, group: h5py.Group, index: int) -> int:
        """Number of basis functions of entry ``index`` by the dataset's layout."""
        numbers = self._atoms(group, index).numbers
        layout = self.metadata.layout
        if layout is None:
            raise DatasetError(
                f"{self.path} has done entries but no basis layout; the file is damaged"
            )
        try:
            return layout.size(numbers)
        except ValueError as error:
            raise DatasetError(f"{self.path}: structure {index}: {error}") from None

    def coefficients(self, index: int) -> np.ndarray:
        """RI coefficients d of entry ``index`` in canonical order (bohr^-3)."""
        group = self._group(index)
        return self._array(group, index, "coefficients", (self._size(group, index),))

    def overlap(self, index: int) -> np.ndarray:
        """Dense metric matrix S of entry ``index`` (overlap or Coulomb, see ``metric_kind``)."""
        group = self._group(index)
        if self.format_version == 1:
            size = self._size(group, index)
            return self._array(group, index, "overlap", (size, size))
        return self._dense_metric(group, index)

    def metric_blocks(self, index: int, cutoff: float | None = None) -> BlockMetric:
        """Metric of entry ``index`` as the blocks of atom pairs within ``cutoff`` angstrom.

        ``cutoff=None`` keeps every pair (exactly the stored S). Only the pairs kept are
        read from a format-2 file; a format-1 entry's dense matrix is cut into blocks.
        The result knows ``d^T S d`` with every pair, for :meth:`BlockMetric.cutoff_error`.
        """
        group = self._group(index)
        if self.format_version == 1:
            size = self._size(group, index)
            return BlockMetric.from_dense(
                self._array(group, index, "overlap", (size, size)),
                self._layout(index),
                self._atoms(group, index),
                cutoff,
                self._array(group, index, "coefficients", (size,)),
            )
        return self._blocks(group, index, cutoff)

    def _layout(self, index: int) -> BasisLayout:
        layout = self.metadata.layout
        if layout is None:
            raise DatasetError(
                f"{self.path} has done entries but no basis layout; the file is damaged"
            )
        return layout

    def _dataset(self, group: h5py.Group, index: int, name: str, kind: str) -> h5py.Dataset:
        """The stored array ``name`` of entry ``index`` (not read), of dtype kind ``kind``."""
        where = f"{self.path}: structure {index}"
        item = group.get(name)
        if not isinstance(item, h5py.Dataset):
            found = "missing" if item is None else "a group, not an array"
            raise DatasetError(
                f"{where}: field '{name}' is {found}; the entry is damaged", field=name
            )
        if item.dtype.kind not in kind:
            raise DatasetError(
                f"{where}: field '{name}' holds {item.dtype}, not numbers; the entry is damaged",
                field=name,
            )
        return item

    def _blocks(self, group: h5py.Group, index: int, cutoff: float | None) -> BlockMetric:
        """The stored atom-pair blocks of entry ``index`` within ``cutoff`` (format 2)."""
        metric, stored = self._stored_blocks(group, index, cutoff)
        with reading(self.path, f"structure {index}, field 'overlap_blocks'", "overlap_blocks"):
            metric.values = np.asarray(stored[: metric.block_starts()[-1]], dtype=float)
        return metric

    def _dense_metric(self, group: h5py.Group, index: int) -> np.ndarray:
        """The dense S of a format-2 entry, its blocks read a few million values at a time."""
        metric, stored = self._stored_blocks(group, index, None)
        out = np.zeros((metric.n_functions,) * 2)
        starts = metric.block_starts()
        step = max(1, len(metric.pairs) * DENSE_CHUNK // max(int(starts[-1]), 1))
        for first in range(0, len(metric.pairs), step):
            last = min(first + step, len(metric.pairs))
            with reading(self.path, f"structure {index}, field 'overlap_blocks'", "overlap_blocks"):
                values = np.asarray(stored[starts[first] : starts[last]], dtype=float)
            chunk = BlockMetric(metric.offsets, metric.pairs[first:last], np.zeros(0), values)
            chunk.fill_dense(out)
        return out

    def _stored_blocks(
        self, group: h5py.Group, index: int, cutoff: float | None
    ) -> tuple[BlockMetric, h5py.Dataset]:
        """The checked pairs within ``cutoff`` (values not read yet) and the stored values."""
        atoms = self._atoms(group, index)
        self._size(group, index)
        offsets = self._layout(index).atom_offsets(atoms.numbers)
        n_atoms = len(atoms)
        n_pairs = n_atoms * (n_atoms + 1) // 2
        where = f"{self.path}: structure {index}"

        def damaged(name: str, what: str) -> DatasetError:
            return DatasetError(f"{where}: field '{name}' {what}; the entry is damaged", field=name)

        with reading(
            self.path, f"structure {index}, field 'overlap_distances'", "overlap_distances"
        ):
            stored = self._dataset(group, index, "overlap_distances", "f")
            if stored.shape != (n_pairs,):
                raise damaged(
                    "overlap_distances", f"has shape {stored.shape}, expected ({n_pairs},)"
                )
            kept = n_pairs if cutoff is None else bisect.bisect_right(stored, cutoff)
            distances = np.asarray(stored[:kept], dtype=float)
        if not np.all(np.isfinite(distances)) or np.any(np.diff(distances) < 0):
            raise damaged("overlap_distances", "is not a sorted list of finite distances")
        with reading(self.path, f"structure {index}, field 'overlap_pairs'", "overlap_pairs"):
            stored = self._dataset(group, index, "overlap_pairs", "iu")
            if stored.shape != (n_pairs, 2):
                raise damaged("overlap_pairs", f"has shape {stored.shape}, expected ({n_pairs}, 2)")
            pairs = np.asarray(stored[:kept], dtype=np.int64)
        first, second = pairs.T
        valid = np.all((first >= 0) & (first <= second) & (second < n_atoms))
        if not valid or len(np.unique(first * n_atoms + second)) != kept:
            raise damaged("overlap_pairs", f"must hold distinct atom pairs i <= j < {n_atoms}")
        if not np.array_equal(np.sort(first[first == second]), np.arange(n_atoms)):
            raise damaged("overlap_pairs", "lacks the pair of an atom with itself")
        with reading(self.path, f"structure {index}, field 'overlap_blocks'", "overlap_blocks"):
            stored = self._dataset(group, index, "overlap_blocks", "f")
            sizes = np.diff(offsets)
            total = int((sizes.sum() ** 2 + np.sum(sizes**2)) // 2)
            if stored.shape != (total,):
                raise damaged("overlap_blocks", f"has shape {stored.shape}, expected ({total},)")
            norm = group.attrs.get("metric_norm")
        if not isinstance(norm, (float, np.floating)):
            raise DatasetError(
                f"{where}: attribute 'metric_norm' is missing or not a number; the entry is "
                "damaged",
                field="metric_norm",
            )
        empty = np.zeros(0)
        return BlockMetric(offsets, pairs, distances, empty, float(norm), cutoff), stored

    def entry(self, index: int) -> DatasetEntry:
        """Everything stored for entry ``index``, done or failed."""
        group = self._group(index, done=False)
        with reading(self.path, f"structure {index}, attributes", "attributes"):
            attrs = dict(group.attrs)
            total = attrs.get("total_energy_eV")
            expected = attrs.get("expected_integral")
            entry = DatasetEntry(
                index=int(index),
                atoms=self._atoms(group, index),
                fit=None,
                orbitals=None,
                weights=None,
                total_energy=None if total is None else float(total),
                scf_converged=bool(attrs.get("scf_converged", False)),
                status=str(attrs["status"]),
                reason=str(attrs.get("reason", "")),
                expected_integral=None if expected is None else float(expected),
            )
        if entry.status != "done":
            return entry
        entry.fit = self._fit(group, index)
        present = [name for name in ORBITAL_ARRAYS if name in group]
        if not present:
            return entry
        if len(present) != len(ORBITAL_ARRAYS):
            missing = sorted(set(ORBITAL_ARRAYS) - set(present))
            raise DatasetError(
                f"{self.path}: structure {index} has orbital data without {missing}; the entry "
                "is damaged",
                field=missing[0],
            )
        arrays = {
            name: self._array(group, index, name)
            for name in ("orbital_energies", "orbital_occupations", "weights")
        }
        shape = self._orbital_shape(arrays, index)
        fermi, vacuum = attrs.get("fermi_level"), attrs.get("vacuum_level")
        entry.orbitals = OrbitalData(
            energies=arrays["orbital_energies"],
            occupations=arrays["orbital_occupations"],
            k_weights=self._array(group, index, "k_weights", (shape[1],)),
            fermi_level=None if fermi is None else float(fermi),
            vacuum_level=None if vacuum is None else float(vacuum),
        )
        entry.weights = arrays["weights"]
        return entry

    def _orbital_shape(self, arrays: dict[str, np.ndarray], index: int) -> tuple[int, ...]:
        """The (n_spin, n_k, n_state) shape the orbital arrays share; the odd one out is named."""
        shapes = [array.shape for array in arrays.values()]
        shape = max(shapes, key=shapes.count)  # two of three agree: the third is damaged
        for name, array in arrays.items():
            if array.shape != shape or len(shape) != 3:
                raise DatasetError(
                    f"{self.path}: structure {index}: field '{name}' has shape {array.shape}, "
                    f"the other orbital arrays {shape} (n_spin, n_k, n_state); the entry is "
                    "damaged",
                    field=name,
                )
        return shape

    def _fit(self, group: h5py.Group, index: int) -> RIFit:
        size = self._size(group, index)
        shapes = {"coefficients": (size,), "projections": (size,), "integrals": (size,)}
        if self.format_version == 1:
            shapes["overlap"] = (size, size)
        arrays = {name: self._array(group, index, name, shape) for name, shape in shapes.items()}
        if self.format_version > 1:
            arrays["overlap"] = self._dense_metric(group, index)
        with reading(self.path, f"structure {index}, field 'field_state'", "field_state"):
            state = group.get("field_state")
            if not isinstance(state, h5py.Group):
                raise DatasetError(
                    f"{self.path}: structure {index}: group 'field_state' is missing; the entry "
                    "is damaged",
                    field="field_state",
                )
            field_state = {key: value[()] for key, value in state.items()}
        metadata = self.metadata
        assert metadata.layout is not None
        return RIFit(
            coefficients=arrays["coefficients"],
            projections=arrays["projections"],
            metric=arrays["overlap"],
            metric_kind=metadata.metric_kind,  # type: ignore[arg-type]
            layout=metadata.layout,
            integrals=arrays["integrals"],
            field_state=field_state,
        )
