"""A PySCF SCF initial guess from a fitted (or predicted) total density.

The Kohn-Sham potential of a density needs the density alone for a pure functional:
the Coulomb matrix J_mn = sum_P (mn|P) d_P of the RI density, the exchange-correlation
matrix V_xc of the same density on the DFT grid, and the core Hamiltonian h. One
diagonalisation of F = h + J + V_xc in the AO overlap, lowest orbitals occupied, gives
orbitals and a density matrix that start the SCF where a converged one would be, up to
the error of the density. Plain functions over arrays in PySCF's AO order (atomic units).

V_xc is integrated on the grid (:mod:`rhocore_pyscf.molecular.xc`), or, with
``xc_matrix="ri"``, taken through the Coulomb-metric RI of the orbital pairs:
V_mn ~ sum_P (mn|P) z_P with J z = <chi|v_xc>, so J + V_xc is one contraction of the
three-centre tensors with d + z and no orbital is evaluated on the grid. A density-fitted
SCF builds its Cholesky-decomposed three-centre tensors once and reuses them in every
cycle: :func:`coulomb_matrix_from_df` contracts those same tensors (refitting the density
onto the SCF's auxiliary basis where it is another), so the guess adds no three-centre
integrals to the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from pyscf import df, dft, gto, lib
from pyscf.df import incore

from rhocore_pyscf.molecular import properties
from rhocore_pyscf.molecular import xc as grid_xc

#: How the guess's V_xc is formed: "grid" integrated over the orbitals on the grid (the
#: default), "ri" through the three-centre tensors (cheaper; the RI error of the orbital
#: pairs makes a slightly worse guess: one more SCF cycle measured in guess_cost.py).
XC_MATRICES = ("grid", "ri")
#: Auxiliary functions per chunk of three-centre integrals when no density fitting is lent.
AUX_CHUNK = 256


@dataclass
class GuessOrbitals:
    """Orbitals of the guess Fock matrix and the density matrix they give.

    ``mo_energy`` (hartree) and ``mo_occ`` have shape (n_mo,) for a closed shell and
    (2, n_mo) for an open one, ``mo_coeff`` (n_ao, n_mo) or (2, n_ao, n_mo);
    ``density_matrix`` (n_ao, n_ao) or (2, n_ao, n_ao) (alpha, beta), as PySCF's RKS and
    UKS take as ``dm0``. ``xc_energy`` is E_xc of the input density (hartree).
    """

    mo_energy: np.ndarray
    mo_coeff: np.ndarray
    mo_occ: np.ndarray
    density_matrix: np.ndarray
    xc_energy: float


def coulomb_matrix(mol: gto.Mole, auxmol: gto.Mole, coefficients: np.ndarray) -> np.ndarray:
    """J_mn = sum_P (mn|P) d_P: the Hartree potential of the RI density in ``mol``'s AOs.

    The three-centre integrals are made a chunk of auxiliary shells at a time (memory
    n_ao^2 AUX_CHUNK, not n_ao^2 n_aux).
    """
    ao_loc = auxmol.ao_loc_nr()
    packed = np.zeros(mol.nao_nr() * (mol.nao_nr() + 1) // 2)
    first = 0
    while first < auxmol.nbas:
        last = int(np.searchsorted(ao_loc, ao_loc[first] + AUX_CHUNK, side="right")) - 1
        last = min(max(last, first + 1), auxmol.nbas)
        shells = (0, mol.nbas, 0, mol.nbas, first, last)
        block = incore.aux_e2(mol, auxmol, "int3c2e", aosym="s2ij", shls_slice=shells)
        packed += block @ coefficients[ao_loc[first] : ao_loc[last]]
        first = last
    return lib.unpack_tril(packed)


def decomposed_vector(j2c: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """The vector v with sum_L (L|mn) v_L = sum_PQ (mn|P) (j2c^-1)_PQ y_Q, y = ``projections``.

    PySCF's density fitting stores (L|mn) = sum_P W_LP (P|mn) with W = chol(j2c)^-1 (or
    j2c^-1/2 over the eigenvectors above its linear-dependence threshold when the Cholesky
    factorisation fails), so v = W j2c^-1 y = chol(j2c)^-1 y (or lambda^-1/2 U^T y).
    """
    try:
        low = scipy.linalg.cholesky(j2c, lower=True)
    except scipy.linalg.LinAlgError:
        eigenvalues, vectors = scipy.linalg.eigh(j2c)
        kept = eigenvalues > incore.LINEAR_DEP_THR
        return (vectors[:, kept].T @ projections) / np.sqrt(eigenvalues[kept])
    return scipy.linalg.solve_triangular(low, projections, lower=True)


def coulomb_matrix_from_df(
    with_df: df.DF, auxmol: gto.Mole, coefficients: np.ndarray
) -> np.ndarray:
    """sum_P (mn|P) d_P of coefficients on ``auxmol``, from ``with_df``'s own tensors (built
    here if the SCF has not built them yet; the SCF then reuses them).

    The density is refitted, Coulomb metric, onto the SCF's auxiliary basis: the result is
    the SCF's own density-fitted J of that density, exact if the two bases are one.
    """
    if with_df._cderi is None:
        with_df.build()
    projections = gto.intor_cross("int2c2e", with_df.auxmol, auxmol) @ coefficients
    vector = decomposed_vector(with_df.auxmol.intor("int2c2e", hermi=1), projections)
    packed = np.zeros(with_df.mol.nao_nr() * (with_df.mol.nao_nr() + 1) // 2)
    start = 0
    for block in with_df.loop():
        packed += vector[start : start + len(block)] @ block
        start += len(block)
    return lib.unpack_tril(packed)


def with_electron_count(
    auxmol: gto.Mole, coefficients: np.ndarray, n_electrons: float, metric: np.ndarray | None = None
) -> np.ndarray:
    """The coefficients closest to ``coefficients`` in the Coulomb metric J (``metric``, else
    computed) that integrate to ``n_electrons``: d + mu J^-1 q, q the basis integrals (a
    Lagrange multiplier)."""
    integrals = properties.basis_integrals(auxmol)
    metric = auxmol.intor("int2c2e", hermi=1) if metric is None else metric
    direction = scipy.linalg.solve(metric, integrals, assume_a="pos")
    shift = (n_electrons - float(integrals @ coefficients)) / float(integrals @ direction)
    return coefficients + shift * direction


def guess_from_density(
    mol: gto.Mole,
    auxmol: gto.Mole,
    coefficients: np.ndarray,
    xc: str,
    grid_level: int = 3,
    *,
    grids: dft.gen_grid.Grids | None = None,
    with_df: df.DF | None = None,
    xc_matrix: str = "grid",
) -> GuessOrbitals:
    """Orbitals and density matrix of the Kohn-Sham Fock matrix of an RI density.

    ``coefficients`` are in ``auxmol``'s AO order; they are first shifted (Coulomb metric)
    to integrate to ``mol.nelectron``. ``xc`` must be an LDA or GGA functional. The
    density is evaluated on ``grids`` if given (an SCF's own, which it then reuses), else on
    a new grid of ``grid_level``. The three-centre tensors are ``with_df``'s if given (a
    molecular density fitting on any auxiliary basis), else integrals of ``auxmol``.
    ``xc_matrix`` is one of :data:`XC_MATRICES`.
    """
    if xc_matrix not in XC_MATRICES:
        raise ValueError(f"xc_matrix must be one of {XC_MATRICES}, not {xc_matrix!r}")
    metric = auxmol.intor("int2c2e", hermi=1)
    coefficients = with_electron_count(
        auxmol, np.asarray(coefficients, float), mol.nelectron, metric
    )
    grids = grid_xc.dft_grids(mol, grid_level) if grids is None else grids
    if xc_matrix == "ri":
        xc_energy, projections = grid_xc.xc_energy_and_projections(auxmol, coefficients, grids, xc)
        vector = coefficients + scipy.linalg.solve(metric, projections, assume_a="pos")
        potential = 0.0
    else:
        xc_energy, potential = grid_xc.xc_energy_and_potential(mol, auxmol, coefficients, grids, xc)
        vector = coefficients
    coulomb = (
        coulomb_matrix(mol, auxmol, vector)
        if with_df is None
        else coulomb_matrix_from_df(with_df, auxmol, vector)
    )
    fock = mol.intor("int1e_kin", hermi=1) + mol.intor("int1e_nuc", hermi=1) + coulomb + potential
    mo_energy, mo_coeff = scipy.linalg.eigh(fock, mol.intor("int1e_ovlp", hermi=1))
    n_alpha, n_beta = mol.nelec
    if n_alpha == n_beta:
        occupation = np.zeros(len(mo_energy))
        occupation[:n_alpha] = 2.0
        occupied = mo_coeff[:, :n_alpha]
        return GuessOrbitals(
            mo_energy, mo_coeff, occupation, 2.0 * occupied @ occupied.T, xc_energy
        )
    occupations = np.zeros((2, len(mo_energy)))
    occupations[0, :n_alpha] = 1.0
    occupations[1, :n_beta] = 1.0
    density = np.array([mo_coeff[:, :n] @ mo_coeff[:, :n].T for n in (n_alpha, n_beta)])
    return GuessOrbitals(
        np.array([mo_energy, mo_energy]),
        np.array([mo_coeff, mo_coeff]),
        occupations,
        density,
        xc_energy,
    )
