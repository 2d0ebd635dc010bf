"""The layout of a dataset file: format version and its upgrades, units, groups, metadata.

What :mod:`~rhocore.data.dataset.writer` and :mod:`~rhocore.data.dataset.reader` share:
the root attributes (:class:`DatasetMetadata`), one entry (:class:`DatasetEntry`), the
error a damaged file raises (:class:`DatasetError`) and the checks that every opening of
a file makes (format, version, entry statuses).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase
import h5py
import numpy as np

from rhocore.data.versions import Updater, upgrade
from rhocore.errors import RhocoreError
from rhocore.qc.backend import OrbitalData, RIFit
from rhocore.qc.basis import BasisLayout

FORMAT = "rhocore-dataset"
FORMAT_VERSION = 2
#: First rhocore release that writes each format version, for "upgrade" messages.
FORMAT_RELEASES: dict[int, str] = {1: "0.1.0"}


def _update_v1_to_v2(attrs: dict[str, Any]) -> dict[str, Any]:
    """Format 2 stores the metric as atom-pair blocks; the root attributes are unchanged.

    Entries of a format-1 file hold the dense ``overlap``, which the reader cuts into
    blocks itself (see :meth:`~rhocore.data.dataset.reader.Dataset.metric_blocks`).
    """
    return attrs


#: Upgrades of the root attributes of a format-N file to format N + 1, keyed by N.
UPDATES: dict[int, Updater] = {1: _update_v1_to_v2}

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


class DatasetError(RhocoreError, ValueError):
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
            "backend_options": json_text(self.backend_options),
            "target_name": self.target_name,
            "target_options": json_text(self.target_options),
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
            backend_options=parsed("backend_options", json_mapping),
            target_name=text["target_name"],
            target_options=parsed("target_options", json_mapping),
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


def json_text(value: Any) -> str:
    """``value`` as JSON with sorted keys, so equal settings give equal attribute strings."""
    return json.dumps(value, sort_keys=True)


def json_mapping(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; a ValueError when it is anything else."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


@contextmanager
def reading(path: Path, what: str, field: str | None = None) -> Iterator[None]:
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


def check_format(handle: h5py.File, path: Path) -> int:
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


def upgraded_attrs(handle: h5py.File, version: int, path: Path) -> dict[str, Any]:
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


def indices_with_status(handle: h5py.File, statuses: tuple[str, ...]) -> list[int]:
    """Sorted indices of the entries of an open file whose status is one of ``statuses``."""
    return sorted(index for index, status in entry_statuses(handle).items() if status in statuses)


def entry_statuses(handle: h5py.File) -> dict[int, str]:
    """Status of every entry of an open dataset file, by index; a damaged one is an error."""
    path = Path(handle.filename)
    with reading(path, f"group /{STRUCTURES_GROUP}"):
        group = handle.get(STRUCTURES_GROUP)
        if group is None:
            return {}
        statuses = {}
        for name in group:
            statuses[_entry_index(name, path)] = entry_status(group[name], path, name)
        return statuses


def _entry_index(name: str, path: Path) -> int:
    if not name.isdigit():
        raise DatasetError(
            f"{path}: /{STRUCTURES_GROUP}/{name} is not a structure index; the file was "
            "edited by something other than rhocore"
        )
    return int(name)


def entry_status(entry: h5py.Group | h5py.Dataset, path: Path, name: str) -> str:
    """Status of the stored entry ``name`` of ``path``; a damaged one is a :class:`DatasetError`."""
    with reading(path, f"structure {name}", "status"):
        status = entry.attrs.get("status") if isinstance(entry, h5py.Group) else None
        if status not in STATUSES:
            raise DatasetError(
                f"{path}: structure {name} has status {status!r}, not one of {STATUSES}; the "
                "entry is damaged",
                field="status",
            )
        return str(status)
