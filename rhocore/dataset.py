"""The HDF5 dataset (``dataset.h5``): one file per generate run, resumable and lazy.

Root attributes hold :class:`DatasetMetadata` (backend, target, basis layout, metric,
units), so training and evaluation never need the configuration or the backend that made
the data. Each structure is the group ``/structures/<index>``, ``index`` being its position
in the input structure list. :class:`DatasetWriter` adds entries crash-safely: an entry is
built under ``/tmp/<index>`` and moved into ``/structures`` in one link operation followed
by a flush, and HDF5 metadata is kept in memory until that flush, so a killed run leaves
only complete entries. :class:`Dataset` reads lazily and survives pickling into data-loader
worker processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ase
import h5py
import numpy as np

from rhocore.backend import OrbitalData, RIFit
from rhocore.basis import BasisLayout
from rhocore.versions import Updater, upgrade

FORMAT = "rhocore-dataset"
FORMAT_VERSION = 1
#: First rhocore release that writes each format version, for "upgrade" messages.
FORMAT_RELEASES: dict[int, str] = {1: "0.1.0"}
#: Upgrades of the root attributes of a format-N file to format N + 1, keyed by N.
UPDATES: dict[int, Updater] = {}

UNITS: dict[str, str] = {
    "positions": "angstrom",
    "cell": "angstrom",
    "orbital_energies": "eV",
    "fermi_level": "eV",
    "total_energy_eV": "eV",
    "coefficients": "bohr^-3 per (dimensionless) basis function",
    "integrals": "bohr^3 (integral of each basis function)",
    "overlap": "atomic units (bohr^3 for the overlap metric, Coulomb a.u. otherwise)",
    "projections": "atomic units (projections = overlap @ coefficients)",
    "weights": "dimensionless, k-weights included",
}

Status = Literal["done", "failed"]
STATUSES: tuple[str, ...] = ("done", "failed")
_STRUCTURES = "structures"
_TMP = "tmp"


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
    """A dataset file that cannot be read or extended as asked."""


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
        return cls(
            backend_name=text["backend_name"],
            backend_version=text["backend_version"],
            backend_options=json.loads(text["backend_options"]),
            target_name=text["target_name"],
            target_options=json.loads(text["target_options"]),
            layout=None
            if text["basis_layout"] == NO_LAYOUT
            else BasisLayout.from_json(text["basis_layout"]),
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
    group = handle.get(_STRUCTURES)
    if group is None:
        return []
    return sorted(int(name) for name, entry in group.items() if entry.attrs["status"] in statuses)


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
            handle = h5py.File(self.path, "a")
        except OSError as error:
            raise DatasetError(
                f"{self.path} exists but is not an HDF5 file ({error}); use a new output path"
            ) from error
        try:
            _allow_metadata_writes(handle, False)
            self._check_existing(handle)
            if _TMP in handle:
                del handle[_TMP]
            handle.create_group(_TMP)
            handle.flush()
            _allow_metadata_writes(handle, True)
        except BaseException:
            handle.close()
            raise
        self._file = handle

    def _create(self) -> None:
        """Write a complete empty dataset next to ``path``, then rename it into place."""
        partial = self.path.with_name(self.path.name + ".partial")
        with h5py.File(partial, "w") as handle:
            handle.attrs["format"] = FORMAT
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["units"] = _json(UNITS)
            for name, value in self.metadata.to_attrs().items():
                handle.attrs[name] = value
            handle.create_group(_STRUCTURES)
        os.replace(partial, self.path)

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

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
        final = f"{_STRUCTURES}/{name}"
        replaces_failed = False
        if final in handle:
            replaces_failed = self.retry_failed and handle[final].attrs["status"] == "failed"
            if not replaces_failed:
                raise DatasetError(
                    f"structure {name} is already in {self.path} (status "
                    f"{handle[final].attrs['status']}); entries are never overwritten"
                )
        staging = f"{_TMP}/{name}"
        _allow_metadata_writes(handle, False)
        try:
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
        finally:
            _allow_metadata_writes(handle, True)


def _allow_metadata_writes(handle: h5py.File, allowed: bool) -> None:
    """Let (or forbid) HDF5 write metadata to disk before an explicit flush.

    While an entry is built, its metadata must stay in memory: an eviction from a full
    metadata cache would write half of it to disk, and a crash at that moment could leave
    the file unreadable. Between entries, evictions keep the cache small.
    """
    config = handle.id.get_mdc_config()
    config.evictions_enabled = allowed
    if not allowed:  # HDF5 requires automatic resizing off while evictions are off
        config.incr_mode = 0  # H5C_incr__off
        config.flash_incr_mode = 0  # H5C_flash_incr__off
        config.decr_mode = 0  # H5C_decr__off
    handle.id.set_mdc_config(config)


def _check_entry(entry: DatasetEntry, metadata: DatasetMetadata, path: Path) -> None:
    where = f"structure {entry.index} for {path}"
    if entry.status not in STATUSES:
        raise DatasetError(f"{where}: status {entry.status!r} is not one of {STATUSES}")
    if entry.status == "failed":
        if not entry.reason:
            raise DatasetError(f"{where}: a failed entry needs a reason")
        return
    if entry.fit is None:
        raise DatasetError(f"{where}: a done entry needs a fit")
    if (entry.orbitals is None) != (entry.weights is None):
        raise DatasetError(f"{where}: orbitals and weights come together, or not at all")
    _merged_layout(metadata.layout, entry, path)
    if entry.fit.metric_kind != metadata.metric_kind:
        raise DatasetError(
            f"{where}: the fit uses the {entry.fit.metric_kind} metric, the dataset "
            f"the {metadata.metric_kind} metric"
        )
    size = entry.fit.layout.size(entry.atoms.numbers)
    if entry.fit.coefficients.shape != (size,) or entry.fit.metric.shape != (size, size):
        raise DatasetError(
            f"{where}: coefficients {entry.fit.coefficients.shape} and metric "
            f"{entry.fit.metric.shape} do not match the {size} basis functions of the layout"
        )
    if entry.orbitals is not None and np.shape(entry.weights) != entry.orbitals.energies.shape:
        raise DatasetError(f"{where}: weights and orbital energies differ in shape")


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
    group["overlap"] = fit.metric
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
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._metadata: DatasetMetadata | None = None
        self._attrs: dict[str, Any] = {}
        if not self.path.is_file():
            raise DatasetError(f"dataset file {self.path} does not exist")

    @property
    def file(self) -> h5py.File:
        """The open HDF5 file of this process."""
        if self._file is None or self._pid != os.getpid():
            try:
                handle = h5py.File(self.path, "r")
            except OSError as error:
                raise DatasetError(f"{self.path} is not a readable HDF5 file: {error}") from error
            try:
                version = _check_format(handle, self.path)
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
    def units(self) -> dict[str, str]:
        """Units of the stored quantities."""
        _ = self.file
        return json.loads(self._attrs.get("units", "{}"))

    def indices(self, status: Literal["done", "failed", "all"] = "done") -> list[int]:
        """Sorted indices of the entries with ``status`` (``"all"``: done and failed)."""
        statuses = STATUSES if status == "all" else (status,)
        return _indices(self.file, statuses)

    def __len__(self) -> int:
        return len(self.indices())

    def summary(self) -> dict[str, int]:
        """Number of entries by status."""
        return {status: len(self.indices(status)) for status in STATUSES}  # type: ignore[arg-type]

    def _group(self, index: int, *, done: bool = True) -> h5py.Group:
        group = self.file.get(f"{_STRUCTURES}/{int(index)}")
        if group is None:
            raise DatasetError(f"structure {index} is not in {self.path}")
        if done and group.attrs["status"] != "done":
            raise DatasetError(f"structure {index} of {self.path} failed: {group.attrs['reason']}")
        return group

    def atoms(self, index: int) -> ase.Atoms:
        """The structure of entry ``index`` (positions in angstrom)."""
        group = self._group(index, done=False)
        return ase.Atoms(
            numbers=group["numbers"][()],
            positions=group["positions"][()],
            cell=group["cell"][()],
            pbc=group["pbc"][()],
        )

    def coefficients(self, index: int) -> np.ndarray:
        """RI coefficients d of entry ``index`` in canonical order (bohr^-3)."""
        return self._group(index)["coefficients"][()]

    def overlap(self, index: int) -> np.ndarray:
        """Metric matrix S of entry ``index`` (overlap or Coulomb, see ``metric_kind``)."""
        return self._group(index)["overlap"][()]

    def entry(self, index: int) -> DatasetEntry:
        """Everything stored for entry ``index``, done or failed."""
        group = self._group(index, done=False)
        attrs = group.attrs
        total = attrs.get("total_energy_eV")
        expected = attrs.get("expected_integral")
        entry = DatasetEntry(
            index=int(index),
            atoms=self.atoms(index),
            fit=None,
            orbitals=None,
            weights=None,
            total_energy=None if total is None else float(total),
            scf_converged=bool(attrs["scf_converged"]),
            status=str(attrs["status"]),
            reason=str(attrs.get("reason", "")),
            expected_integral=None if expected is None else float(expected),
        )
        if entry.status != "done":
            return entry
        metadata = self.metadata
        entry.fit = RIFit(
            coefficients=group["coefficients"][()],
            projections=group["projections"][()],
            metric=group["overlap"][()],
            metric_kind=metadata.metric_kind,  # type: ignore[arg-type]
            layout=metadata.layout,
            integrals=group["integrals"][()],
            field_state={key: value[()] for key, value in group["field_state"].items()},
        )
        if "orbital_energies" not in group:
            return entry
        fermi, vacuum = attrs.get("fermi_level"), attrs.get("vacuum_level")
        entry.orbitals = OrbitalData(
            energies=group["orbital_energies"][()],
            occupations=group["orbital_occupations"][()],
            k_weights=group["k_weights"][()],
            fermi_level=None if fermi is None else float(fermi),
            vacuum_level=None if vacuum is None else float(vacuum),
        )
        entry.weights = group["weights"][()]
        return entry
