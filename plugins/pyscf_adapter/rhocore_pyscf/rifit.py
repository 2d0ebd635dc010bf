"""Integrals of the RI fit, in PySCF's AO order: plain functions over arrays.

The fitted field minimises the metric error ``(rho - rho_fit | rho - rho_fit)`` where the
metric is the overlap (L2 norm) or the Coulomb interaction; its coefficients solve
``S d = w`` with ``S_bc = (b|c)`` and ``w_b = sum_ij P_ij (b|ij)`` in that metric; the
solve itself (conditioning check, charge constraint) is :func:`rhocore.qc.rifit.solve_fit`.
"""

from __future__ import annotations

import numpy as np
from pyscf import gto, lib
from pyscf.df import incore
from pyscf.gto.ft_ao import ft_ao

from rhocore.api import MetricKind

#: PySCF integral names of the metric S and of the three-centre projections, per metric.
METRIC_INTEGRALS: dict[str, tuple[str, str]] = {
    "overlap": ("int1e_ovlp", "int3c1e"),
    "coulomb": ("int2c2e", "int3c2e"),
}


def weighted_density_matrix(mo_coeff: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """P = sum_s sum_a W[s, a] C_s[:, a] C_s[:, a]^T (AO basis, spin-summed).

    ``mo_coeff`` has shape (n_spin, n_ao, n_mo), ``weights`` (n_spin, n_mo).
    """
    return np.einsum("sia,sa,sja->ij", mo_coeff, weights, mo_coeff)


def metric_matrix(auxmol: gto.Mole, metric: MetricKind) -> np.ndarray:
    """S_bc: overlap <b|c> or Coulomb (b|c) of the auxiliary functions (a.u.)."""
    return auxmol.intor(METRIC_INTEGRALS[metric][0], hermi=1)


def projections(
    mol: gto.Mole, auxmol: gto.Mole, density_matrix: np.ndarray, metric: MetricKind
) -> np.ndarray:
    """w_b = sum_ij P_ij <b|ij> (overlap) or (b|ij) (Coulomb) for a symmetric P.

    A Cartesian orbital basis (outputs of codes that use 6D/10F) with a spherical
    auxiliary basis: the integrals run over the Cartesian auxiliary functions and are
    contracted onto the spherical ones, as PySCF integrates only like with like.
    """
    cartesian_aux = None
    if mol.cart and not auxmol.cart:
        cartesian_aux = auxmol.copy()
        cartesian_aux.cart = True
        cartesian_aux.build(False, False)
    three_centre = incore.aux_e2(
        mol, cartesian_aux or auxmol, METRIC_INTEGRALS[metric][1], aosym="s2ij"
    )
    # the lower triangle holds each off-diagonal pair once: count it twice
    packed = lib.pack_tril(2.0 * density_matrix - np.diag(np.diag(density_matrix)))
    projected = packed @ three_centre
    if cartesian_aux is not None:
        projected = projected @ cartesian_aux.cart2sph_coeff()
    return projected


def basis_integrals(auxmol: gto.Mole) -> np.ndarray:
    """Integral of every auxiliary function over all space: its Fourier transform at k = 0.

    Non-zero only for l = 0; in bohr^3 per unit coefficient.
    """
    return ft_ao(auxmol, np.zeros((1, 3))).real[0]
