"""Real spherical harmonics of the canonical convention and their rotation matrices.

The canonical convention is the one of featomic's lambda-SOAP: m = -l..l, no
Condon-Shortley phase, ``Y_1 = (y, z, x)`` up to normalisation. Wigner-D matrices are
obtained numerically from the harmonics themselves, so the rotation of a coefficient
vector depends on nothing but this definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.special import sph_harm_y

from rhocore.qc.basis import BasisLayout


def real_spherical_harmonics(l: int, vectors: np.ndarray) -> np.ndarray:
    """Orthonormal real spherical harmonics Y_lm of the directions of ``vectors``.

    Returns shape (n_points, 2l+1), columns m = -l..l.
    """
    vectors = np.asarray(vectors, dtype=float)
    r = np.linalg.norm(vectors, axis=1)
    theta = np.arccos(np.clip(vectors[:, 2] / np.where(r > 0, r, 1.0), -1.0, 1.0))
    phi = np.arctan2(vectors[:, 1], vectors[:, 0])
    out = np.empty((len(vectors), 2 * l + 1))
    for m in range(-l, l + 1):
        complex_y = sph_harm_y(l, abs(m), theta, phi)
        sign = (-1.0) ** abs(m)
        if m > 0:
            out[:, m + l] = np.sqrt(2.0) * sign * complex_y.real
        elif m < 0:
            out[:, m + l] = np.sqrt(2.0) * sign * complex_y.imag
        else:
            out[:, l] = complex_y.real
    return out


def wigner_d_real(l: int, rotation: np.ndarray) -> np.ndarray:
    """Matrix D with ``d' = D d`` for coefficients of Y_l when a field is rotated by R.

    A field ``f(r) = sum_m d_m Y_lm(r)`` rotated by the 3x3 matrix R is
    ``f(R^-1 r) = sum_m d'_m Y_lm(r)``.
    """
    rng = np.random.default_rng(l)
    points = rng.normal(size=(4 * (2 * l + 1) + 8, 3))
    before = real_spherical_harmonics(l, points)
    after = real_spherical_harmonics(l, points @ np.asarray(rotation))
    return np.linalg.lstsq(before, after, rcond=None)[0]


def random_rotation(seed: int) -> np.ndarray:
    """A reproducible random proper rotation matrix."""
    return Rotation.random(random_state=seed).as_matrix()


def rotate_coefficients(
    coefficients: np.ndarray, layout: BasisLayout, numbers: Sequence[int], rotation: np.ndarray
) -> np.ndarray:
    """Canonical coefficients of the field after rotating the structure by ``rotation``."""
    wigner = {l: wigner_d_real(l, rotation) for l in range(layout.max_lmax + 1)}
    blocks = layout.split(np.asarray(coefficients), numbers)
    rotated = {
        (l, z): np.einsum("mk,akn->amn", wigner[l], block) for (l, z), block in blocks.items()
    }
    return layout.join(rotated, numbers)
