"""Dense symmetric linear algebra of the closed-form ridge, on PyTorch's LAPACK (MKL).

The OpenBLAS 0.3.30 bundled with scipy crashed (segmentation fault) in its two-thread
Cholesky factorisation from 16 000² on (22 576² in the ridge), so runs needed
``OPENBLAS_NUM_THREADS=1``. PyTorch's MKL factorised 24 000² with two threads, in place,
and 1.2-1.5x faster than scipy's two threads below that size (benchmarks/ridge_cholesky.py).
Each function works on numpy arrays in place, through tensors that share their memory.
"""

from __future__ import annotations

import numpy as np
import torch

#: Columns of the symmetric matrix per product (23 000 x 2048 doubles: 0.4 GB of output).
COLUMN_BLOCK = 2048


def add_gram_lower(matrix: np.ndarray, rows: np.ndarray) -> None:
    """matrix += rows^T rows on the lower triangle (and the diagonal blocks), in place.

    Block by block of columns, so that no product needs one output of the whole size.
    """
    target = torch.from_numpy(matrix)
    source = torch.from_numpy(np.ascontiguousarray(rows))
    for start in range(0, source.shape[1], COLUMN_BLOCK):
        stop = min(start + COLUMN_BLOCK, source.shape[1])
        target[start:, start:stop] += source[:, start:].T @ source[:, start:stop]


def cholesky_in_place(matrix: np.ndarray) -> bool:
    """Overwrite the C-ordered symmetric ``matrix`` (its lower triangle is read) with its
    lower Cholesky factor; False where it is not positive definite in floating point."""
    if not matrix.flags.c_contiguous:
        raise ValueError("cholesky_in_place needs a C-ordered matrix")
    tensor = torch.from_numpy(matrix)
    info = torch.empty((), dtype=torch.int32)
    torch.linalg.cholesky_ex(tensor, out=(tensor, info))
    return int(info) == 0


def cholesky_solve(factor: np.ndarray, right_side: np.ndarray) -> np.ndarray:
    """x of (L L^T) x = b, from the lower factor L of :func:`cholesky_in_place`."""
    lower = torch.from_numpy(factor)
    column = torch.from_numpy(np.ascontiguousarray(right_side, dtype=factor.dtype))[:, None]
    half = torch.linalg.solve_triangular(lower, column, upper=False)
    return torch.linalg.solve_triangular(lower.T, half, upper=True).numpy().ravel()
