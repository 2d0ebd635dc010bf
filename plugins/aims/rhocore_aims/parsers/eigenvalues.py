"""Kohn-Sham eigenvalues and occupations of FHI-aims, from the three places it writes them.

``ks_orbital_info.out`` (keyword ``ri_fit_write_orbital_info``) has one row per Kohn-Sham
orbital: orbital index, state, spin, k-point (all 1-based), k-point weight, occupation,
energy in eV and, when FHI-aims was given orbital weights, an eighth column with the weight
of the orbital. A field other than the density is described to FHI-aims by one weight per
orbital in ``ks_orbital_weights.in``, in the row order of that file; :class:`KSOrbitalInfo`
keeps that order so that :func:`write_kso_weights` can write it back.

``Final_KS_eigenvalues.dat`` (``output postscf_eigenvalues`` with ``dos_kgrid_factors``,
periodic runs) lists every k-point of the denser post-SCF grid::

    # ... comment header ...
    k-point number:         1
    k-point in recip. lattice units:   0.000000000000  0.000000000000  0.000000000000
    k-point in cartesian units (A^{-1}):   ...
           1   2.000000000000       -1783.470811513180
    (n_spin = 2: state, occupation up, eigenvalue up, occupation down, eigenvalue down)

aims.out prints listings headed by ``Writing Kohn-Sham eigenvalues.``: one block per spin
channel (``Spin-up eigenvalues:`` / ``Spin-down eigenvalues:``) and, for periodic runs, per
printed k-point (``K-point: N at ...``), each a ``State Occupation Eigenvalue [Ha]
Eigenvalue [eV]`` table. :func:`parse_eigenvalue_listing` reads one listing for
:mod:`rhocore_aims.parsers.aims_out`.

Energies are in eV; occupations are per spin channel as FHI-aims prints them (at most 2
for one spin channel, at most 1 for two); k-point weights are normalised to sum to one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rhocore.api import OrbitalData
from rhocore_aims.errors import AimsFileError

_SPIN_HEADERS = {"Spin-up eigenvalues:": 0, "Spin-down eigenvalues:": 1}
_LISTING_K_POINT = re.compile(r"^K-point:\s+(\d+)\s+at\b")
_LISTING_HEADER = re.compile(r"^State\s+Occupation\s+Eigenvalue")
_LISTING_ROW = re.compile(r"^(\d+)\s+(\S+)\s+(\S+)\s+(\S+)$")
_FINAL_K_POINT = re.compile(r"^k-point number:\s*(\d+)")
_FINAL_K_COORDINATES = re.compile(r"^k-point in recip\. lattice units:\s*(.*)$")


@dataclass(frozen=True)
class KSOrbitalInfo:
    """The Kohn-Sham orbitals of ``ks_orbital_info.out`` and the file's row order.

    ``row_index[s, k, n]`` is the 0-based data row of orbital (spin s, k-point k, state n);
    ``kso_weights`` has the same shape, or is None when the file has no eighth column.
    """

    orbitals: OrbitalData
    row_index: np.ndarray
    kso_weights: np.ndarray | None


@dataclass(frozen=True)
class FinalKSEigenvalues:
    """``Final_KS_eigenvalues.dat``: orbitals on every k-point, k-points in reciprocal units."""

    orbitals: OrbitalData
    k_points: np.ndarray


@dataclass(frozen=True)
class EigenvalueListing:
    """One complete eigenvalue listing of aims.out.

    Arrays have shape (n_spin, n_k printed, n_state); ``k_indices`` are FHI-aims' 1-based
    numbers of the printed k-points, in increasing order (``(1,)`` when none is named).
    """

    energies: np.ndarray
    occupations: np.ndarray
    k_indices: tuple[int, ...]


def parse_ks_orbital_info(path: Path | str) -> KSOrbitalInfo:
    """Orbitals of ``ks_orbital_info.out`` as (n_spin, n_k, n_state) arrays, with the row order.

    Every (spin, k-point, state) must appear exactly once. The k-point weights are read
    from column 5 (one value per k-point) and normalised to sum to one.
    """
    path = Path(path)
    rows = _numeric_rows(path, allowed_columns=(7, 8))
    indices = rows[:, 1:4].astype(int) - 1
    if not np.array_equal(rows[:, 1:4], indices + 1) or (indices < 0).any():
        raise AimsFileError(path, "state, spin and k-point columns must be positive integers")
    state, spin, k_point = indices.T
    shape = (int(spin.max()) + 1, int(k_point.max()) + 1, int(state.max()) + 1)
    row_index = _row_index(path, shape, spin, k_point, state)
    k_weights = _k_weights(path, k_point, rows[:, 4], shape[1])
    orbitals = OrbitalData(
        energies=rows[row_index, 6], occupations=rows[row_index, 5], k_weights=k_weights
    )
    kso_weights = rows[row_index, 7] if rows.shape[1] == 8 else None
    return KSOrbitalInfo(orbitals=orbitals, row_index=row_index, kso_weights=kso_weights)


def write_kso_weights(path: Path | str, info: KSOrbitalInfo, weights: np.ndarray) -> None:
    """Write ``ks_orbital_weights.in``: one weight per line, in the rows of ks_orbital_info.out.

    ``weights`` has the orbitals' shape (n_spin, n_k, n_state).
    """
    weights = np.asarray(weights, dtype=float)
    if weights.shape != info.row_index.shape:
        raise ValueError(
            f"orbital weights have shape {weights.shape}, but ks_orbital_info.out lists "
            f"orbitals of shape {info.row_index.shape} (n_spin, n_k, n_state)"
        )
    if not np.isfinite(weights).all():
        raise ValueError("orbital weights must be finite")
    in_file_order = np.empty(weights.size)
    in_file_order[info.row_index.ravel()] = weights.ravel()
    np.savetxt(path, in_file_order, fmt="%.18e")


def parse_final_ks_eigenvalues(path: Path | str) -> FinalKSEigenvalues:
    """Orbitals of every k-point of ``Final_KS_eigenvalues.dat``.

    The layout is the one FHI-aims' post-SCF eigenvalue output writes (3 columns per row
    for one spin channel, 5 for two). The file has no k-point weights: the points form the
    full (unreduced) dense grid, which FHI-aims weights equally, so each gets 1 / n_k.
    No real example of this file was available; the reader follows that documented layout.
    """
    path = Path(path)
    blocks = _final_blocks(path, _read_lines(path))
    if not blocks:
        raise AimsFileError(path, "no 'k-point number:' block: not a Final_KS_eigenvalues.dat")
    sizes = {rows.shape for _, rows in blocks}
    if len(sizes) != 1:
        raise AimsFileError(
            path, f"k-point blocks differ in (states, columns): {sorted(sizes)}; truncated?"
        )
    table = np.stack([rows for _, rows in blocks])  # (n_k, n_state, 3 or 5)
    occupations = np.stack([table[:, :, c] for c in range(1, table.shape[2], 2)])
    energies = np.stack([table[:, :, c] for c in range(2, table.shape[2], 2)])
    n_k = len(blocks)
    orbitals = OrbitalData(energies, occupations, np.full(n_k, 1.0 / n_k))
    return FinalKSEigenvalues(orbitals=orbitals, k_points=np.array([k for k, _ in blocks]))


def parse_eigenvalue_listing(lines: Iterable[str]) -> EigenvalueListing | None:
    """The listing that starts at ``lines`` (the lines after ``Writing Kohn-Sham eigenvalues.``).

    Reading stops at the first line that is neither a block header nor a table row. None
    when the listing is incomplete (the text ends inside it, as in a truncated file, or a
    row is cut short) or its blocks differ or skip states: callers never get a partial one.
    """
    blocks: dict[tuple[int, int], list[tuple[int, float, float]]] = {}
    spin, k_point = 0, 1
    current: list[tuple[int, float, float]] | None = None
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line in _SPIN_HEADERS:
            spin, current = _SPIN_HEADERS[line], None
        elif match := _LISTING_K_POINT.match(line):
            k_point, current = int(match[1]), None
        elif _LISTING_HEADER.match(line):
            if (spin, k_point) in blocks:
                return None
            current = blocks[(spin, k_point)] = []
        elif current is not None and (match := _LISTING_ROW.match(line)):
            row = _listing_row(match)
            if row is None:
                return None
            current.append(row)
        elif line[0].isdigit():  # a table row cut short
            return None
        else:
            return _assemble_listing(blocks)
    return None  # the text ended inside the listing


def homo_lumo(orbitals: OrbitalData) -> tuple[float | None, float | None]:
    """Highest occupied and lowest unoccupied energy (eV) over all spins and k-points.

    As FHI-aims reports them: a state at least half filled (occupation >= 1 for one spin
    channel, >= 0.5 for two) counts as occupied, any other as unoccupied.
    """
    midpoint = 1.0 / orbitals.n_spin
    occupied = orbitals.occupations >= midpoint - 1e-8
    homo = float(orbitals.energies[occupied].max()) if occupied.any() else None
    lumo = float(orbitals.energies[~occupied].min()) if (~occupied).any() else None
    return homo, lumo


def summary_json(path: Path | str) -> dict[str, Any]:
    """What ``ks_orbital_info.out`` or ``Final_KS_eigenvalues.dat`` holds, JSON-ready.

    The kind is told by the content: ``Final_KS_eigenvalues.dat`` has ``k-point number:``
    blocks, ``ks_orbital_info.out`` only rows of numbers.
    """
    path = Path(path)
    if any(_FINAL_K_POINT.match(line.strip()) for line in _read_lines(path)):
        orbitals = parse_final_ks_eigenvalues(path).orbitals
        has_weights = False
    else:
        info = parse_ks_orbital_info(path)
        orbitals, has_weights = info.orbitals, info.kso_weights is not None
    homo, lumo = homo_lumo(orbitals)
    n_spin, n_k, n_states = orbitals.energies.shape
    return {
        "n_spin": n_spin,
        "n_kpoints": n_k,
        "n_states": n_states,
        "n_electrons": orbitals.n_electrons,
        "homo_ev": homo,
        "lumo_ev": lumo,
        "has_kso_weights": has_weights,
    }


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AimsFileError(path, "missing: FHI-aims did not write this file")
    lines = path.read_text(errors="replace").splitlines()
    if not any(line.strip() for line in lines):
        raise AimsFileError(path, "empty: no orbitals")
    return lines


def _numeric_rows(path: Path, allowed_columns: tuple[int, ...]) -> np.ndarray:
    """The file's non-blank lines as numbers, all with one of ``allowed_columns`` counts."""
    rows: list[list[float]] = []
    for number, raw in enumerate(_read_lines(path), start=1):
        words = raw.split()
        if not words:
            continue
        if len(words) not in allowed_columns or (rows and len(words) != len(rows[0])):
            expected = " or ".join(str(count) for count in allowed_columns)
            raise AimsFileError(
                path, f"line {number} has {len(words)} columns, expected {expected} on every line"
            )
        try:
            values = [float(word.replace("D", "E").replace("d", "e")) for word in words]
        except ValueError:
            raise AimsFileError(path, f"line {number} is not numbers: {raw.strip()!r}") from None
        if not np.isfinite(values).all():
            raise AimsFileError(path, f"line {number} has a non-finite value: {raw.strip()!r}")
        rows.append(values)
    return np.array(rows)


def _row_index(
    path: Path,
    shape: tuple[int, int, int],
    spin: np.ndarray,
    k_point: np.ndarray,
    state: np.ndarray,
) -> np.ndarray:
    """Data row of each (spin, k, state); each must appear exactly once.

    The grid is allocated only once the rows are known to fill it, so that a damaged
    index (a state number of 10^9) is an error, not a huge allocation.
    """
    rows: dict[tuple[int, int, int], int] = {}
    for row, key in enumerate(zip(spin.tolist(), k_point.tolist(), state.tolist(), strict=True)):
        if key in rows:
            raise AimsFileError(
                path,
                f"rows {rows[key] + 1} and {row + 1} both describe spin {key[0] + 1}, "
                f"k-point {key[1] + 1}, state {key[2] + 1}",
            )
        rows[key] = row
    missing = math.prod(shape) - len(rows)
    if missing:
        s, k, n = _first_missing(shape, rows)
        raise AimsFileError(
            path,
            f"{missing} orbitals of the {shape[0]} x {shape[1]} x {shape[2]} (spin x k-point "
            f"x state) grid are missing, e.g. spin {s + 1}, k-point {k + 1}, state {n + 1}",
        )
    row_index = np.empty(shape, dtype=int)
    for key, row in rows.items():
        row_index[key] = row
    return row_index


def _first_missing(
    shape: tuple[int, int, int], rows: Container[tuple[int, int, int]]
) -> tuple[int, int, int]:
    """The first (spin, k, state) of the grid, in row-major order, that ``rows`` lacks."""
    for spin in range(shape[0]):  # loops, not itertools.product, which lists each range
        for k_point in range(shape[1]):
            for state in range(shape[2]):
                if (spin, k_point, state) not in rows:
                    return spin, k_point, state
    raise AssertionError("no orbital is missing")


def _k_weights(path: Path, k_point: np.ndarray, column: np.ndarray, n_k: int) -> np.ndarray:
    """One weight per k-point (the rows of a k-point must agree), normalised to sum 1."""
    weights = np.zeros(n_k)
    weights[k_point] = column
    if not np.allclose(column, weights[k_point], rtol=1e-8, atol=1e-12):
        raise AimsFileError(path, "rows of one k-point give different k-point weights")
    if (weights <= 0).any():
        raise AimsFileError(path, f"k-point weights must be positive, got {weights.tolist()}")
    return weights / weights.sum()


def _final_blocks(path: Path, lines: list[str]) -> list[tuple[list[float], np.ndarray]]:
    """(k-point in reciprocal units, rows of numbers) of each k-point block, in file order."""
    blocks: list[tuple[list[float], list[list[float]]]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("k-point in cartesian"):
            continue
        if _FINAL_K_POINT.match(line):
            blocks.append(([np.nan] * 3, []))
        elif (match := _FINAL_K_COORDINATES.match(line)) and blocks:
            coordinates = _floats(path, number, match[1].split())
            if len(coordinates) != 3:
                raise AimsFileError(path, f"line {number}: a k-point needs 3 coordinates")
            blocks[-1][0][:] = coordinates
        elif blocks:
            blocks[-1][1].append(_floats(path, number, line.split()))
        else:
            raise AimsFileError(path, f"line {number} comes before any 'k-point number:' line")
    for number, (_, rows) in enumerate(blocks, start=1):
        if not rows or len({len(row) for row in rows}) != 1 or len(rows[0]) not in (3, 5):
            raise AimsFileError(
                path, f"k-point block {number} must have rows of 3 or 5 numbers, all alike"
            )
        if [row[0] for row in rows] != list(range(1, len(rows) + 1)):
            raise AimsFileError(path, f"k-point block {number} does not list states 1, 2, ...")
    return [(k, np.array(rows)) for k, rows in blocks]


def _floats(path: Path, number: int, words: list[str]) -> list[float]:
    try:
        values = [float(word) for word in words]
    except ValueError:
        raise AimsFileError(path, f"line {number} is not numbers: {' '.join(words)!r}") from None
    if not np.isfinite(values).all():
        raise AimsFileError(path, f"line {number} has a non-finite value: {' '.join(words)!r}")
    return values


def _listing_row(match: re.Match[str]) -> tuple[int, float, float] | None:
    """(state, occupation, energy eV) of one table row; None if a field is not a number."""
    try:
        return int(match[1]), float(match[2]), float(match[4])
    except ValueError:
        return None


def _assemble_listing(
    blocks: dict[tuple[int, int], list[tuple[int, float, float]]],
) -> EigenvalueListing | None:
    """Stack the (spin, k) blocks; None unless every block is complete and alike."""
    if not blocks:
        return None
    spins = sorted({spin for spin, _ in blocks})
    k_indices = sorted({k for _, k in blocks})
    if spins != list(range(len(spins))) or len(blocks) != len(spins) * len(k_indices):
        return None
    n_state = len(next(iter(blocks.values())))
    expected_states = list(range(1, n_state + 1))
    if n_state == 0 or any([row[0] for row in rows] != expected_states for rows in blocks.values()):
        return None
    table = np.array([[blocks[(spin, k)] for k in k_indices] for spin in spins])
    return EigenvalueListing(
        energies=table[..., 2], occupations=table[..., 1], k_indices=tuple(k_indices)
    )
