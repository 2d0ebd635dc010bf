"""Periodic cells in the ``pyscf`` backend: pyscf.pbc Kohn-Sham and RI fits of cell fields.

A structure with any ``atoms.pbc`` set is a cell repeated along its three lattice vectors
(a slab keeps the vacuum of its cell along the non-periodic axis). The SCF is Kohn-Sham DFT
with GTH pseudopotentials and their basis sets, at the Gamma point or on a Gamma-centred
Monkhorst-Pack k-grid, with PySCF's multigrid integration of J and XC: for an H4Si8 slab
with 10 angstrom of vacuum (gth-szv, 100 hartree) it takes 5.5 s and 0.2 GB where plain FFT
integration takes 62 s and 9.5 GB.

The fitted field is periodic, ``rho(r) ~ sum_b d_b chi_b(r)`` with ``chi_b`` the
Gamma-point lattice sum of auxiliary function b, whichever k-points the density came from.
In the overlap metric over one cell, ``S_bc = int_cell chi_b chi_c`` (lattice-summed
two-centre overlaps), ``w_b = int_cell chi_b rho`` (lattice-summed three-centre overlaps,
per k-point) and the integral of ``chi_b`` over the cell is that of one function over all
space. The Coulomb metric is refused: the Coulomb energy of a periodic charge distribution
diverges at G = 0 unless the cell is neutral, which a fitted orbital density never is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ase
import numpy as np
import scipy.optimize
from pyscf import lib
from pyscf.data.nist import HARTREE2EV
from pyscf.dft import libxc
from pyscf.gto.basis import BasisNotFoundError
from pyscf.lib.parameters import BOHR
from pyscf.pbc import dft as pbcdft
from pyscf.pbc import gto as pbcgto
from pyscf.pbc import tools
from pyscf.pbc.df import incore
from pyscf.pbc.dft import multigrid
from pyscf.pbc.gto import pseudo
from pyscf.pbc.scf.addons import smearing
from scipy.special import expit

from rhocore.api import (
    BasisLayout,
    IllConditionedMetricError,
    InputError,
    IntegrationGrid,
    OrbitalData,
    RIFit,
    SCFResult,
    solve_fit,
)
from rhocore_pyscf import rifit
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.molecular.grids import evaluate_in_chunks
from rhocore_pyscf.molecular.molecules import PySCFBackendError, build_auxmol
from rhocore_pyscf.options import PySCFOptions
from rhocore_pyscf.periodic.relative_metric import relative_metric_terms

logger = logging.getLogger(__name__)

#: Options that only periodic cells use; a molecule with any of them set is refused.
PERIODIC_ONLY = ("pseudo", "kpts", "ke_cutoff", "smearing")
#: Largest block of three-centre integrals held at once, bytes.
BLOCK_BYTES = 2**28


@dataclass
class PeriodicState:
    """What a fit needs from a periodic SCF: the cell, k-points and orbital coefficients.

    ``kpts`` are absolute (bohr^-1, shape (n_k, 3)); ``mo_coeff`` has shape
    (n_spin, n_k, n_ao, n_mo), real at the Gamma point and complex otherwise.
    """

    cell: pbcgto.Cell
    kpts: np.ndarray
    mo_coeff: np.ndarray


def is_periodic(atoms: ase.Atoms) -> bool:
    """Whether ``atoms`` is a periodic cell (any ``pbc`` set) for the pyscf backend."""
    return bool(np.any(atoms.pbc))


def check_molecule_options(options: PySCFOptions, formula: str) -> None:
    """Refuse periodic-only options for a molecule instead of silently ignoring them."""
    fields = PySCFOptions.model_fields
    given = [name for name in PERIODIC_ONLY if getattr(options, name) != fields[name].default]
    if options.metric == "relative":
        given.append("metric='relative'")
    if given:
        raise PySCFBackendError(
            f"structure {formula} is a molecule (pbc all False), but the periodic-only "
            f"options {given} are set. Remove them, or set atoms.pbc and a cell for a "
            "periodic structure."
        )


def check_periodic_options(atoms: ase.Atoms, options: PySCFOptions) -> None:
    """Refuse options a periodic cell cannot run with, naming every problem at once."""
    problems = []
    if options.metric == "coulomb":
        problems.append(
            "metric 'coulomb' diverges at G = 0 for a periodic density; set "
            "metric='overlap' or 'relative'"
        )
    if not options.basis.lower().startswith("gth"):
        problems.append(
            f"the orbital basis '{options.basis}' is all-electron; periodic cells run with "
            f"GTH pseudopotentials (pseudo '{options.periodic_pseudo}') and a GTH basis "
            "such as 'gth-szv' or 'gth-dzvp'"
        )
    semilocal = libxc.xc_type(options.xc) in ("LDA", "GGA")
    if not semilocal or libxc.is_hybrid_xc(options.xc) or libxc.is_nlc(options.xc):
        problems.append(
            f"functional '{options.xc}' is not a pure LDA or GGA, the only kind PySCF's "
            "multigrid integration of periodic cells supports"
        )
    sampled = [axis for axis in range(3) if not atoms.pbc[axis] and options.kpts[axis] > 1]
    if sampled:
        problems.append(
            f"kpts {list(options.kpts)} samples the non-periodic axes {sampled}; use 1 there"
        )
    if options.density_fit:
        problems.append("density_fit applies to molecules only; remove it for periodic cells")
    if np.prod(options.kpts) > 1 and (options.charge or options.spin):
        problems.append(
            "a k-point grid needs a neutral closed-shell setting (PySCF counts charge and "
            "spin per k-point supercell); use the Gamma point for charge or spin"
        )
    if abs(np.linalg.det(np.asarray(atoms.cell))) < 1e-6:
        problems.append(
            "its cell has no volume; give all three lattice vectors (a slab needs its "
            "vacuum along the non-periodic one)"
        )
    if problems:
        raise PySCFBackendError(
            f"structure {atoms.get_chemical_formula()} is periodic (pbc={atoms.pbc.tolist()}): "
            + "; ".join(problems)
            + "."
        )


def build_cell(atoms: ase.Atoms, options: PySCFOptions, *, for_scf: bool = True) -> pbcgto.Cell:
    """The PySCF cell of ``atoms`` (angstrom) in the orbital basis with GTH pseudopotentials.

    With ``for_scf=False`` the cell is neutral with the lowest spin, as for molecules:
    integrals and field evaluation do not depend on charge and spin.
    """
    check_periodic_options(atoms, options)
    formula = atoms.get_chemical_formula()
    cell = pbcgto.Cell()
    cell.atom = list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True))
    cell.a = np.asarray(atoms.cell)
    cell.unit = "Angstrom"
    cell.basis = options.basis
    cell.pseudo = options.periodic_pseudo
    cell.charge, cell.spin = (options.charge, options.spin) if for_scf else (0, None)
    if options.ke_cutoff is not None:
        cell.ke_cutoff = options.ke_cutoff
    cell.verbose = 0
    try:
        cell.build()
    except (BasisNotFoundError, KeyError) as error:
        raise PySCFBackendError(
            f"structure {formula}: the GTH basis '{options.basis}' or pseudopotential "
            f"'{options.periodic_pseudo}' does not cover every element ({error}). Choose "
            "'basis' and 'pseudo' that do."
        ) from None
    except RuntimeError as error:
        raise PySCFBackendError(
            f"structure {formula}: PySCF cannot build the cell with charge={cell.charge}, "
            f"spin={cell.spin} ({' '.join(str(error).split())}). Check the backend options "
            "'charge' and 'spin' (2S per cell)."
        ) from None
    return cell


def build_auxcell(cell: pbcgto.Cell, options: PySCFOptions, formula: str) -> pbcgto.Cell:
    """The cell with the auxiliary basis as its functions, with a lattice-sum radius for it.

    The orbital cell's radius is too short for diffuse auxiliary functions: lattice sums
    of S and of fields would be cut off.
    """
    auxcell = build_auxmol(cell, options, formula)
    auxcell.rcut = pbcgto.estimate_rcut(auxcell)
    return auxcell


def k_points(cell: pbcgto.Cell, options: PySCFOptions) -> np.ndarray:
    """Absolute k-points (bohr^-1) of the Gamma-centred Monkhorst-Pack grid of ``options``."""
    return cell.make_kpts(list(options.kpts))


def run_kohn_sham(cell: pbcgto.Cell, kpts: np.ndarray, options: PySCFOptions):
    """A finished periodic Kohn-Sham calculation with multigrid integration; may be unconverged."""
    solver = _kohn_sham_solver(cell, kpts, options)
    solver.xc = options.xc
    solver.conv_tol = options.conv_tol
    solver.max_cycle = options.max_cycle
    solver.verbose = 0
    solver = solver.multigrid_numint()
    if options.smearing > 0:
        solver = smearing(solver, sigma=options.smearing / HARTREE2EV, method="fermi")
    solver.kernel()
    return solver


def _kohn_sham_solver(cell: pbcgto.Cell, kpts: np.ndarray, options: PySCFOptions):
    """RKS, ROKS or UKS at the Gamma point; their k-point versions on a k-grid."""
    gamma = len(kpts) == 1
    if options.is_unrestricted:
        return pbcdft.UKS(cell) if gamma else pbcdft.KUKS(cell, kpts)
    if cell.spin:
        return pbcdft.ROKS(cell) if gamma else pbcdft.KROKS(cell, kpts)
    return pbcdft.RKS(cell) if gamma else pbcdft.KRKS(cell, kpts)


def run_scf(atoms: ase.Atoms, options: PySCFOptions) -> SCFResult:
    """Periodic Kohn-Sham SCF of ``atoms``: orbital data (eV), vacuum level of a slab."""
    formula = atoms.get_chemical_formula()
    cell = build_cell(atoms, options)
    kpts = k_points(cell, options)
    try:
        solver = run_kohn_sham(cell, kpts, options)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as error:
        raise PySCFBackendError(
            f"the periodic SCF of {formula} failed ({error}). Check the geometry and cell, "
            "charge and spin, or try smearing, another basis or a larger ke_cutoff."
        ) from error
    if not solver.converged:
        logger.warning(
            "periodic SCF of %s did not converge in %d cycles (conv_tol %g hartree)",
            formula,
            options.max_cycle,
            options.conv_tol,
        )
    n_spin, n_k = (2 if options.is_unrestricted else 1), len(kpts)
    energies = np.reshape(np.asarray(solver.mo_energy), (n_spin, n_k, -1)) * HARTREE2EV
    occupations = np.reshape(np.asarray(solver.mo_occ, dtype=float), (n_spin, n_k, -1))
    mo_coeff = np.reshape(np.asarray(solver.mo_coeff), (n_spin, n_k, cell.nao, -1))
    k_weights = np.full(n_k, 1.0 / n_k)
    orbitals = OrbitalData(
        energies,
        occupations,
        k_weights,
        fermi_level=fermi_level(energies, occupations, k_weights, options.smearing),
        vacuum_level=vacuum_level(atoms, solver),
    )
    return SCFResult(
        atoms=atoms.copy(),
        orbitals=orbitals,
        total_energy=float(solver.e_tot) * HARTREE2EV,
        converged=bool(solver.converged),
        state=PeriodicState(cell=cell, kpts=kpts, mo_coeff=mo_coeff),
    )


def fermi_level(
    energies: np.ndarray, occupations: np.ndarray, k_weights: np.ndarray, smearing_ev: float
) -> float:
    """Fermi level (eV) over all spins and k-points.

    With smearing: the chemical potential whose Fermi-Dirac occupations hold the electron
    count. Without: the midpoint between the highest occupied and the lowest unoccupied
    state, or the highest occupied when every state is occupied (as for molecules).
    """
    if smearing_ev == 0:
        occupied = occupations > 0
        homo = float(energies[occupied].max())
        return homo if occupied.all() else 0.5 * (homo + float(energies[~occupied].min()))
    per_state = (2.0 / energies.shape[0]) * k_weights[None, :, None]
    n_electrons = float(np.sum(occupations * k_weights[None, :, None]))

    def excess(mu: float) -> float:
        return float(np.sum(per_state * expit((mu - energies) / smearing_ev))) - n_electrons

    margin = 50.0 * smearing_ev
    return float(
        scipy.optimize.brentq(excess, energies.min() - margin, energies.max() + margin, xtol=1e-10)
    )


def weighted_density_matrices(mo_coeff: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """P_k = sum_s sum_a W[s, k, a] C_sk[:, a] C_sk[:, a]^H, shape (n_k, n_ao, n_ao).

    ``mo_coeff`` has shape (n_spin, n_k, n_ao, n_mo), ``weights`` (n_spin, n_k, n_mo) and
    already holds the k-point weights.
    """
    return np.einsum("skia,ska,skja->kij", mo_coeff, weights, mo_coeff.conj())


def density_on_points(
    cell: pbcgto.Cell, density_matrices: np.ndarray, kpts: np.ndarray, points_angstrom: np.ndarray
) -> np.ndarray:
    """rho(r) = sum_k sum_ij P_k,ij phi_ki(r) phi_kj(r)^* on points (angstrom), bohr^-3."""

    def evaluate(coords: np.ndarray) -> np.ndarray:
        aos = cell.pbc_eval_gto("GTOval_sph", coords, kpts=kpts)
        return sum(
            np.einsum("gi,gi->g", ao @ dm, ao.conj()).real
            for ao, dm in zip(aos, density_matrices, strict=True)
        )

    return evaluate_in_chunks(points_angstrom, evaluate)


def density_on_mesh(
    cell: pbcgto.Cell, density_matrices: np.ndarray, kpts: np.ndarray
) -> np.ndarray:
    """rho of :func:`density_on_points` on the points of :func:`uniform_grid`, bohr^-3.

    PySCF's multigrid integrator builds it in reciprocal space, four times faster than
    evaluating the orbitals at every point (an H4Si8 slab on 8 k-points: 2.8 s vs 12 s,
    equal to 1e-10); it averages over k-points, the weights here are already in P_k.
    """
    density = multigrid.MultiGridNumInt(cell).get_rho(cell, density_matrices, None, kpts)
    return np.asarray(density).real * len(kpts)


def aux_field_on_points(
    auxcell: pbcgto.Cell, coefficients: np.ndarray, points_angstrom: np.ndarray
) -> np.ndarray:
    """sum_b d_b chi_b(r), lattice-summed, for coefficients in PySCF's AO order (angstrom)."""
    return evaluate_in_chunks(
        points_angstrom, lambda coords: auxcell.pbc_eval_gto("GTOval_sph", coords) @ coefficients
    )


def metric_matrix(auxcell: pbcgto.Cell) -> np.ndarray:
    """S_bc = int_cell chi_b chi_c of the Gamma-point lattice sums (bohr^-3 functions)."""
    return np.asarray(auxcell.pbc_intor("int1e_ovlp", hermi=1)).real


def projections(
    cell: pbcgto.Cell, auxcell: pbcgto.Cell, density_matrices: np.ndarray, kpts: np.ndarray
) -> np.ndarray:
    """w_b = int_cell chi_b rho = sum_k sum_ij P_k,ij (chi_b | phi_ki phi_kj^*), analytic.

    The three-centre overlaps are lattice-summed over both orbital functions, computed a
    block of auxiliary shells at a time to bound memory; at the Gamma point only the
    orbital pairs i >= j (half the cost).
    """
    gamma = not np.any(kpts)
    kernel = incore.wrap_int3c(
        cell, auxcell, "int3c1e", "s2" if gamma else "s1", 1, np.stack([kpts, kpts], axis=1)
    )
    pairs = _pair_weights(density_matrices, gamma)
    blocks = []
    for start, stop in _aux_shell_blocks(auxcell, pairs.size * 16):
        # integrals[k, (i, j), b] = int chi_b phi_ki^* phi_kj, summed over both lattices
        integrals = kernel((0, cell.nbas, 0, cell.nbas, start, stop))
        blocks.append(np.einsum("kp,kpb->b", pairs, integrals).real)
    return np.concatenate(blocks)


def _pair_weights(density_matrices: np.ndarray, gamma: bool) -> np.ndarray:
    """Weights of the orbital pairs (i, j) of the three-centre integrals, shape (n_k, pairs).

    All pairs, P_k,ji for (i, j); at the Gamma point (real symmetric P) the lower
    triangle, off-diagonal pairs counted twice.
    """
    if gamma:
        matrix = density_matrices[0].real
        return lib.pack_tril(2.0 * matrix - np.diag(np.diag(matrix)))[None]
    return density_matrices.transpose(0, 2, 1).reshape(len(density_matrices), -1)


def _aux_shell_blocks(auxcell: pbcgto.Cell, bytes_per_function: int) -> list[tuple[int, int]]:
    """Consecutive auxiliary shell ranges holding at most BLOCK_BYTES of integrals each."""
    offsets = auxcell.ao_loc_nr()
    per_block = max(1, BLOCK_BYTES // bytes_per_function)
    blocks, start = [], 0
    for shell in range(auxcell.nbas):
        if shell > start and offsets[shell + 1] - offsets[start] > per_block:
            blocks.append((start, shell))
            start = shell
    blocks.append((start, auxcell.nbas))
    return blocks


def fit(
    scf: SCFResult, weights: np.ndarray, n_electrons: float | None, options: PySCFOptions
) -> RIFit:
    """RI fit of ``sum_a W(a) |psi_a|^2`` of a periodic SCF onto the cell.

    The overlap metric is analytic (lattice-summed two- and three-centre overlaps); the
    relative metric (:mod:`rhocore_pyscf.periodic.relative_metric`) is a sum over the cell's grid.
    """
    state: PeriodicState = scf.state
    formula = scf.atoms.get_chemical_formula()
    weights = np.asarray(weights, dtype=float)
    if weights.shape != scf.orbitals.energies.shape:
        raise ValueError(
            f"target weights have shape {weights.shape}, but the orbitals of {formula} have "
            f"shape {scf.orbitals.energies.shape}"
        )
    density = weighted_density_matrices(state.mo_coeff, weights)
    return fit_density(state.cell, state.kpts, density, formula, n_electrons, options)


def refit(atoms: ase.Atoms, field_state: dict[str, np.ndarray], options: PySCFOptions) -> RIFit:
    """The RI fit, with ``options``, of a field stored as density matrices (no SCF).

    For trying other fit settings (metric, floor, auxiliary basis) on finished data: the
    field is the stored one, so only the fit is recomputed. Without a charge constraint
    only, since the stored state does not carry the electron count of the target.
    """
    if options.constrain_charge:
        raise InputError(
            "a refit of stored density matrices cannot constrain the charge: set "
            "constrain_charge: false"
        )
    cell = build_cell(atoms, options, for_scf=False)
    density = np.asarray(field_state["density_matrix"]) + 1j * np.asarray(
        field_state.get("density_matrix_imag", 0.0)
    )
    kpts = cell.get_abs_kpts(np.asarray(field_state["kpts_scaled"]))
    return fit_density(cell, kpts, density, atoms.get_chemical_formula(), None, options)


def fit_density(
    cell: pbcgto.Cell,
    kpts: np.ndarray,
    density: np.ndarray,
    formula: str,
    n_electrons: float | None,
    options: PySCFOptions,
) -> RIFit:
    """RI fit of the periodic field of the density matrices ``density`` (P_k) onto the cell."""
    auxcell = build_auxcell(cell, options, formula)
    ao_map = aux_ao_map(auxcell)
    pyscf_metric, pyscf_projections = _metric_terms(cell, kpts, auxcell, density, options)
    metric = ao_map.to_canonical_matrix(pyscf_metric)
    projected = ao_map.to_canonical(pyscf_projections)
    integrals = ao_map.to_canonical(rifit.basis_integrals(auxcell))
    target_integral = n_electrons if options.constrain_charge else None
    try:
        coefficients = solve_fit(
            metric, projected, integrals, target_integral, options.condition_limit
        )
    except IllConditionedMetricError as error:
        raise IllConditionedMetricError(
            f"RI fit of the periodic {formula} with aux_basis '{options.aux_basis}': {error} "
            "Diffuse functions overlap their periodic images in a small cell; check the "
            "geometry, or try aux_basis='even-tempered'."
        ) from None
    return RIFit(
        coefficients=coefficients,
        projections=metric @ coefficients,
        metric=metric,
        metric_kind=options.metric,
        layout=ao_map.layout,
        integrals=integrals,
        field_state=density_field_state(density, cell.get_scaled_kpts(kpts)),
    )


def _metric_terms(
    cell: pbcgto.Cell,
    kpts: np.ndarray,
    auxcell: pbcgto.Cell,
    density: np.ndarray,
    options: PySCFOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Metric S and projections w of the fit in PySCF's order, for ``options.metric``."""
    if options.metric == "relative":
        grid = uniform_grid(cell)
        field = density_on_mesh(cell, density, kpts)
        return relative_metric_terms(
            auxcell,
            grid.points,
            grid.weights,
            field,
            options.relative_metric_floor,
            options.relative_metric_power,
        )
    return metric_matrix(auxcell), projections(cell, auxcell, density, kpts)


def density_field_state(density_matrices: np.ndarray, scaled_kpts: np.ndarray) -> dict:
    """Arrays that describe a periodic density: P_k (real, and imaginary if any) and k.

    k-points are stored in fractions of the reciprocal lattice vectors, so that the
    state stays valid for the structure's cell however it is oriented.
    """
    state = {"density_matrix": density_matrices.real.copy(), "kpts_scaled": scaled_kpts}
    if np.any(density_matrices.imag):
        state["density_matrix_imag"] = density_matrices.imag.copy()
    return state


def basis_layout(atoms: ase.Atoms, options: PySCFOptions) -> BasisLayout:
    """Radial-function counts per element and l of the auxiliary basis of a cell."""
    return aux_ao_map(_auxcell(atoms, options)).layout


def evaluate_fitted(
    atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray, options: PySCFOptions
) -> np.ndarray:
    """The periodic fitted field of canonical ``coefficients`` on ``points`` (angstrom)."""
    auxcell = _auxcell(atoms, options)
    pyscf_order = aux_ao_map(auxcell).from_canonical(np.asarray(coefficients, dtype=float))
    return aux_field_on_points(auxcell, pyscf_order, points)


def evaluate_exact(
    atoms: ase.Atoms, field_state: dict[str, np.ndarray], points: np.ndarray, options: PySCFOptions
) -> np.ndarray:
    """The periodic field of stored density matrices on ``points`` (angstrom), bohr^-3."""
    cell = build_cell(atoms, options, for_scf=False)
    density = np.asarray(field_state["density_matrix"]) + 1j * np.asarray(
        field_state.get("density_matrix_imag", 0.0)
    )
    kpts = cell.get_abs_kpts(np.asarray(field_state["kpts_scaled"]))
    return density_on_points(cell, density, kpts, points)


def integration_grid(atoms: ase.Atoms, options: PySCFOptions) -> IntegrationGrid:
    """The cell's uniform grid (the SCF's): points in angstrom, equal weights in bohr^3."""
    return uniform_grid(build_cell(atoms, options, for_scf=False))


def uniform_grid(cell: pbcgto.Cell) -> IntegrationGrid:
    """Points of ``cell.mesh`` (angstrom) with weights volume / points (bohr^3)."""
    coords = cell.get_uniform_grids()
    return IntegrationGrid(
        points=coords * BOHR, weights=np.full(len(coords), cell.vol / len(coords))
    )


def _auxcell(atoms: ase.Atoms, options: PySCFOptions) -> pbcgto.Cell:
    cell = build_cell(atoms, options, for_scf=False)
    return build_auxcell(cell, options, atoms.get_chemical_formula())


def _density_on_mesh(solver, cell: pbcgto.Cell) -> np.ndarray:
    """The SCF's total density on ``cell.mesh`` (bohr^-3), from the multigrid integrator.

    25 times faster than evaluating the orbitals on the mesh, and as accurate as the SCF
    (1e-5 relative for a Si slab at 100 hartree).
    """
    density = np.ravel(solver.get_rho())
    if density.size != np.prod(cell.mesh):
        raise RuntimeError(
            f"PySCF returned the density on {density.size} points, not on the cell's mesh "
            f"{list(cell.mesh)}; this PySCF version changed its multigrid integrator"
        )
    return density


def vacuum_level(atoms: ase.Atoms, solver) -> float | None:
    """Electrostatic potential (eV) in the middle of a slab's vacuum; None if not a slab.

    A slab has exactly one non-periodic axis; the potential is averaged over the planes
    of the other two lattice vectors, at the middle of the widest gap between atoms along
    it. Energies minus this value are referred to the vacuum. Without a dipole correction,
    an asymmetric slab has a field in the vacuum; the middle is then the average of the
    two sides' vacuum levels.
    """
    open_axes = np.nonzero(~np.asarray(atoms.pbc))[0]
    if len(open_axes) != 1:
        return None
    axis, cell = int(open_axes[0]), solver.cell
    potential = electrostatic_potential(cell, _density_on_mesh(solver, cell)).reshape(cell.mesh)
    profile = potential.mean(axis=tuple(other for other in range(3) if other != axis))
    middle = _middle_of_widest_gap(atoms.get_scaled_positions(wrap=True)[:, axis])
    return float(profile[round(middle * cell.mesh[axis]) % cell.mesh[axis]]) * HARTREE2EV


def electrostatic_potential(cell: pbcgto.Cell, density: np.ndarray) -> np.ndarray:
    """Hartree plus local pseudopotential (hartree) on ``cell.mesh``, in the SCF's convention.

    The same G = 0 choice as PySCF's Hamiltonian (no Hartree term, the finite part of the
    local pseudopotentials), so the potential shares the orbital energies' zero. The
    non-local projectors and XC vanish far from the atoms and are left out.
    """
    mesh = cell.mesh
    g_vectors = cell.get_Gv(mesh)
    hartree = tools.get_coulG(cell, mesh=mesh) * tools.fft(density, mesh)
    local = -np.einsum("ag,ag->g", cell.get_SI(g_vectors), pseudo.get_vlocG(cell, g_vectors))
    return tools.ifft(hartree + local * (np.prod(mesh) / cell.vol), mesh).real


def _middle_of_widest_gap(fractions: np.ndarray) -> float:
    """Fractional coordinate in the middle of the widest periodic gap between ``fractions``."""
    ordered = np.sort(np.mod(fractions, 1.0))
    gaps = np.diff(np.append(ordered, ordered[0] + 1.0))
    widest = int(np.argmax(gaps))
    return float((ordered[widest] + 0.5 * gaps[widest]) % 1.0)
