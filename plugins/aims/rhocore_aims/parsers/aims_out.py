"""aims.out, the standard output of FHI-aims, as one typed summary of the run.

One pure function, :func:`parse_aims_out`, reads every FHI-aims version from 2009 (090214)
on: the version comes from ``FHI-aims version :`` or, in older builds, the ``Version``
line of the header. Runs with several SCF cycles (geometry relaxation, molecular dynamics)
give the values of the last one: an SCF cycle starts at ``Begin self-consistency loop``,
its iterations are ``Begin self-consistency iteration #N`` blocks or, with the compact
output levels, ``SCF N :`` lines.

A run that was killed or crashed still parses (``finished`` is False), so that callers can
say what happened; :func:`check_finished` turns an unfinished or unconverged run into an
:class:`AimsFileError`. Energies are in eV.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rhocore.api import OrbitalData
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.eigenvalues import EigenvalueListing, parse_eigenvalue_listing

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?)"

#: Lines after "Invoking FHI-aims ..." searched for the version and commit.
_HEADER_LINES = 100
_INVOKED = "Invoking FHI-aims"
_VERSION = (
    re.compile(r"^\s*FHI-aims version\s*:\s*(\S+)"),
    re.compile(r"^\s*Version\s+(\S+)\s*$"),
)
_COMMIT = (
    re.compile(r"^\s*Commit number\s*:\s*(\S+)"),
    re.compile(r"^\s*Git rev\.[^:]*:\s*(\S+)"),
)

_NICE_DAY = "Have a nice day"
_LEAVING = "Leaving FHI-aims"
_SCF_START = "Begin self-consistency loop"
_SCF_CONVERGED = "Self-consistency cycle converged."
_SCF_FAILED = (
    "SELF-CONSISTENCY CYCLE DID NOT CONVERGE",
    "SCF cycle not converged",
    "scf cycle was not converged",
    "S.C.F. convergence problem",
)
_ITERATION = (
    re.compile(r"Begin self-consistency iteration #\s*(\d+)"),
    re.compile(r"^\s*SCF\s+(\d+)\s*:"),
)
_EIGENVALUES = "Writing Kohn-Sham eigenvalues."

_N_ATOMS = re.compile(r"\|\s*Number of atoms\s*:\s*(\d+)")
_N_ATOMS_GEOMETRY = re.compile(r"The structure contains\s+(\d+)\s+atoms")
_N_SPIN = re.compile(r"\|\s*Number of spin channels\s*:\s*(\d+)")
_N_K_POINTS = re.compile(r"\|\s*Number of k-points\s*:\s*(\d+)")
_K_REDUCTION = re.compile(r"\|\s*k-points reduced from:\s*(\d+)\s+to\s+(\d+)")
_UNIT_CELL = re.compile(r"^\s*\|\s*Unit cell:\s*$")
_N_ELECTRONS = (
    re.compile(r"and a total of\s+" + _NUMBER + r"\s+electrons"),
    re.compile(r"\|\s*Formal number of electrons \(from input files\)\s*:\s*" + _NUMBER),
    re.compile(r"\|\s*(?:Total )?[Nn]umber of electrons\s*:\s*" + _NUMBER),
)
_TOTAL_ENERGY = (
    re.compile(
        r"\|\s*Total energy of the DFT / Hartree-Fock s\.c\.f\. calculation\s*:\s*"
        + _NUMBER
        + r"\s*eV"
    ),
    re.compile(r"\|\s*Total energy uncorrected\s*:\s*" + _NUMBER + r"\s*eV"),
    re.compile(r"^\s*\|\s*Total energy\s*:\s*\S+\s+Ha\s+" + _NUMBER + r"\s*eV"),
)
_FERMI = re.compile(r"\|\s*Chemical potential \(Fermi level\)(?:\s+in eV)?\s*:\s*" + _NUMBER)
_OVERALL_FERMI = re.compile(r"\|\s*Overall Fermi level:\s*$")
_OVERALL_FERMI_VALUE = re.compile(_NUMBER + r"\s*eV")
_HOMO = re.compile(r"Highest occupied state \(VBM\) at\s+" + _NUMBER + r"\s*eV")
_LUMO = re.compile(r"Lowest unoccupied state \(CBM\) at\s+" + _NUMBER + r"\s*eV")

_WARNING = re.compile(r"Warning|WARNING")
_ERRORS = (
    re.compile(r"^\s*\*+\s*Proc\s+\d+"),  # stop of one MPI task: "*** Proc 0 in x: message"
    re.compile(r"^\s*\*\*\*\s(?!WARNING|Warning)\w+:\s"),  # collective stop: "*** routine: why"
    re.compile(r"^\s*\**\s*(?:ERROR|Error)(?:\s*[:.!]|\s+in\s)"),  # "* Error: ...", "ERROR."
    re.compile(r"\b(?:Aborting|aborting|will abort)\b"),
    re.compile(r"^\s*forrtl:"),  # Fortran runtime error
)


@dataclass(frozen=True)
class AimsOutput:
    """What one aims.out says about its run; values of the last SCF cycle.

    ``total_energy_ev`` is the last total energy of the last SCF cycle (the final
    ``Total energy of the DFT / Hartree-Fock s.c.f. calculation`` of a finished run).
    ``fermi_level_ev``, ``homo_ev``, ``lumo_ev`` and ``eigenvalues`` are the last ones
    printed after the last SCF iteration began, so never those of an earlier geometry or
    of the initial guess; the compact output levels (``MD_light``) do not print them there,
    and they are None. ``eigenvalues`` is also None when the listing misses k-points, spin
    channels or states (periodic runs print only some k-points by default) or k-point
    weights cannot be known. ``n_kpoints`` is None for clusters. ``n_scf_cycles`` counts the
    iterations of the last SCF cycle. ``scf_failed`` is True when FHI-aims reported that
    the last SCF did not converge. ``finished`` means 'Have a nice day', which FHI-aims
    prints only after a converged SCF; ``completed`` means it reached its normal end
    ('Leaving FHI-aims'), converged or not.
    """

    version: str
    commit: str | None
    converged: bool
    finished: bool
    completed: bool
    total_energy_ev: float | None
    fermi_level_ev: float | None
    n_electrons: float | None
    n_atoms: int | None
    n_spin: int | None
    n_kpoints: int | None
    periodic: bool
    homo_ev: float | None
    lumo_ev: float | None
    warnings: list[str]
    errors: list[str]
    n_scf_cycles: int
    scf_failed: bool
    last_line: str
    eigenvalues: OrbitalData | None

    def to_json_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values (eigenvalues as nested lists, or None)."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        values["warnings"] = list(self.warnings)
        values["errors"] = list(self.errors)
        values["eigenvalues"] = _orbitals_json(self.eigenvalues)
        return values


def parse_aims_out(path: Path | str) -> AimsOutput:
    """Parse one aims.out; a truncated run parses with ``finished=False``.

    Raises :class:`AimsFileError` for a missing or empty file or one without the
    FHI-aims header (no version).
    """
    path = Path(path)
    lines = _read_lines(path)
    version, commit = _header(path, lines)
    scf_start = _last_index(lines, lambda line: _SCF_START in line) or 0
    n_cycles, iteration_start = _iterations(lines, scf_start)
    scf, last_iteration = lines[scf_start:], lines[iteration_start:]
    scf_failed = any(marker in line for line in scf for marker in _SCF_FAILED)
    periodic = any(_UNIT_CELL.match(line) for line in lines)
    n_spin = _last_value(lines, (_N_SPIN,), int)
    n_kpoints = _last_value(lines, (_N_K_POINTS,), int) if periodic else None
    fermi = _fermi_level(last_iteration)
    listing_start = _last_index(
        lines, lambda line: line.strip() == _EIGENVALUES, start=iteration_start
    )
    listing = (
        None
        if listing_start is None
        else parse_eigenvalue_listing(itertools.islice(lines, listing_start + 1, None))
    )
    return AimsOutput(
        version=version,
        commit=commit,
        converged=not scf_failed and any(line.strip() == _SCF_CONVERGED for line in scf),
        finished=any(_NICE_DAY in line for line in lines),
        completed=any(_LEAVING in line for line in lines),
        total_energy_ev=_last_value(scf, _TOTAL_ENERGY, _number),
        fermi_level_ev=fermi,
        n_electrons=_last_value(lines, _N_ELECTRONS, _number),
        n_atoms=_last_value(lines, (_N_ATOMS,), int)
        or _last_value(lines, (_N_ATOMS_GEOMETRY,), int),
        n_spin=n_spin,
        n_kpoints=n_kpoints,
        periodic=periodic,
        homo_ev=_last_value(last_iteration, (_HOMO,), _number),
        lumo_ev=_last_value(last_iteration, (_LUMO,), _number),
        warnings=_warnings(lines),
        errors=_unique(line.strip() for line in lines if any(p.search(line) for p in _ERRORS)),
        n_scf_cycles=n_cycles,
        scf_failed=scf_failed,
        last_line=_last_line(lines),
        eigenvalues=_orbitals(listing, n_spin, n_kpoints, _full_grid(lines), fermi),
    )


def check_finished(result: AimsOutput, path: Path | str, *, require_converged: bool = True) -> None:
    """Raise :class:`AimsFileError` unless the run finished (and its last SCF converged).

    ``require_converged=False`` accepts a run whose SCF was not converged on purpose (e.g.
    a step that restarts from a converged density with ``sc_iter_limit 0``) once FHI-aims
    reached its normal end, even without 'Have a nice day'.
    """
    if require_converged and result.scf_failed:
        raise AimsFileError(path, _not_converged(result))
    if not (result.finished or (result.completed and not require_converged)):
        problem = (
            "the run did not finish (no 'Have a nice day'); it was killed or crashed: "
            f"last line '{result.last_line}'"
        )
        if result.errors:
            problem += f"; FHI-aims error: '{result.errors[-1]}'"
        raise AimsFileError(path, problem)
    if require_converged and not result.converged:
        raise AimsFileError(path, _not_converged(result))


def summary_json(path: Path | str) -> dict[str, Any]:
    """The JSON summary of an aims.out for ``rhocore aims parse``."""
    return parse_aims_out(path).to_json_dict()


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise AimsFileError(path, "missing: no FHI-aims output here")
    if not path.is_file():
        raise AimsFileError(path, "is not a file")
    lines = path.read_text(errors="replace").splitlines()
    if not any(line.strip() for line in lines):
        raise AimsFileError(path, "empty: FHI-aims wrote nothing (it did not start?)")
    return lines


def _header(path: Path, lines: list[str]) -> tuple[str, str | None]:
    """(version, commit) from the lines after ``Invoking FHI-aims ...``."""
    invoked = next((i for i, line in enumerate(lines) if _INVOKED in line), None)
    header = lines[invoked : invoked + _HEADER_LINES] if invoked is not None else []
    version = _first_value(header, _VERSION)
    if version is None:
        raise AimsFileError(
            path, "not an FHI-aims output: no 'Invoking FHI-aims' header with a version line"
        )
    return version, _first_value(header, _COMMIT)


def _iterations(lines: list[str], start: int) -> tuple[int, int]:
    """(iterations of the SCF cycle starting at ``start``, index where the last one began)."""
    count, last = 0, start
    for index in range(start, len(lines)):
        for pattern in _ITERATION:
            if match := pattern.search(lines[index]):
                count, last = max(count, int(match[1])), index
    return count, last


def _orbitals(
    listing: EigenvalueListing | None,
    n_spin: int | None,
    n_kpoints: int | None,
    full_grid: bool,
    fermi: float | None,
) -> OrbitalData | None:
    """The listing as OrbitalData when it covers every spin channel and k-point, else None.

    A cluster or a single k-point has weight 1. Several k-points need weights, which aims.out
    does not print: they are equal only when symmetry did not reduce the grid.
    """
    if listing is None or listing.energies.shape[0] != n_spin:
        return None
    n_k = len(listing.k_indices)
    if listing.k_indices != tuple(range(1, n_k + 1)) or n_k != (n_kpoints or 1):
        return None
    if n_k > 1 and not full_grid:
        return None
    return OrbitalData(
        listing.energies, listing.occupations, np.full(n_k, 1.0 / n_k), fermi_level=fermi
    )


def _full_grid(lines: list[str]) -> bool:
    """True when the last k-point reduction kept every point of the grid."""
    last = None
    for line in lines:
        if match := _K_REDUCTION.search(line):
            last = match
    return last is not None and last[1] == last[2]


def _fermi_level(lines: list[str]) -> float | None:
    """Last Fermi level: ``Chemical potential (Fermi level)`` or ``Overall Fermi level:``
    (fixed spin moment runs, value in eV on the next line)."""
    fermi = None
    for index, line in enumerate(lines):
        if match := _FERMI.search(line):
            fermi = _number(match[1])
        elif _OVERALL_FERMI.search(line) and index + 1 < len(lines):
            if match := _OVERALL_FERMI_VALUE.search(lines[index + 1]):
                fermi = _number(match[1])
    return fermi


def _warnings(lines: list[str]) -> list[str]:
    """Each warning once, from the word Warning/WARNING on (drops '*', '|' and prefixes)."""
    found = (_WARNING.search(line) for line in lines)
    return _unique(match.string[match.start() :].strip() for match in found if match)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _last_line(lines: list[str]) -> str:
    line = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return line if len(line) <= 160 else line[:157] + "..."


def _not_converged(result: AimsOutput) -> str:
    return f"SCF did not converge after {result.n_scf_cycles} cycles"


def _number(text: str) -> float:
    """A Fortran real: '-.88792989E+01', '1.0D-3', '2.000'."""
    return float(text.replace("D", "E").replace("d", "e"))


def _last_index(lines: list[str], test: Callable[[str], bool], start: int = 0) -> int | None:
    """Index of the last line from ``start`` on that passes ``test``, else None."""
    return next((i for i in range(len(lines) - 1, start - 1, -1) if test(lines[i])), None)


def _first_value(lines: list[str], patterns: tuple[re.Pattern[str], ...]) -> str | None:
    """Group 1 of the first line matching any of ``patterns``."""
    for line in lines:
        for pattern in patterns:
            if match := pattern.search(line):
                return match[1]
    return None


def _last_value(lines: list[str], patterns: tuple[re.Pattern[str], ...], convert: Any) -> Any:
    """``convert`` of group 1 of the last line matching any of ``patterns``, else None."""
    for line in reversed(lines):
        for pattern in patterns:
            if match := pattern.search(line):
                return convert(match[1])
    return None


def _orbitals_json(orbitals: OrbitalData | None) -> dict[str, Any] | None:
    if orbitals is None:
        return None
    return {
        "energies_ev": orbitals.energies.tolist(),
        "occupations": orbitals.occupations.tolist(),
        "k_weights": orbitals.k_weights.tolist(),
    }
