"""Kohn-Sham SCF of a PySCF molecule and its orbital data in rhocore's units."""

from __future__ import annotations

import numpy as np
from pyscf import dft, gto
from pyscf.data.nist import HARTREE2EV

from rhocore.api import OrbitalData
from rhocore_pyscf.options import PySCFOptions


def run_kohn_sham(mol: gto.Mole, options: PySCFOptions) -> dft.rks.KohnShamDFT:
    """A finished RKS (ROKS when spin > 0) or UKS calculation; may be unconverged."""
    solver = dft.UKS(mol) if options.is_unrestricted else dft.RKS(mol)
    if options.density_fit:
        solver = solver.density_fit(auxbasis=options.density_fit_basis)
    solver.xc = options.xc
    solver.conv_tol = options.conv_tol
    solver.max_cycle = options.max_cycle
    solver.grids.level = options.grid_level
    solver.verbose = 0
    solver.kernel()
    return solver


def orbital_data(solver: dft.rks.KohnShamDFT) -> OrbitalData:
    """Energies (eV) and occupations of shape (n_spin, 1, n_mo); one k-point of weight 1.

    The Fermi level is the midpoint between the highest occupied and the lowest
    unoccupied orbital over both spin channels (eV), or the highest occupied energy when
    every orbital is occupied.
    """
    n_spin = 2 if np.asarray(solver.mo_occ).ndim == 2 else 1
    energies = np.reshape(solver.mo_energy, (n_spin, 1, -1)) * HARTREE2EV
    occupations = np.reshape(solver.mo_occ, (n_spin, 1, -1)).astype(float)
    occupied = occupations > 0
    homo = float(energies[occupied].max())
    fermi = homo if occupied.all() else 0.5 * (homo + float(energies[~occupied].min()))
    return OrbitalData(energies, occupations, np.ones(1), fermi_level=fermi)


def mo_coefficients(solver: dft.rks.KohnShamDFT) -> np.ndarray:
    """Orbital coefficients of shape (n_spin, n_ao, n_mo)."""
    mo_coeff = np.asarray(solver.mo_coeff)
    return mo_coeff if mo_coeff.ndim == 3 else mo_coeff[None]
