"""Fields of a PySCF molecule on points and its DFT integration grid (angstrom in, a.u. out)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pyscf import dft, gto
from pyscf.lib.parameters import BOHR

from rhocore.api import IntegrationGrid
from rhocore_pyscf.convention import aux_ao_map

#: Points evaluated at once, to bound the memory of the AO values (points x functions).
CHUNK = 20000


def integration_grid(mol: gto.Mole, level: int) -> IntegrationGrid:
    """PySCF's Becke-partitioned DFT grid: points in angstrom, weights in bohr^3."""
    grids = dft.gen_grid.Grids(mol)
    grids.level = level
    grids.build(with_non0tab=False)
    return IntegrationGrid(points=grids.coords * BOHR, weights=np.array(grids.weights))


def density_on_points(
    mol: gto.Mole, density_matrix: np.ndarray, points_angstrom: np.ndarray
) -> np.ndarray:
    """rho(r) = sum_ij P_ij phi_i(r) phi_j(r) on points (angstrom), bohr^-3."""
    return evaluate_in_chunks(
        points_angstrom,
        lambda coords: dft.numint.eval_rho(
            mol, dft.numint.eval_ao(mol, coords), density_matrix, hermi=1
        ),
    )


def aux_field_on_points(
    auxmol: gto.Mole, coefficients: np.ndarray, points_angstrom: np.ndarray
) -> np.ndarray:
    """sum_b d_b chi_b(r) for coefficients in ``auxmol``'s AO order, on points (angstrom)."""
    return evaluate_in_chunks(
        points_angstrom, lambda coords: auxmol.eval_gto("GTOval_sph", coords) @ coefficients
    )


def canonical_aux_field_on_points(
    auxmol: gto.Mole, coefficients: np.ndarray, points_angstrom: np.ndarray
) -> np.ndarray:
    """sum_b d_b chi_b(r) for coefficients in rhocore's canonical order, on points (angstrom)."""
    pyscf_order = aux_ao_map(auxmol).from_canonical(np.asarray(coefficients, dtype=float))
    return aux_field_on_points(auxmol, pyscf_order, points_angstrom)


def evaluate_in_chunks(
    points_angstrom: np.ndarray, evaluate: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``evaluate(coords_bohr)`` over the points in chunks of CHUNK, to bound memory."""
    coords = np.asarray(points_angstrom, dtype=float).reshape(-1, 3) / BOHR
    values = [evaluate(coords[start : start + CHUNK]) for start in range(0, len(coords), CHUNK)]
    return np.concatenate(values) if values else np.zeros(0)
