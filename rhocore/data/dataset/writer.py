"""Writing a dataset file crash-safely, one entry at a time.

:class:`DatasetWriter` builds an entry under ``/tmp/<index>``, moves it into
``/structures``, flushes, and only then commits the file's rollback journal
(:mod:`rhocore.data.journal`): a run killed at any moment, even inside HDF5's flush,
leaves the file as it was after its last complete entry, and the next opening rolls back
what it left (:func:`finish_killed_write`). Entries with NaN, infinity or shapes that do
not fit the basis layout are refused before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from rhocore.data.dataset.format import (
    FORMAT,
    FORMAT_VERSION,
    STAGING_GROUP,
    STATUSES,
    STRUCTURES_GROUP,
    UNITS,
    DatasetEntry,
    DatasetError,
    DatasetMetadata,
    check_format,
    indices_with_status,
    json_text,
    reading,
)
from rhocore.data.journal import FileLockedError, JournaledFile, journal_path, roll_back
from rhocore.qc.basis import BasisLayout
from rhocore.qc.metric import BlockMetric

#: HDF5 file-format version a writer uses. The 1.8 format checksums the file's metadata,
#: so damage reads as an error where the oldest format can crash HDF5 itself; HDF5 >= 1.8
#: reads it. (The 1.10 format adds a superblock flag that a killed writer leaves set, and
#: that locks readers out of the file until `h5clear` resets it.)
LIBVER = ("v108", "v108")


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
            with reading(self.path, "the dataset"):
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
            handle.attrs["units"] = json_text(UNITS)
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
        version = check_format(handle, self.path)
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
        return set(indices_with_status(self.file, ("done",)))

    def failed_indices(self) -> set[int]:
        """Indices of structures recorded as failed."""
        return set(indices_with_status(self.file, ("failed",)))

    def finished_indices(self) -> set[int]:
        """Indices a rerun skips: done ones, and failed ones unless ``retry_failed``."""
        return (
            self.done_indices()
            if self.retry_failed
            else set(indices_with_status(self.file, STATUSES))
        )

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
        write_group(handle.create_group(staging), entry)
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
        return is_lock_error(error)
    return False


def finish_killed_write(path: Path) -> None:
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


def is_lock_error(error: OSError) -> bool:
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


def write_group(group: h5py.Group, entry: DatasetEntry) -> None:
    """Store ``entry`` in the empty ``group``: its structure, status and, when done, its data.

    The metric goes in as atom-pair blocks sorted by distance (format 2). Nothing is
    checked here: :class:`DatasetWriter` checks entries before it calls this.
    """
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
