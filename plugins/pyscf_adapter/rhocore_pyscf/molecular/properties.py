"""Derived quantities of a density, from RI coefficients and from a density matrix.

Plain functions in atomic units (hartree, bohr, e) over arrays in PySCF's AO order.
The fitted density is rho(r) = sum_P d_P chi_P(r) on an auxiliary molecule; every
quantity that is linear or quadratic in rho is analytic through one- and two-centre
integrals of the auxiliary basis:

* electron count N = sum_P d_P int chi_P, dipole mu = sum_A Z_A R_A - sum_P d_P int r chi_P
  (both through a "constant" function: an s function of exponent 0, so that the cross
  overlap and dipole integrals with it are exactly int chi_P and int r chi_P);
* Hartree energy E_H = 1/2 d^T J d with J_PQ = (P|Q) (``int2c2e``);
* nuclear attraction E_ne = sum_P d_P v_P, v_P = -sum_A Z_A int chi_P(r) / ‖r - R_A‖;
* electrostatic potential on points g: sum_A Z_A / ‖g - R_A‖ - sum_P d_P int chi_P / ‖r - g‖,
  the second term as Coulomb integrals with point charges (steep s functions) at g.

Only the exchange-correlation energy needs a grid (:mod:`rhocore_pyscf.molecular.xc`). The
``exact_*`` functions give the same quantities of the Kohn-Sham density matrix, the
reference that predictions are compared with.
"""

from __future__ import annotations

import numpy as np
from pyscf import dft, gto, scf

from rhocore_pyscf.molecular.xc import functional_kind

#: Points per block of point-charge integrals.
BLOCK = 8192


def constant_function(mol: gto.Mole) -> gto.Mole:
    """A one-function molecule whose only function is exactly 1 everywhere.

    An s shell of exponent 0 with its coefficient set by hand (libcint's s functions carry
    a factor 1/sqrt(4 pi), hence the sqrt(4 pi)); cross integrals with it are moments.
    """
    one = gto.Mole()
    one.atom = [["ghost", (0.0, 0.0, 0.0)]]
    one.basis = {"ghost": [[0, [1.0, 1.0]]]}
    one.unit = "Bohr"
    one.verbose = 0
    one.build()
    one._env[one._bas[0, gto.PTR_EXP]] = 0.0
    one._env[one._bas[0, gto.PTR_COEFF]] = np.sqrt(4.0 * np.pi)
    return one


def basis_integrals(auxmol: gto.Mole) -> np.ndarray:
    """int chi_P over all space for each auxiliary function, bohr^3."""
    return gto.intor_cross("int1e_ovlp", auxmol, constant_function(auxmol))[:, 0]


def basis_first_moments(auxmol: gto.Mole) -> np.ndarray:
    """int r chi_P about the origin, shape (3, n_aux), bohr^4."""
    with auxmol.with_common_orig((0.0, 0.0, 0.0)):
        return gto.intor_cross("int1e_r", auxmol, constant_function(auxmol))[:, :, 0]


def electron_count(auxmol: gto.Mole, coefficients: np.ndarray) -> float:
    """Integral of the fitted density, electrons."""
    return float(basis_integrals(auxmol) @ coefficients)


def nuclear_dipole(mol: gto.Mole) -> np.ndarray:
    """sum_A Z_A R_A about the origin, e bohr."""
    return mol.atom_charges() @ mol.atom_coords()


def dipole_moment(auxmol: gto.Mole, coefficients: np.ndarray) -> np.ndarray:
    """Total dipole of nuclei and fitted electron density about the origin, e bohr.

    The molecule must be neutral for the value not to depend on the origin.
    """
    return nuclear_dipole(auxmol) - basis_first_moments(auxmol) @ coefficients


def hartree_energy(auxmol: gto.Mole, coefficients: np.ndarray) -> float:
    """E_H = 1/2 int int rho(r) rho(r') / ‖r - r'‖ of the fitted density, hartree."""
    return 0.5 * float(coefficients @ auxmol.intor("int2c2e", hermi=1) @ coefficients)


def point_charge_integrals(auxmol: gto.Mole, points_bohr: np.ndarray) -> np.ndarray:
    """int chi_P(r) / ‖r - g‖ for every point g, shape (n_points, n_aux), hartree / e."""
    points = np.asarray(points_bohr, dtype=float).reshape(-1, 3)
    blocks = [
        gto.intor_cross("int2c2e", gto.fakemol_for_charges(points[start : start + BLOCK]), auxmol)
        for start in range(0, len(points), BLOCK)
    ]
    return np.concatenate(blocks) if blocks else np.zeros((0, auxmol.nao_nr()))


def nuclear_attraction_energy(auxmol: gto.Mole, coefficients: np.ndarray) -> float:
    """E_ne = -sum_A Z_A int rho(r) / ‖r - R_A‖ of the fitted density, hartree."""
    at_nuclei = point_charge_integrals(auxmol, auxmol.atom_coords())
    return -float(auxmol.atom_charges() @ at_nuclei @ coefficients)


def electrostatic_energy(auxmol: gto.Mole, coefficients: np.ndarray) -> float:
    """E_H + E_ne + E_nn: all classical Coulomb energy of electrons and nuclei, hartree."""
    return (
        hartree_energy(auxmol, coefficients)
        + nuclear_attraction_energy(auxmol, coefficients)
        + float(auxmol.energy_nuc())
    )


def electrostatic_potential(
    auxmol: gto.Mole, coefficients: np.ndarray, points_bohr: np.ndarray
) -> np.ndarray:
    """Potential of nuclei and fitted electrons on points (bohr), hartree / e.

    Infinite on a nucleus.
    """
    points = np.asarray(points_bohr, dtype=float).reshape(-1, 3)
    distances = np.linalg.norm(points[:, None, :] - auxmol.atom_coords()[None], axis=2)
    with np.errstate(divide="ignore"):
        nuclear = (auxmol.atom_charges()[None] / distances).sum(axis=1)
    return nuclear - point_charge_integrals(auxmol, points) @ coefficients


# --- the same quantities of a Kohn-Sham density matrix (spin-summed, AO basis) ---


def exact_electron_count(mol: gto.Mole, density_matrix: np.ndarray) -> float:
    """tr(P S), electrons."""
    return float(np.einsum("ij,ji->", density_matrix, mol.intor("int1e_ovlp", hermi=1)))


def exact_dipole_moment(mol: gto.Mole, density_matrix: np.ndarray) -> np.ndarray:
    """Dipole of nuclei and the density matrix's electrons about the origin, e bohr."""
    with mol.with_common_orig((0.0, 0.0, 0.0)):
        moments = mol.intor("int1e_r", comp=3)
    return nuclear_dipole(mol) - np.einsum("xij,ji->x", moments, density_matrix)


def exact_hartree_energy(mol: gto.Mole, density_matrix: np.ndarray) -> float:
    """1/2 tr(P J[P]) with four-centre integrals, hartree."""
    coulomb = scf.hf.get_jk(mol, density_matrix, with_k=False)[0]
    return 0.5 * float(np.einsum("ij,ji->", coulomb, density_matrix))


def exact_electrostatic_energy(mol: gto.Mole, density_matrix: np.ndarray) -> float:
    """E_H + E_ne + E_nn of the density matrix, hartree."""
    nuclear = float(np.einsum("ij,ji->", mol.intor("int1e_nuc", hermi=1), density_matrix))
    return exact_hartree_energy(mol, density_matrix) + nuclear + float(mol.energy_nuc())


def exact_xc_energy(
    mol: gto.Mole, density_matrix: np.ndarray, grids: dft.gen_grid.Grids, xc: str
) -> float:
    """E_xc of the density matrix on ``grids`` (LDA or GGA), hartree."""
    functional_kind(xc)
    return float(dft.numint.NumInt().nr_rks(mol, grids, xc, density_matrix)[1])


def exact_electrostatic_potential(
    mol: gto.Mole, density_matrix: np.ndarray, points_bohr: np.ndarray
) -> np.ndarray:
    """Potential of nuclei and the density matrix's electrons on points (bohr), hartree / e."""
    points = np.asarray(points_bohr, dtype=float).reshape(-1, 3)
    distances = np.linalg.norm(points[:, None, :] - mol.atom_coords()[None], axis=2)
    with np.errstate(divide="ignore"):
        nuclear = (mol.atom_charges()[None] / distances).sum(axis=1)
    blocks = [
        mol.intor("int1e_grids", grids=points[start : start + 512])
        for start in range(0, len(points), 512)
    ]
    electronic = np.concatenate([np.einsum("gij,ji->g", b, density_matrix) for b in blocks])
    return nuclear - electronic
