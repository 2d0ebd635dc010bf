"""Exchange-correlation energy and potential of an RI density on a DFT grid.

The fitted density rho(r) = sum_P d_P chi_P(r) is evaluated block by block on the grid,
each block skipping the auxiliary shells that vanish on it (PySCF's screening index), into
one reused buffer: the cost is that of evaluating the auxiliary functions where they
matter. Two forms of the potential:

* :func:`xc_energy_and_potential` integrates V_mn = <phi_m phi_n | v_xc> on the grid, the
  orbital-pair products contracted with PySCF's sparse AO-pair kernels, as its own SCF does;
* :func:`xc_energy_and_projections` gives q_P = <chi_P | v_xc> only. With the Coulomb-metric
  RI of the orbital pairs, phi_m phi_n ~ sum_PQ (mn|P) (J^-1)_PQ chi_Q, the potential matrix is
  V_mn ~ sum_P (mn|P) z_P with J z = q: the same three-centre contraction as the Coulomb
  matrix, so a density-fitted SCF's tensors give J and V_xc in one pass and no orbital is
  evaluated on the grid. Its error is the RI error of the orbital pairs.

Functions over arrays in atomic units (hartree, bohr) and PySCF's AO order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pyscf import dft, gto
from pyscf.dft import numint

from rhocore.api import RhocoreError

#: Below this density (bohr^-3) a point counts as vacuum: the fitted density can dip
#: slightly below zero far from the atoms, where libxc is undefined.
DENSITY_FLOOR = 1e-12
#: Grid points per block (a multiple of PySCF's screening block of 56 points).
BLOCK = 56 * 64


class FunctionalError(RhocoreError, ValueError):
    """A functional whose energy or potential cannot be had from a density alone."""


def functional_kind(xc: str) -> str:
    """'LDA' or 'GGA'; other functionals need orbitals and raise :class:`FunctionalError`."""
    kind = dft.libxc.xc_type(xc)
    if dft.libxc.is_hybrid_xc(xc) or dft.libxc.is_nlc(xc) or kind not in ("LDA", "GGA"):
        raise FunctionalError(
            f"the functional '{xc}' ({kind}{', hybrid' if dft.libxc.is_hybrid_xc(xc) else ''}) "
            "needs Kohn-Sham orbitals (exact exchange, kinetic-energy density or a non-local "
            "kernel); a density alone gives the energy and potential of LDA and GGA "
            "functionals only. Use a pure functional such as 'pbe'."
        )
    return kind


def dft_grids(mol: gto.Mole, level: int) -> dft.gen_grid.Grids:
    """PySCF's Becke grid of ``level`` for ``mol`` (the grid the backend's SCF uses)."""
    grids = dft.gen_grid.Grids(mol)
    grids.level = level
    grids.build(with_non0tab=True)
    return grids


def _built(grids: dft.gen_grid.Grids) -> dft.gen_grid.Grids:
    if grids.coords is None:
        grids.build(with_non0tab=True)
    return grids


def _function_blocks(
    mol: gto.Mole, grids: dft.gen_grid.Grids, deriv: int
) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
    """(values, screening mask, weights) of ``mol``'s functions on blocks of ``grids``.

    ``values`` is (n_points, n_ao), or (4, n_points, n_ao) with the gradient for
    ``deriv=1``, in a buffer the next block overwrites. Works for any ``mol`` on the grid
    (the auxiliary molecule included): its screening index is built here when the grid's
    own is for another molecule.
    """
    screen = None if mol is grids.mol else _screen_index(mol, grids)
    blocks = numint.NumInt().block_loop(
        mol, grids, mol.nao_nr(), deriv, non0tab=screen, blksize=BLOCK
    )
    for values, mask, weights, _ in blocks:
        yield values, mask, weights


def _screen_index(mol: gto.Mole, grids: dft.gen_grid.Grids) -> np.ndarray:
    return dft.gen_grid.make_screen_index(mol, grids.coords, cutoff=grids.cutoff)


def _density(values: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """sum_P d_P chi_P (and its gradient) of one block, vacuum set to zero."""
    rho = values @ coefficients
    rho[..., (rho[0] if rho.ndim == 2 else rho) < DENSITY_FLOOR] = 0.0
    return rho


def fitted_density(
    auxmol: gto.Mole, coefficients: np.ndarray, grids: dft.gen_grid.Grids, kind: str
) -> np.ndarray:
    """rho, shape (n,), or (rho, d/dx, d/dy, d/dz), shape (4, n) for a GGA, on ``grids``."""
    deriv = 1 if kind == "GGA" else 0
    blocks = _function_blocks(auxmol, _built(grids), deriv)
    return np.concatenate([_density(values, coefficients) for values, _, _ in blocks], axis=-1)


def xc_energy(
    auxmol: gto.Mole, coefficients: np.ndarray, grids: dft.gen_grid.Grids, xc: str
) -> float:
    """E_xc of the fitted density on ``grids`` for an LDA or GGA functional, hartree."""
    rho = fitted_density(auxmol, coefficients, grids, functional_kind(xc))
    exc = dft.libxc.eval_xc(xc, rho, spin=0, deriv=0)[0]
    return float(grids.weights @ ((rho[0] if rho.ndim == 2 else rho) * exc))


def _xc_on_block(
    xc: str, kind: str, rho: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """E_xc of one block and the weighted potential w * dE/d(rho, grad rho)."""
    exc, vxc = numint.NumInt().eval_xc_eff(xc, rho, deriv=1, xctype=kind, spin=0)[:2]
    density = rho[0] if kind == "GGA" else rho
    return float((weights * density) @ exc), weights * vxc


def xc_energy_and_projections(
    auxmol: gto.Mole, coefficients: np.ndarray, grids: dft.gen_grid.Grids, xc: str
) -> tuple[float, np.ndarray]:
    """E_xc (hartree) of the fitted density and q_P = <chi_P | v_xc> (hartree).

    For a GGA, <chi_P | v_xc> = int v_rho chi_P + 2 v_sigma grad rho . grad chi_P (by parts).
    """
    kind = functional_kind(xc)
    energy, projections = 0.0, np.zeros(auxmol.nao_nr())
    for values, _, weights in _function_blocks(auxmol, _built(grids), 1 if kind == "GGA" else 0):
        block_energy, weighted = _xc_on_block(xc, kind, _density(values, coefficients), weights)
        energy += block_energy
        for component, weight in zip(values.reshape(-1, *values.shape[-2:]), weighted, strict=True):
            projections += component.T @ weight
    return energy, projections


def xc_energy_and_potential(
    mol: gto.Mole,
    auxmol: gto.Mole,
    coefficients: np.ndarray,
    grids: dft.gen_grid.Grids,
    xc: str,
) -> tuple[float, np.ndarray]:
    """E_xc (hartree) of the fitted density and its potential matrix V_xc in ``mol``'s AOs.

    V_mn = int v_rho phi_m phi_n + 2 v_sigma grad rho . grad(phi_m phi_n) (GGA), on the grid.
    """
    kind = functional_kind(xc)
    deriv = 1 if kind == "GGA" else 0
    grids = _built(grids)
    ao_loc = mol.ao_loc_nr()
    pair_mask = mol.get_overlap_cond() < -np.log(numint.NumInt().cutoff)
    bins = numint.NBINS * 2 - int(numint.NBINS * np.log(grids.cutoff * 1e2) / np.log(grids.cutoff))
    energy, potential, scaled = 0.0, np.zeros((mol.nao_nr(), mol.nao_nr())), None
    blocks = zip(
        _function_blocks(mol, grids, deriv), _function_blocks(auxmol, grids, deriv), strict=True
    )
    for (ao, mask, weights), (aux, _, _) in blocks:
        block_energy, weighted = _xc_on_block(xc, kind, _density(aux, coefficients), weights)
        energy += block_energy
        if kind == "LDA":
            numint._dot_ao_ao_sparse(
                ao, ao, weighted[0], bins, mask, pair_mask, ao_loc, hermi=1, out=potential
            )
            continue
        weighted[0] *= 0.5  # the symmetric half: potential + potential.T below
        scaled = numint._scale_ao_sparse(ao, weighted, mask, ao_loc, out=scaled)
        numint._dot_ao_ao_sparse(
            ao[0], scaled, None, bins, mask, pair_mask, ao_loc, hermi=0, out=potential
        )
    return energy, potential if kind == "LDA" else potential + potential.T
