"""RI fit of a weighted orbital density of a PySCF molecule, in rhocore's canonical order.

Shared by every backend whose orbitals end up as PySCF MO coefficients: the ``pyscf``
backend (its own SCF) and the ``cclib`` backend (orbitals read from a finished output).
"""

from __future__ import annotations

import numpy as np
from pyscf import gto

from rhocore.api import IllConditionedMetricError, MetricKind, RIFit, solve_fit
from rhocore_pyscf import rifit
from rhocore_pyscf.convention import aux_ao_map


def fit_orbital_density(
    mol: gto.Mole,
    auxmol: gto.Mole,
    mo_coeff: np.ndarray,
    weights: np.ndarray,
    metric: MetricKind,
    *,
    target_integral: float | None,
    condition_limit: float,
    label: str,
) -> RIFit:
    """Fit ``sum_s sum_a W[s, a] |psi_sa|^2`` onto ``auxmol``'s functions.

    ``mo_coeff`` is (n_spin, n_ao, n_mo) in ``mol``'s AO order, ``weights`` (n_spin, n_mo);
    ``target_integral``, when given, is imposed on the fitted integral. ``label`` names
    the structure and auxiliary basis in errors. ``field_state`` holds the AO density
    matrix.
    """
    density_matrix = rifit.weighted_density_matrix(mo_coeff, weights)
    ao_map = aux_ao_map(auxmol)
    matrix = ao_map.to_canonical_matrix(rifit.metric_matrix(auxmol, metric))
    projected = ao_map.to_canonical(rifit.projections(mol, auxmol, density_matrix, metric))
    integrals = ao_map.to_canonical(rifit.basis_integrals(auxmol))
    try:
        coefficients = solve_fit(matrix, projected, integrals, target_integral, condition_limit)
    except IllConditionedMetricError as error:
        raise IllConditionedMetricError(
            f"RI fit of {label}: {error} Atoms very close together also make their functions "
            "nearly identical; check the geometry."
        ) from None
    return RIFit(
        coefficients=coefficients,
        projections=matrix @ coefficients,
        metric=matrix,
        metric_kind=metric,
        layout=ao_map.layout,
        integrals=integrals,
        field_state={"density_matrix": density_matrix},
    )
