"""RI vectors and overlap written by FHI-aims, and one fit's files read into canonical order.

Formats (one number per line, Fortran ``D`` exponents accepted):

* coefficients and projections: ``ri_restart_coeffs.out`` / ``ri_projections.out``
  (mainline keywords, FHI-aims 240925) or ``ri_coeffs.out`` / ``ri_projs.out``
  (``ri_fit_*`` keywords, 2023 builds), one value per basis function;
* overlap ``ri_ovlp.out``: the upper triangle, row by row (``ri_ovlp_write_triu``,
  N(N+1)/2 values in the order of ``numpy.triu_indices``), or the full N x N matrix
  (``ri_fit_write_ovlp``). The count tells which.

Units are FHI-aims' atomic units: coefficients bohr^-3 per basis function, projections
and overlap as the code integrates them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhocore.api import BasisLayout, SignedPermutation
from rhocore_aims.convention import from_function_table, from_layout
from rhocore_aims.errors import AimsFileError
from rhocore_aims.keywords import RI_OUTPUT_FILES, Generation
from rhocore_aims.parsers.basis_info import parse_basis_info, parse_product_basis_idxs
from rhocore_aims.parsers.text import read_text

#: Largest ``abs(S - S.T)`` in a full overlap, relative to ``max(abs(S))`` (text round-off).
SYMMETRY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RIOutputs:
    """One RI fit in rhocore's canonical order and phases (see :mod:`rhocore.qc.basis`)."""

    coefficients: np.ndarray
    projections: np.ndarray | None
    overlap: np.ndarray
    layout: BasisLayout


def read_text_table(path: Path | str, columns: int) -> np.ndarray:
    """A text file of whitespace-separated numbers as an array (rows, ``columns``).

    Blank lines and ``#`` comments are skipped; NaN or infinite values are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise AimsFileError(path, "missing: FHI-aims did not write this file")
    text = read_text(path)
    if not text.strip():
        raise AimsFileError(path, "empty: no values")
    if "D" in text or "d" in text:
        text = text.replace("D", "E").replace("d", "e")
    try:
        rows = np.loadtxt(io.StringIO(text), dtype=float, ndmin=2)
    except ValueError as error:
        raise AimsFileError(path, f"not a table of numbers: {error}") from None
    if rows.shape[1] != columns:
        raise AimsFileError(path, f"expected {columns} values per line, found {rows.shape[1]}")
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if len(bad):
        raise AimsFileError(
            path, f"non-finite value {rows[bad[0]].tolist()} in data row {bad[0] + 1}"
        )
    return rows


def parse_ri_vector(path: Path | str, expected_size: int | None = None) -> np.ndarray:
    """An RI vector (coefficients or projections), in the file's (FHI-aims) order."""
    values = read_text_table(path, 1)[:, 0]
    if expected_size is not None and len(values) != expected_size:
        state = "truncated: only" if len(values) < expected_size else "has"
        raise AimsFileError(
            path, f"{state} {len(values)} values, but the RI basis has {expected_size} functions"
        )
    return values


def parse_ri_overlap(path: Path | str, size: int) -> np.ndarray:
    """The symmetric RI overlap of ``size`` functions, from a full or upper-triangle file."""
    values = read_text_table(path, 1)[:, 0]
    full, triangle = size * size, size * (size + 1) // 2
    if len(values) == full:
        return _symmetric(Path(path), values.reshape(size, size))
    if len(values) == triangle:
        overlap = np.empty((size, size))
        overlap[np.triu_indices(size)] = values
        lower = np.tril_indices(size, -1)
        overlap[lower] = overlap.T[lower]
        return overlap
    raise AimsFileError(
        path,
        f"holds {len(values)} values; {size} RI functions need {full} (full matrix) or "
        f"{triangle} (upper triangle)",
    )


def read_ri_outputs(
    folder: Path | str, numbers: Sequence[int], generation: Generation
) -> RIOutputs:
    """The RI fit FHI-aims wrote in ``folder``, in canonical order and phases.

    ``generation`` picks the file names (:data:`rhocore_aims.keywords.RI_OUTPUT_FILES`):
    basis description, coefficients, projections, overlap. Projections are optional
    (None when absent); the other files must be there and complete.
    """
    folder = Path(folder)
    basis_name, coefficients_name, projections_name, overlap_name = RI_OUTPUT_FILES[generation]
    numbers = np.asarray(numbers, dtype=int)
    basis = _basis(folder / basis_name, numbers, generation)
    size = basis.size(numbers) if isinstance(basis, BasisLayout) else len(basis)
    # the vector's length is checked before the conversion, which costs time per function
    coefficients = parse_ri_vector(folder / coefficients_name, size)
    conversion = _conversion(folder / basis_name, basis, numbers, generation)
    projections_path = folder / projections_name
    projections = None
    if projections_path.is_file():
        projections = conversion.to_canonical(parse_ri_vector(projections_path, size))
    return RIOutputs(
        coefficients=conversion.to_canonical(coefficients),
        projections=projections,
        overlap=conversion.to_canonical_matrix(parse_ri_overlap(folder / overlap_name, size)),
        layout=conversion.layout,
    )


def basis_conversion(
    folder: Path | str, numbers: Sequence[int], generation: Generation
) -> SignedPermutation:
    """FHI-aims -> canonical order and phases of the RI vectors FHI-aims wrote in ``folder``.

    Read from the folder's basis description (``basis_info.out`` or, for legacy builds,
    ``product_basis_idxs.out``); writing a restart uses its inverse.
    """
    folder = Path(folder)
    numbers = np.asarray(numbers, dtype=int)
    path = folder / RI_OUTPUT_FILES[generation][0]
    return _conversion(path, _basis(path, numbers, generation), numbers, generation)


def _basis(path: Path, numbers: np.ndarray, generation: Generation) -> BasisLayout | np.ndarray:
    """The basis description at ``path``: a layout (mainline) or a function table (legacy)."""
    if generation == "mainline":
        return parse_basis_info(path, numbers)
    table = parse_product_basis_idxs(path)
    if table[:, 0].max() >= len(numbers):
        raise AimsFileError(
            path, f"lists atom {table[:, 0].max() + 1}, but the structure has {len(numbers)}"
        )
    return table


def _conversion(
    path: Path, basis: BasisLayout | np.ndarray, numbers: np.ndarray, generation: Generation
) -> SignedPermutation:
    """FHI-aims -> canonical order and phases, from the basis description read from ``path``."""
    if isinstance(basis, BasisLayout):
        return from_layout(basis, numbers, generation=generation)
    try:
        return from_function_table(basis, numbers, generation=generation)
    except ValueError as error:
        raise AimsFileError(path, str(error)) from None


def _symmetric(path: Path, overlap: np.ndarray) -> np.ndarray:
    asymmetry = float(np.max(np.abs(overlap - overlap.T)))
    scale = float(np.max(np.abs(overlap)))
    if asymmetry > SYMMETRY_TOLERANCE * scale:
        raise AimsFileError(
            path,
            f"the full overlap matrix is not symmetric: max |S - S^T| = {asymmetry:.3e} "
            f"for max |S| = {scale:.3e}",
        )
    return (overlap + overlap.T) / 2
