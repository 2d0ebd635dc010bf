"""The ``relative`` RI metric: fit errors weighed by 1 / (|field| + floor)^p on a grid.

The overlap metric minimises ``int (rho_fit - rho)^2``: errors where the field is large
dominate, so the exponential tail of a surface field in the vacuum, which is all an STM
tip sees, is left to chance (for an ILDOS of Si(100) the overlap fit is off by 25 % three
angstrom above the surface). The relative metric minimises

    int (rho_fit - rho)^2 / (|rho| + floor)^p,

which weighs the error relative to the local field: the tail counts like the bulk, and
``floor`` (bohr^-3) stops the far vacuum, where Gaussians cannot follow an exponential,
from dominating. With p = 1 the relative error is weighed by the field itself; with
p = 2 it is the squared relative error, which sets the error of a constant-current tip
height (``dz = (drho / rho) / kappa`` for a field decaying as ``exp(-kappa z)``), so the
low-field troughs of an STM image count as much as its peaks. Its matrix
``S_bc = int chi_b chi_c / (|rho| + floor)^p`` depends on the fitted field, so each
structure (and each target) has its own, and training on the stored S weighs prediction
errors the same way. The integrals are sums over the backend's grid of the cell.
"""

from __future__ import annotations

import numpy as np
from pyscf.lib.parameters import BOHR
from pyscf.pbc import gto as pbcgto

#: Grid points whose auxiliary functions are evaluated at once (bounds memory).
POINTS_PER_CHUNK = 20_000


def relative_metric_terms(
    auxcell: pbcgto.Cell,
    points_angstrom: np.ndarray,
    volumes: np.ndarray,
    field: np.ndarray,
    floor: float,
    power: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(S, w)`` of the relative metric in PySCF's order of the auxiliary functions.

    ``field`` is the field to fit on ``points_angstrom`` (bohr^-3) and ``volumes`` the
    grid weights (bohr^3); ``S_bc = sum_g v_g chi_b chi_c / (|rho_g| + floor)^p`` and
    ``w_b = sum_g v_g chi_b rho_g / (|rho_g| + floor)^p``, with ``chi`` the Gamma-point
    lattice sums of the auxiliary functions and ``p`` the ``power``.
    """
    if floor <= 0:
        raise ValueError(f"the floor of the relative metric must be positive, not {floor}")
    metric = np.zeros((auxcell.nao, auxcell.nao))
    projections = np.zeros(auxcell.nao)
    for start in range(0, len(points_angstrom), POINTS_PER_CHUNK):
        chunk = slice(start, start + POINTS_PER_CHUNK)
        values = np.asarray(auxcell.pbc_eval_gto("GTOval_sph", points_angstrom[chunk] / BOHR))
        weights = volumes[chunk] / (np.abs(field[chunk]) + floor) ** power
        scaled = values.real * np.sqrt(weights)[:, None]
        metric += scaled.T @ scaled  # one symmetric rank-k update: half a general product
        projections += values.real.T @ (weights * field[chunk])
    return 0.5 * (metric + metric.T), projections
