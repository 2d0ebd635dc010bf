"""The RI (product) basis FHI-aims used: ``basis_info.out`` and ``product_basis_idxs.out``.

FHI-aims prunes its product basis per structure, so the layout of a fit is read from the
files the RI step writes, never assumed.

``basis_info.out`` (mainline keywords, FHI-aims 240925; also ``product_basis_definition.out``
of FHI-aims 221103) has one block per atom, atoms in geometry order::

     atom           1
     For L =            0 there are           9 radial functions
     ...
     For atom            1 max L =            5

The RI vectors of these runs are in atom -> l -> n -> m order, so the layout alone fixes
the function order (:func:`rhocore_aims.convention.from_layout`).

``product_basis_idxs.out`` (``ri_fit_*`` keywords, FHI-aims 2023 builds) has one row of five
integers per function, all 1-based except l and m: (position of the function in the RI
vector files, atom, l, radial function, m). The radial function is FHI-aims' index over all
radial functions (not counted per l); the rows need not be in vector-file order.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rhocore.api import BasisLayout
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.text import read_text

_ATOM = re.compile(r"^atom\s+(\d+)$", re.IGNORECASE)
_CHANNEL = re.compile(r"^For\s+L\s*=\s*(\d+)\s+there\s+are\s+(\d+)\s+radial", re.IGNORECASE)
_END = re.compile(r"^For\s+atom\s+(\d+)\s+max\s+L\s*=\s*(\d+)$", re.IGNORECASE)


def parse_basis_info(path: Path | str, numbers: Sequence[int]) -> BasisLayout:
    """The RI basis layout in ``basis_info.out`` of a structure with these atomic numbers.

    Every atom must have its block, and atoms of one element the same radial counts
    (rhocore's layout is per element).
    """
    path = Path(path)
    blocks = _atom_blocks(path, _lines(path))
    if len(blocks) != len(numbers):
        raise AimsFileError(
            path, f"describes {len(blocks)} atoms, but the structure has {len(numbers)}"
        )
    nmax: dict[int, tuple[int, ...]] = {}
    for atom, (z, counts) in enumerate(zip(numbers, blocks, strict=True)):
        known = nmax.setdefault(int(z), counts)
        if known != counts:
            raise AimsFileError(
                path,
                f"atom {atom + 1} (Z={z}) has radial counts per l {counts}, another atom of "
                f"the same element {known}; rhocore needs one RI basis per element",
            )
    return BasisLayout(nmax)


def parse_product_basis_idxs(path: Path | str) -> np.ndarray:
    """Rows (atom, l, n, m) of ``product_basis_idxs.out``, in the order of the RI vector files.

    Atom and n are 0-based; n counts the radial functions of each (atom, l) in increasing
    FHI-aims radial index. The table goes to
    :func:`rhocore_aims.convention.from_function_table`.
    """
    path = Path(path)
    rows = _integer_rows(path)
    position, atom, l, radial, m = (rows[:, i] for i in range(5))
    _check_rows(path, position, atom, l, m)
    n = _rank_within_channel(atom, l, radial)
    table = np.empty((len(rows), 4), dtype=int)
    table[position - 1] = np.stack([atom - 1, l, n, m], axis=1)
    return table


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AimsFileError(path, "missing: FHI-aims wrote no RI basis description here")
    return read_text(path).splitlines()


def _atom_blocks(path: Path, lines: list[str]) -> list[tuple[int, ...]]:
    """Radial counts per l of every atom block, in file order (checked to be atom order)."""
    blocks: list[tuple[int, ...]] = []
    counts: list[int] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if match := _ATOM.match(line):
            _expect_atom(path, int(match[1]), len(blocks) + 1, line)
            counts = []
        elif counts is None:
            raise AimsFileError(path, f"line {number}: expected 'atom <index>', found {line!r}")
        elif match := _CHANNEL.match(line):
            if int(match[1]) != len(counts):
                raise AimsFileError(path, f"L = {match[1]} out of order in {line!r}")
            counts.append(int(match[2]))
        elif match := _END.match(line):
            _expect_atom(path, int(match[1]), len(blocks) + 1, line)
            if int(match[2]) != len(counts) - 1:
                raise AimsFileError(path, f"{line!r} but the block lists L = 0..{len(counts) - 1}")
            blocks.append(tuple(counts))
            counts = None
        else:
            raise AimsFileError(path, f"line {number} not understood: {line!r}")
    if counts is not None:
        raise AimsFileError(path, f"truncated: the block of atom {len(blocks) + 1} never ends")
    return blocks


def _expect_atom(path: Path, found: int, expected: int, line: str) -> None:
    if found != expected:
        raise AimsFileError(path, f"expected atom {expected}, found {line!r}")


def _integer_rows(path: Path) -> np.ndarray:
    if not path.is_file():
        raise AimsFileError(path, "missing: FHI-aims wrote no RI function table here")
    text = read_text(path)
    if not text.strip():
        raise AimsFileError(path, "empty: no RI functions listed")
    try:
        rows = np.loadtxt(io.StringIO(text), dtype=int, ndmin=2)
    except ValueError as error:
        raise AimsFileError(path, f"not a table of integers: {error}") from None
    if rows.shape[1] != 5:
        raise AimsFileError(
            path, f"expected rows of 5 integers (index, atom, l, radial, m), got {rows.shape}"
        )
    return rows


def _check_rows(
    path: Path, position: np.ndarray, atom: np.ndarray, l: np.ndarray, m: np.ndarray
) -> None:
    if not np.array_equal(np.sort(position), np.arange(1, len(position) + 1)):
        raise AimsFileError(
            path,
            f"the first column is not a permutation of 1..{len(position)} (the RI "
            "vector positions)",
        )
    if atom.min() < 1 or l.min() < 0 or np.any(np.abs(m) > l):
        raise AimsFileError(path, "has an atom < 1, an l < 0 or an |m| > l")
    if 2 * l.max() + 1 > len(position):
        raise AimsFileError(
            path, f"lists l = {l.max()}, whose 2l + 1 functions outnumber the table's rows"
        )


def _rank_within_channel(atom: np.ndarray, l: np.ndarray, radial: np.ndarray) -> np.ndarray:
    """0-based rank of each row's radial index among the distinct ones of its (atom, l)."""
    n = np.empty(len(atom), dtype=int)
    for channel in np.unique(np.stack([atom, l], axis=1), axis=0):
        rows = (atom == channel[0]) & (l == channel[1])
        n[rows] = np.unique(radial[rows], return_inverse=True)[1]
    return n
