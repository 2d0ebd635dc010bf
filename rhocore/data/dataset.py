"""The HDF5 dataset (``dataset.h5``): one file per generate run, resumable and lazy.

Root attributes hold :class:`DatasetMetadata` (backend, target, basis layout, metric,
units), so training and evaluation never need the configuration or the backend that made
the data. Each structure is the group ``/structures/<index>``, ``index`` being its position
in the input structure list. :class:`DatasetWriter` adds entries crash-safely: an entry is
built under ``/tmp/<index>``, moved into ``/structures`` and flushed, and only then
committed in the file's rollback journal (:mod:`rhocore.data.journal`), so a run killed at any
moment, even in the middle of HDF5's flush, leaves the file as it was after its last
complete entry; it refuses entries with NaN, infinity or shapes that do not fit the
layout. :class:`Dataset` reads lazily, survives pickling into data-loader worker processes
and checks what it reads, so that a damaged file is a :class:`DatasetError` naming the
file, the entry and the field. From format 2 on, the metric is stored as atom-pair blocks
sorted by distance (:mod:`rhocore.qc.metric`), so the pairs within a cutoff are read
without the rest. See docs/datasets.rst.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ase
import h5py
import numpy as np
from ase.data import chemical_symbols

from rhocore.data.journal import FileLockedError, JournaledFile, journal_path, roll_back
from rhocore.data.versions import Updater, upgrade
from rhocore.qc.backend import OrbitalData, RIFit
from rhocore.qc.basis import BasisLayout
from rhocore.qc.metric import BlockMetric

FORMAT = "rhocore-dataset"
FORMAT_VERSION = 2
#: First rhocore release that writes each format version, for "upgrade" messages.
FORMAT_RELEASES: dict[int, str] = {1: "0.1.0"}


def _update_v1_to_v2(attrs: dict[str, Any]) -> dict[str, Any]:
    """Format 2 stores the metric as atom-pair blocks; the root attributes are unchanged.

    Entries of a format-1 file hold the dense ``overlap``, which the reader cuts into
    blocks itself (see :meth:`Dataset.metric_blocks`).
    """
    return attrs


#: Upgrades of the root attributes of a format-N file to format N + 1, keyed by N.
UPDATES: dict[int, Updater] = {1: _update_v1_to_v2}
#: Metric values read at a time when a dense S is assembled from its blocks.
DENSE_CHUNK = 1 << 22

UNITS: dict[str, str] = {
    "positions": "angstrom",
    "cell": "angstrom",
    "orbital_energies": "eV",
    "fermi_level": "eV",
    "total_energy_eV": "eV",
    "coefficients": "bohr^-3 per (dimensionless) basis function",
    "integrals": "bohr^3 (integral of each basis function)",
    "overlap": "atomic units (bohr^3 for the overlap metric, Coulomb a.u. otherwise)",
    "overlap_distances": "angstrom (minimum image along periodic directions)",
    "projections": "atomic units (projections = overlap @ coefficients)",
    "weights": "dimensionless, k-weights included",
}

Status = Literal["done", "failed"]
STATUSES: tuple[str, ...] = ("done", "failed")
#: Group of the finished entries, one subgroup per structure index.
STRUCTURES_GROUP = "structures"
#: Group where a writer builds an entry before moving it into place; it exists only while
#: a writer has the file open (or was killed), and a subgroup in it is a partial entry.
STAGING_GROUP = "tmp"
#: Orbital arrays of a done entry: all of them, or none (fits imported without orbitals).
ORBITAL_ARRAYS: tuple[str, ...] = (
    "orbital_energies",
    "orbital_occupations",
    "k_weights",
    "weights",
)
#: HDF5 file-format version a writer uses. The 1.8 format checksums the file's metadata,
#: so damage reads as an error where the oldest format can crash HDF5 itself; HDF5 >= 1.8
#: reads it. (The 1.10 format adds a superblock flag that a killed writer leaves set, and
#: that locks readers out of the file until `h5clear` resets it.)
LIBVER = ("v108", "v108")
#: What h5py raises on a damaged file or object (it has no exception type of its own).
_READ_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, UnicodeDecodeError)


#: Root attributes that hold :class:`DatasetMetadata`.
METADATA_ATTRS: tuple[str, ...] = (
    "backend_name",
    "backend_version",
    "backend_options",
    "target_name",
    "target_options",
    "basis_layout",
    "metric_kind",
    "rhocore_version",
)


#: ``basis_layout`` of a dataset whose backend fixes its RI basis only in the first fit.
NO_LAYOUT = "null"


class DatasetError(ValueError):
    """A dataset file that cannot be read or extended as asked.

    ``field`` names the array or attribute of an entry that is damaged, where one is.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass
class DatasetMetadata:
    """What produced a dataset; every entry of one file shares it."""

    backend_name: str
    backend_version: str
    backend_options: dict[str, Any]
    target_name: str
    target_options: dict[str, Any]
    layout: BasisLayout | None
    metric_kind: str
    rhocore_version: str

    #: Fields that may differ when a run resumes a file (informational only).
    RESUME_IGNORES = ("rhocore_version",)

    def to_attrs(self) -> dict[str, str]:
        """The root attributes of a dataset file, as strings (JSON where structured)."""
        return {
            "backend_name": self.backend_name,
            "backend_version": self.backend_version,
            "backend_options": _json(self.backend_options),
            "target_name": self.target_name,
            "target_options": _json(self.target_options),
            "basis_layout": NO_LAYOUT if self.layout is None else self.layout.to_json(),
            "metric_kind": self.metric_kind,
            "rhocore_version": self.rhocore_version,
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], source: str = "dataset") -> DatasetMetadata:
        """Inverse of :meth:`to_attrs`; ``source`` names the file in errors."""
        missing = [name for name in METADATA_ATTRS if name not in attrs]
        if missing:
            raise DatasetError(
                f"{source} is a rhocore dataset without the root attributes {missing}"
            )
        text = {name: str(attrs[name]) for name in METADATA_ATTRS}

        def parsed(name: str, parse: Any) -> Any:
            try:
                return parse(text[name])
            except (ValueError, TypeError, AttributeError) as error:
                raise DatasetError(
                    f"{source}: root attribute '{name}' is damaged ({error}): {text[name]!r:.80}"
                ) from None

        return cls(
            backend_name=text["backend_name"],
            backend_version=text["backend_version"],
            backend_options=parsed("backend_options", _json_mapping),
            target_name=text["target_name"],
            target_options=parsed("target_options", _json_mapping),
            layout=None
            if text["basis_layout"] == NO_LAYOUT
            else parsed("basis_layout", BasisLayout.from_json),
            metric_kind=text["metric_kind"],
            rhocore_version=text["rhocore_version"],
        )

    def differences(self, other: DatasetMetadata) -> list[str]:
        """Names of the fields (other than :attr:`RESUME_IGNORES`) where ``other`` differs.

        A layout that one side does not know yet (``None``) differs from none.
        """
        mine, theirs = self.to_attrs(), other.to_attrs()
        ignored = set(self.RESUME_IGNORES)
        if self.layout is None or other.layout is None:
            ignored.add("basis_layout")
        return [name for name in mine if name not in ignored and mine[name] != theirs[name]]


@dataclass
class DatasetEntry:
    """One structure of a dataset: its fit and orbital data, or why it failed.

    ``weights`` are the target's W(a), shape of ``orbitals.energies``; ``total_energy``
    is in eV. A failed entry (``status="failed"``) has only ``atoms`` and ``reason``.
    Fits imported from other tools may lack orbital data: then ``orbitals`` and
    ``weights`` are None, and ``expected_integral`` says what the field integrates to
    when that is known (e.g. the electron count of a total density).
    """

    index: int
    atoms: ase.Atoms
    fit: RIFit | None
    orbitals: OrbitalData | None
    weights: np.ndarray | None
    total_energy: float | None
    scf_converged: bool
    status: str
    reason: str = ""
    expected_integral: float | None = None

    @classmethod
    def failed(cls, index: int, atoms: ase.Atoms, reason: str) -> DatasetEntry:
        """A structure that could not be computed, and why."""
        return cls(
            index=index,
            atoms=atoms,
            fit=None,
            orbitals=None,
            weights=None,
            total_energy=None,
            scf_converged=False,
            status="failed",
            reason=reason,
        )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _json_mapping(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


@contextmanager
def _reading(path: Path, what: str, field: str | None = None) -> Iterator[None]:
    """Turn whatever h5py raises on a damaged file into a :class:`DatasetError` naming ``what``."""
    try:
        yield
    except DatasetError:
        raise
    except _READ_ERRORS as error:
        raise DatasetError(
            f"{path}: {what} cannot be read ({type(error).__name__}: {error}); the file is "
            f"damaged. `rhocore dataset check {path}` lists what is broken.",
            field=field,
        ) from None


def _check_format(handle: h5py.File, path: Path) -> int:
    """The format version of an open file, or a :class:`DatasetError` saying what is wrong."""
    kind = handle.attrs.get("format")
    if kind != FORMAT:
        found = f"format attribute {kind!r}" if kind is not None else "no 'format' attribute"
        raise DatasetError(
            f"{path} is not a rhocore dataset: it has {found}, expected format = '{FORMAT}'. "
            "Datasets are written by `rhocore generate`."
        )
    if "format_version" not in handle.attrs:
        raise DatasetError(f"{path} is a rhocore dataset without a 'format_version' attribute")
    version = int(handle.attrs["format_version"])
    if version > FORMAT_VERSION:
        release = FORMAT_RELEASES.get(version) or handle.attrs.get("rhocore_version")
        needed = f"rhocore >= {release}" if release else "a newer rhocore"
        raise DatasetError(
            f"{path} has dataset format version {version}; this rhocore reads versions up "
            f"to {FORMAT_VERSION}. Upgrade to {needed} to read it."
        )
    return version


def _upgraded_attrs(handle: h5py.File, version: int, path: Path) -> dict[str, Any]:
    """Root attributes of a format-``version`` file, upgraded to :data:`FORMAT_VERSION`."""
    return upgrade(
        dict(handle.attrs),
        version,
        FORMAT_VERSION,
        UPDATES,
        f"{path} has dataset",
        DatasetError,
        f"; rhocore {FORMAT_RELEASES.get(version, 'of that time')} reads it",
    )


def _indices(handle: h5py.File, statuses: tuple[str, ...]) -> list[int]:
    return sorted(index for index, status in entry_statuses(handle).items() if status in statuses)


def entry_statuses(handle: h5py.File) -> dict[int, str]:
    """Status of every entry of an open dataset file, by index; a damaged one is an error."""
    path = Path(handle.filename)
    with _reading(path, f"group /{STRUCTURES_GROUP}"):
        group = handle.get(STRUCTURES_GROUP)
        if group is None:
            return {}
        statuses = {}
        for name in group:
            statuses[_entry_index(name, path)] = _entry_status(group[name], path, name)
        return statuses


def _entry_index(name: str, path: Path) -> int:
    if not name.isdigit():
        raise DatasetError(
            f"{path}: /{STRUCTURES_GROUP}/{name} is not a structure index; the file was "
            "edited by something other than rhocore"
        )
    return int(name)


def _entry_status(entry: h5py.Group | h5py.Dataset, path: Path, name: str) -> str:
    with _reading(path, f"structure {name}", "status"):
        status = entry.attrs.get("status") if isinstance(entry, h5py.Group) else None
        if status not in STATUSES:
            raise DatasetError(
                f"{path}: structure {name} has status {status!r}, not one of {STATUSES}; the "
                "entry is damaged",
                field="status",
            )
        return str(status)


class DatasetWriter:
    """Append entries to ``path`` (created if absent, resumed if it holds ``metadata``).

    Use as a context manager, and from one process only: HDF5 files take one writer.
    Failed entries count as finished, so a rerun does not retry them, unless
    ``retry_failed=True``: then :meth:`finished_indices` omits them and :meth:`write`
    replaces a failed entry with its new result.
    """

    def __init__(self, path: Path | str, metadata: DatasetMetadata, *, retry_failed: bool = False):
        self.path = Path(path)
        self.metadata = metadata
        self.retry_failed = retry_failed
        self._file: h5py.File | None = None
        self._journal: JournaledFile | None = None

    def __enter__(self) -> DatasetWriter:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the file or check an existing one; drop entries a crash left half-built."""
        if not self.path.exists():
            self._create()
        try:
            journal = JournaledFile(self.path)
        except FileLockedError:
            raise DatasetError(
                f"{self.path} is open in another process (a running `rhocore generate`, or a "
                "reader); a dataset takes one writer at a time, and no readers while written"
            ) from None
        try:
            handle = h5py.File(journal, "a", libver=LIBVER)
        except OSError as error:
            journal.close()
            raise DatasetError(
                f"{self.path} exists but is not an HDF5 file ({error}); use a new output path"
            ) from error
        try:
            with _reading(self.path, "the dataset"):
                self._check_existing(handle)
                if STAGING_GROUP in handle:
                    del handle[STAGING_GROUP]
                handle.create_group(STAGING_GROUP)
                handle.flush()
                journal.commit()
        except BaseException:
            handle.close()
            journal.close()
            raise
        self._file, self._journal = handle, journal

    def _create(self) -> None:
        """Write a complete empty dataset next to ``path``, then rename it into place."""
        partial = self.path.with_name(self.path.name + ".partial")
        with h5py.File(partial, "w", libver=LIBVER) as handle:
            handle.attrs["format"] = FORMAT
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["units"] = _json(UNITS)
            for name, value in self.metadata.to_attrs().items():
                handle.attrs[name] = value
            handle.create_group(STRUCTURES_GROUP)
        os.replace(partial, self.path)

    def close(self) -> None:
        """Drop the empty staging group, flush and close the file.

        A staging group in a file nobody writes thus tells of a writer that was killed.
        """
        if self._file is not None and self._journal is not None:
            handle, self._file = self._file, None
            journal, self._journal = self._journal, None
            try:
                if STAGING_GROUP in handle and not len(handle[STAGING_GROUP]):
                    del handle[STAGING_GROUP]
                handle.close()
            except BaseException:
                handle.close()
                journal.abandon()  # the next opening rolls back to the last entry
                raise
            journal.close()

    def _check_existing(self, handle: h5py.File) -> None:
        version = _check_format(handle, self.path)
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"{self.path} has dataset format version {version}; this rhocore writes "
                f"version {FORMAT_VERSION} and does not extend older files. Write to a new "
                "output path."
            )
        stored = DatasetMetadata.from_attrs(handle.attrs, str(self.path))
        if self.metadata.layout is None:
            self.metadata.layout = stored.layout
        differing = stored.differences(self.metadata)
        if differing:
            mine, theirs = stored.to_attrs(), self.metadata.to_attrs()
            details = "; ".join(
                f"{name}: file has {mine[name]}, this run has {theirs[name]}" for name in differing
            )
            raise DatasetError(
                f"{self.path} was generated with a different {', '.join(differing)} "
                f"({details}). One dataset holds one backend, target and basis setting: use "
                "a new output path, or restore the original settings to resume this file."
            )

    @property
    def file(self) -> h5py.File:
        """The open HDF5 file (error outside the ``with`` block)."""
        if self._file is None:
            raise DatasetError(f"DatasetWriter for {self.path} is not open; use it in `with`")
        return self._file

    def done_indices(self) -> set[int]:
        """Indices of structures computed successfully."""
        return set(_indices(self.file, ("done",)))

    def failed_indices(self) -> set[int]:
        """Indices of structures recorded as failed."""
        return set(_indices(self.file, ("failed",)))

    def finished_indices(self) -> set[int]:
        """Indices a rerun skips: done ones, and failed ones unless ``retry_failed``."""
        return self.done_indices() if self.retry_failed else set(_indices(self.file, STATUSES))

    def write(self, entry: DatasetEntry) -> None:
        """Add ``entry`` atomically; existing entries are never overwritten.

        The one exception: with ``retry_failed``, a failed entry gives way to a new one.
        """
        _check_entry(entry, self.metadata, self.path)
        handle = self.file
        name = str(int(entry.index))
        final = f"{STRUCTURES_GROUP}/{name}"
        replaces_failed = False
        if final in handle:
            replaces_failed = self.retry_failed and handle[final].attrs["status"] == "failed"
            if not replaces_failed:
                raise DatasetError(
                    f"structure {name} is already in {self.path} (status "
                    f"{handle[final].attrs['status']}); entries are never overwritten"
                )
        staging = f"{STAGING_GROUP}/{name}"
        if staging in handle:
            del handle[staging]
        _write_group(handle.create_group(staging), entry)
        if entry.fit is not None and self.metadata.layout != entry.fit.layout:
            self.metadata.layout = _merged_layout(self.metadata.layout, entry, self.path)
            handle.attrs["basis_layout"] = self.metadata.layout.to_json()
        if replaces_failed:
            del handle[final]
        handle.move(staging, final)
        handle.flush()
        assert self._journal is not None  # set together with self._file
        self._journal.commit()


def is_being_written(path: Path | str) -> bool:
    """True when another process holds the HDF5 write lock of ``path`` (a running writer).

    On file systems without locks (some network file systems) this is always False.
    """
    try:
        h5py.File(path, "r").close()
    except OSError as error:
        return _is_lock_error(error)
    return False


def _finish_killed_write(path: Path) -> None:
    """Roll back what a killed writer left half-done, so the file reads as at its last entry.

    Nothing happens while a writer is alive (it holds the lock) or when none was killed.
    """
    try:
        roll_back(path)
    except PermissionError:
        raise DatasetError(
            f"{path}: a writer was killed while changing it and left {journal_path(path)}, "
            "which must be applied before the file can be read, but this process may not "
            "write the file. Run `rhocore dataset info` on it as its owner."
        ) from None


def _is_lock_error(error: OSError) -> bool:
    """True when HDF5 refused a file because another process holds its lock."""
    return "unable to lock file" in str(error)


def _check_entry(entry: DatasetEntry, metadata: DatasetMetadata, path: Path) -> None:
    """Refuse an entry that would be stored damaged: wrong shapes, NaN or infinity."""
    where = f"structure {entry.index} for {path}"
    if entry.status not in STATUSES:
        raise DatasetError(f"{where}: status {entry.status!r} is not one of {STATUSES}")
    atoms = entry.atoms
    for name, value in (("positions", atoms.positions), ("cell", atoms.cell.array)):
        if not np.all(np.isfinite(value)):
            raise DatasetError(f"{where}: the structure's {name} hold NaN or infinity")
    if entry.status == "failed":
        if not entry.reason:
            raise DatasetError(f"{where}: a failed entry needs a reason")
        return
    fit = entry.fit
    if fit is None:
        raise DatasetError(f"{where}: a done entry needs a fit")
    if (entry.orbitals is None) != (entry.weights is None):
        raise DatasetError(f"{where}: orbitals and weights come together, or not at all")
    _merged_layout(metadata.layout, entry, path)
    if fit.metric_kind != metadata.metric_kind:
        raise DatasetError(
            f"{where}: the fit uses the {fit.metric_kind} metric, the dataset "
            f"the {metadata.metric_kind} metric"
        )
    try:
        size = fit.layout.size(atoms.numbers)
    except ValueError as error:
        raise DatasetError(f"{where}: {error}") from None
    if np.shape(fit.coefficients) != (size,) or np.shape(fit.metric) != (size, size):
        raise DatasetError(
            f"{where}: coefficients {np.shape(fit.coefficients)} and metric "
            f"{np.shape(fit.metric)} do not match the {size} basis functions of the layout"
        )
    arrays = {"coefficients": fit.coefficients, "overlap": fit.metric}
    arrays |= {"projections": fit.projections, "integrals": fit.integrals}
    if entry.orbitals is not None:
        orbitals = entry.orbitals
        if np.shape(entry.weights) != orbitals.energies.shape:
            raise DatasetError(f"{where}: weights and orbital energies differ in shape")
        arrays |= {"orbital_energies": orbitals.energies, "weights": entry.weights}
        arrays |= {"orbital_occupations": orbitals.occupations, "k_weights": orbitals.k_weights}
    for name in ("projections", "integrals"):
        if np.shape(arrays[name]) != (size,):
            raise DatasetError(
                f"{where}: {name} have shape {np.shape(arrays[name])}, the layout gives ({size},)"
            )
    for name, value in arrays.items():
        if not finite_or_unknown(name, value):
            raise DatasetError(f"{where}: {name} hold NaN or infinity; refusing to store them")


def finite_or_unknown(name: str, values: np.ndarray) -> bool:
    """True when every value is finite, or ``name`` is the integrals and all are NaN.

    Codes that do not compute the integrals of their basis functions (FHI-aims) store
    them as all-NaN: "not known".
    """
    values = np.asarray(values, dtype=float)
    if name == "integrals" and values.size and np.all(np.isnan(values)):
        return True
    return bool(np.all(np.isfinite(values)))


def _merged_layout(layout: BasisLayout | None, entry: DatasetEntry, path: Path) -> BasisLayout:
    """The dataset layout extended by the elements of ``entry``'s fit, or an error on a clash."""
    assert entry.fit is not None
    if layout is None:
        return entry.fit.layout
    try:
        return layout.merged(entry.fit.layout)
    except ValueError as error:
        raise DatasetError(f"structure {entry.index} for {path}: {error}") from None


def _write_group(group: h5py.Group, entry: DatasetEntry) -> None:
    atoms = entry.atoms
    group["numbers"] = np.asarray(atoms.numbers, dtype=np.int64)
    group["positions"] = np.asarray(atoms.positions, dtype=float)
    group["cell"] = np.asarray(atoms.cell.array, dtype=float)
    group["pbc"] = np.asarray(atoms.pbc, dtype=bool)
    group.attrs["status"] = entry.status
    group.attrs["reason"] = entry.reason
    group.attrs["scf_converged"] = bool(entry.scf_converged)
    if entry.total_energy is not None:
        group.attrs["total_energy_eV"] = float(entry.total_energy)
    if entry.status != "done":
        return
    fit, orbitals = entry.fit, entry.orbitals
    assert fit is not None
    group["coefficients"] = fit.coefficients
    blocks = BlockMetric.from_dense(fit.metric, fit.layout, atoms, coefficients=fit.coefficients)
    group["overlap_pairs"] = blocks.pairs.astype(np.int32)
    group["overlap_distances"] = blocks.distances
    group["overlap_blocks"] = blocks.values
    group.attrs["metric_norm"] = blocks.norm
    group["projections"] = fit.projections
    group["integrals"] = fit.integrals
    if orbitals is not None:
        group["orbital_energies"] = orbitals.energies
        group["orbital_occupations"] = orbitals.occupations
        group["k_weights"] = orbitals.k_weights
        group["weights"] = np.asarray(entry.weights, dtype=float)
        if orbitals.fermi_level is not None:
            group.attrs["fermi_level"] = float(orbitals.fermi_level)
        if orbitals.vacuum_level is not None:
            group.attrs["vacuum_level"] = float(orbitals.vacuum_level)
    state = group.create_group("field_state")
    for key, value in fit.field_state.items():
        state[key] = np.asarray(value)
    group.attrs["fitted_integral"] = fit.fitted_integral
    expected = entry.expected_integral
    if expected is None and entry.weights is not None:
        expected = float(np.sum(entry.weights))
    if expected is not None:
        group.attrs["expected_integral"] = float(expected)


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
            _finish_killed_write(self.path)
            try:
                handle = h5py.File(self.path, "r", locking=None if self.locking else False)
            except OSError as error:
                if _is_lock_error(error):
                    raise DatasetError(
                        f"{self.path} is being written by another process (a running `rhocore "
                        "generate`?); wait for it to finish, or look at it with `rhocore "
                        "dataset info`"
                    ) from None
                raise DatasetError(f"{self.path} is not a readable HDF5 file: {error}") from error
            try:
                with _reading(self.path, "the root attributes"):
                    version = self._version = _check_format(handle, self.path)
                    self._attrs = _upgraded_attrs(handle, version, self.path)
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
            return _json_mapping(self._attrs.get("units", "{}"))
        except ValueError as error:
            raise DatasetError(
                f"{self.path}: root attribute 'units' is damaged ({error})"
            ) from None

    def indices(self, status: Literal["done", "failed", "all"] = "done") -> list[int]:
        """Sorted indices of the entries with ``status`` (``"all"``: done and failed)."""
        statuses = STATUSES if status == "all" else (status,)
        return _indices(self.file, statuses)

    def __len__(self) -> int:
        return len(self.indices())

    def summary(self) -> dict[str, int]:
        """Number of entries by status."""
        return {status: len(self.indices(status)) for status in STATUSES}  # type: ignore[arg-type]

    def entry_names(self) -> list[str]:
        """Names of the groups in /structures as stored (structure indices, unless damaged)."""
        with _reading(self.path, f"group /{STRUCTURES_GROUP}"):
            group = self.file.get(STRUCTURES_GROUP)
            return [] if group is None else list(group)

    def staging_entries(self) -> list[str] | None:
        """Partial entries in the staging group; None when the file has none.

        Writers drop the empty group on a clean close, so a list (even empty) means a
        writer has the file open now, or was killed.
        """
        with _reading(self.path, f"group /{STAGING_GROUP}"):
            group = self.file.get(STAGING_GROUP)
            return None if group is None else sorted(group)

    def _group(self, index: int, *, done: bool = True) -> h5py.Group:
        name = f"{STRUCTURES_GROUP}/{int(index)}"
        with _reading(self.path, f"structure {index}"):
            group = self.file.get(name)
            if group is None:
                raise DatasetError(f"structure {index} is not in {self.path}")
            status = _entry_status(group, self.path, str(index))
            if done and status != "done":
                reason = group.attrs.get("reason", "no reason recorded")
                raise DatasetError(f"structure {index} of {self.path} failed: {reason}")
            return group

    def _array(
        self, group: h5py.Group, index: int, name: str, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """Array ``name`` of entry ``index``, checked to have ``shape`` where given."""
        where = f"{self.path}: structure {index}"
        with _reading(self.path, f"structure {index}, field '{name}'", name):
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
        with _reading(self.path, f"structure {index}, field 'overlap_blocks'", "overlap_blocks"):
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
            with _reading(
                self.path, f"structure {index}, field 'overlap_blocks'", "overlap_blocks"
            ):
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

        with _reading(
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
        with _reading(self.path, f"structure {index}, field 'overlap_pairs'", "overlap_pairs"):
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
        with _reading(self.path, f"structure {index}, field 'overlap_blocks'", "overlap_blocks"):
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
        with _reading(self.path, f"structure {index}, attributes", "attributes"):
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
        with _reading(self.path, f"structure {index}, field 'field_state'", "field_state"):
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
