"""A PySCF SCF initial guess from a fitted (or predicted) total density.

The Kohn-Sham potential of a density needs the density alone for a pure functional:
the Coulomb matrix J_mn = sum_P (mn|P) d_P of the RI density, the exchange-correlation
matrix V_xc of the same density on the DFT grid, and the core Hamiltonian h. One
diagonalisation of F = h + J + V_xc in the AO overlap, lowest orbitals occupied, gives
orbitals and a density matrix that start the SCF where a converged one would be, up to
the error of the density. Plain functions over arrays in PySCF's AO order (atomic units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from pyscf import gto
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
    mol: gto.Mole, auxmol: gto.Mole, coefficients: np.ndarray, xc: str, grid_level: int = 3
) -> GuessOrbitals:
    """Orbitals and density matrix of the Kohn-Sham Fock matrix of an RI density.

    ``coefficients`` are in ``auxmol``'s AO order; they are first shifted (Coulomb metric)
    to integrate to ``mol.nelectron``. ``xc`` must be an LDA or GGA functional.
    """
    coefficients = with_electron_count(auxmol, np.asarray(coefficients, float), mol.nelectron)
    grids = properties.dft_grids(mol, grid_level)
    xc_energy, xc_potential = properties.xc_energy_and_potential(
        mol, auxmol, coefficients, grids, xc
    )
    fock = (
        mol.intor("int1e_kin", hermi=1)
        + mol.intor("int1e_nuc", hermi=1)
        + coulomb_matrix(mol, auxmol, coefficients)
        + xc_potential
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
