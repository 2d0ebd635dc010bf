"""A PySCF SCF initial guess from a fitted (or predicted) total density.

The Kohn-Sham potential of a density needs the density alone for a pure functional:
the Coulomb matrix J_mn = sum_P (mn|P) d_P of the RI density, the exchange-correlation
matrix V_xc of the same density on the DFT grid, and the core Hamiltonian h. One
diagonalisation of F = h + J + V_xc in the AO overlap, lowest orbitals occupied, gives
orbitals and a density matrix that start the SCF where a converged one would be, up to
the error of the density. Plain functions over arrays in PySCF's AO order (atomic units).

A density-fitted SCF whose auxiliary basis is the density's builds its Cholesky-decomposed
three-centre tensors once and reuses them in every cycle: :func:`coulomb_matrix_from_df`
builds J from those same tensors, so the guess adds no three-centre integrals to the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from pyscf import df, dft, gto, lib
from pyscf.df import incore

from rhocore_pyscf.molecular import properties


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
    """J_mn = sum_P (mn|P) d_P: the Hartree potential of the RI density in ``mol``'s AOs."""
    nao = mol.nao_nr()
    three_centre = incore.aux_e2(mol, auxmol, "int3c2e", aosym="s1")
    return (three_centre.reshape(nao * nao, -1) @ coefficients).reshape(nao, nao)


def cholesky_coefficients(j2c: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The coefficients in the decomposed auxiliary basis of PySCF's density fitting.

    PySCF stores (L|mn) = sum_P W_LP (P|mn) with W = chol(j2c)^-1 (or j2c^-1/2 over the
    eigenvectors above its linear-dependence threshold when the Cholesky factorisation
    fails), so sum_P (mn|P) d_P = sum_L (L|mn) v_L with v = W^-T d.
    """
    try:
        return scipy.linalg.cholesky(j2c, lower=True).T @ coefficients
    except scipy.linalg.LinAlgError:
        eigenvalues, vectors = scipy.linalg.eigh(j2c)
        kept = eigenvalues > incore.LINEAR_DEP_THR
        return np.sqrt(eigenvalues[kept]) * (vectors[:, kept].T @ coefficients)


def coulomb_matrix_from_df(with_df: df.DF, coefficients: np.ndarray) -> np.ndarray:
    """J of RI coefficients on ``with_df``'s auxiliary basis, from its own three-centre
    tensors (built here if the SCF has not built them yet; the SCF then reuses them)."""
    if with_df._cderi is None:
        with_df.build()
    vector = cholesky_coefficients(with_df.auxmol.intor("int2c2e", hermi=1), coefficients)
    packed = np.zeros(with_df.mol.nao_nr() * (with_df.mol.nao_nr() + 1) // 2)
    start = 0
    for block in with_df.loop():
        packed += vector[start : start + len(block)] @ block
        start += len(block)
    return lib.unpack_tril(packed)


def with_electron_count(
    auxmol: gto.Mole, coefficients: np.ndarray, n_electrons: float
) -> np.ndarray:
    """The coefficients closest to ``coefficients`` in the Coulomb metric that integrate to
    ``n_electrons``: d + mu J^-1 q, q the basis integrals (a Lagrange multiplier)."""
    integrals = properties.basis_integrals(auxmol)
    direction = scipy.linalg.solve(auxmol.intor("int2c2e", hermi=1), integrals, assume_a="pos")
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
) -> GuessOrbitals:
    """Orbitals and density matrix of the Kohn-Sham Fock matrix of an RI density.

    ``coefficients`` are in ``auxmol``'s AO order; they are first shifted (Coulomb metric)
    to integrate to ``mol.nelectron``. ``xc`` must be an LDA or GGA functional. V_xc is
    integrated on ``grids`` if given (an SCF's own, which it then reuses), else on a new
    grid of ``grid_level``; J comes from ``with_df``'s tensors if given (its auxiliary
    basis must be ``auxmol``'s), else from the three-centre integrals of ``auxmol``.
    """
    coefficients = with_electron_count(auxmol, np.asarray(coefficients, float), mol.nelectron)
    if grids is None:
        grids = properties.dft_grids(mol, grid_level)
    elif grids.coords is None:
        grids.build(with_non0tab=True)
    xc_energy, xc_potential = properties.xc_energy_and_potential(
        mol, auxmol, coefficients, grids, xc
    )
    coulomb = (
        coulomb_matrix(mol, auxmol, coefficients)
        if with_df is None
        else coulomb_matrix_from_df(with_df, coefficients)
    )
    fock = (
        mol.intor("int1e_kin", hermi=1) + mol.intor("int1e_nuc", hermi=1) + coulomb + xc_potential
    )
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
