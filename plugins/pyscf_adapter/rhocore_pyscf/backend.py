"""The ``pyscf`` backend: Kohn-Sham DFT of molecules and RI fits of their fields with PySCF.

A thin class over the plain functions of :mod:`rhocore_pyscf.molecular.scf`, :mod:`.rifit`,
:mod:`.grids` and :mod:`.convention`; it holds the options and converts between PySCF's
AO order and rhocore's canonical coefficient order at its edge. Periodic structures (any
``atoms.pbc``) go to :mod:`rhocore_pyscf.periodic.cells` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np
import pyscf
from pyscf import gto
from pyscf.lib.parameters import BOHR

from rhocore.api import (
    BackendSetupError,
    BasisLayout,
    IntegrationGrid,
    MetricKind,
    PropertiesNotAvailableError,
    QCBackend,
    RIFit,
    SCFResult,
)
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.molecular import derived, grids, properties, scf
from rhocore_pyscf.molecular.fit import fit_orbital_density
from rhocore_pyscf.molecular.molecules import PySCFBackendError, build_auxmol, build_mol
from rhocore_pyscf.options import PySCFOptions
from rhocore_pyscf.periodic import cells as periodic

logger = logging.getLogger(__name__)


@dataclass
class PySCFState:
    """What a fit needs from the SCF: the molecule and orbital coefficients (n_spin, ao, mo)."""

    mol: gto.Mole
    mo_coeff: np.ndarray


class PySCFBackend(QCBackend):
    """Restricted or unrestricted Kohn-Sham DFT with PySCF; overlap- or Coulomb-metric RI fits."""

    name = "pyscf"
    Options = PySCFOptions
    options: PySCFOptions
    computes_properties = True
    writes_scf_guess = True

    @property
    def metric_kind(self) -> MetricKind:
        """The ``metric`` option."""
        return self.options.metric

    @property
    def version(self) -> str:
        """PySCF's version."""
        return pyscf.__version__

    def check_setup(self, structures: list[ase.Atoms]) -> None:
        """Refuse options that no periodic structure of the run can use, before any SCF."""
        for atoms in structures:
            if periodic.is_periodic(atoms):
                try:
                    periodic.check_periodic_options(atoms, self.options)
                except PySCFBackendError as error:
                    raise BackendSetupError(str(error)) from None

    def run_scf(self, atoms: ase.Atoms) -> SCFResult:
        """Kohn-Sham SCF of ``atoms``; an unconverged SCF is returned with converged=False."""
        if periodic.is_periodic(atoms):
            return periodic.run_scf(atoms, self.options)
        periodic.check_molecule_options(self.options, atoms.get_chemical_formula())
        mol = build_mol(atoms, self.options)
        try:
            solver = scf.run_kohn_sham(mol, self.options)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as error:
            raise PySCFBackendError(
                f"the SCF of {atoms.get_chemical_formula()} failed ({error}). Check the "
                "geometry (overlapping atoms?), charge and spin, or try another xc or basis."
            ) from error
        if not solver.converged:
            logger.warning(
                "SCF of %s did not converge in %d cycles (conv_tol %g hartree)",
                atoms.get_chemical_formula(),
                self.options.max_cycle,
                self.options.conv_tol,
            )
        return SCFResult(
            atoms=atoms.copy(),
            orbitals=scf.orbital_data(solver),
            total_energy=float(solver.e_tot) * scf.HARTREE2EV,
            converged=bool(solver.converged),
            state=PySCFState(mol=mol, mo_coeff=scf.mo_coefficients(solver)),
        )

    def basis_layout(self, atoms: ase.Atoms) -> BasisLayout:
        """Radial-function counts per element and l of the auxiliary basis."""
        if periodic.is_periodic(atoms):
            return periodic.basis_layout(atoms, self.options)
        return aux_ao_map(self._auxmol(atoms)).layout

    def fit(self, scf: SCFResult, weights: np.ndarray, n_electrons: float | None = None) -> RIFit:
        """RI fit of ``sum_a W(a) |psi_a|^2``; ``n_electrons`` is imposed if constrain_charge."""
        if periodic.is_periodic(scf.atoms):
            return periodic.fit(scf, weights, n_electrons, self.options)
        state: PySCFState = scf.state
        weights = np.asarray(weights, dtype=float)
        if weights.shape != scf.orbitals.energies.shape:
            raise ValueError(
                f"target weights have shape {weights.shape}, but the orbitals of "
                f"{scf.atoms.get_chemical_formula()} have shape {scf.orbitals.energies.shape}"
            )
        auxmol = build_auxmol(state.mol, self.options, scf.atoms.get_chemical_formula())
        return fit_orbital_density(
            state.mol,
            auxmol,
            state.mo_coeff,
            weights[:, 0, :],
            self.options.metric,
            target_integral=n_electrons if self.options.constrain_charge else None,
            condition_limit=self.options.condition_limit,
            label=f"{scf.atoms.get_chemical_formula()} with aux_basis '{self.options.aux_basis}'",
        )

    def evaluate_fitted(
        self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """sum_b d_b chi_b(r) on ``points`` (angstrom) for canonical coefficients, in a.u."""
        if periodic.is_periodic(atoms):
            return periodic.evaluate_fitted(atoms, coefficients, points, self.options)
        return grids.canonical_aux_field_on_points(self._auxmol(atoms), coefficients, points)

    def evaluate_exact(
        self, atoms: ase.Atoms, field_state: dict[str, np.ndarray], points: np.ndarray
    ) -> np.ndarray:
        """The field of the stored density matrix on ``points`` (angstrom), bohr^-3."""
        if periodic.is_periodic(atoms):
            return periodic.evaluate_exact(atoms, field_state, points, self.options)
        mol = build_mol(atoms, self.options, for_scf=False)
        return grids.density_on_points(mol, np.asarray(field_state["density_matrix"]), points)

    def integration_grid(self, atoms: ase.Atoms) -> IntegrationGrid:
        """PySCF's DFT grid of ``grid_level`` (a cell's uniform grid if periodic): points in
        angstrom, weights in bohr^3."""
        if periodic.is_periodic(atoms):
            return periodic.integration_grid(atoms, self.options)
        return grids.integration_grid(
            build_mol(atoms, self.options, for_scf=False), self.options.grid_level
        )

    def properties(
        self, atoms: ase.Atoms, coefficients: np.ndarray, names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Derived quantities of the RI density (e, Debye, eV), analytic but for E_xc."""
        self._molecules_only(atoms, "derived quantities")
        mol = build_mol(atoms, self.options, for_scf=False)
        auxmol = build_auxmol(mol, self.options, atoms.get_chemical_formula())
        pyscf_order = aux_ao_map(auxmol).from_canonical(np.asarray(coefficients, dtype=float))
        return derived.fitted_properties(mol, auxmol, pyscf_order, names, self.options)

    def exact_properties(
        self, atoms: ase.Atoms, field_state: dict[str, np.ndarray], names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """The same quantities of the stored Kohn-Sham density matrix."""
        self._molecules_only(atoms, "derived quantities")
        mol = build_mol(atoms, self.options, for_scf=False)
        density_matrix = np.asarray(field_state["density_matrix"])
        return derived.exact_properties(mol, density_matrix, names, self.options)

    def electrostatic_potential(
        self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """Potential of nuclei and RI density on ``points`` (angstrom), hartree/e."""
        self._molecules_only(atoms, "the electrostatic potential")
        auxmol = self._auxmol(atoms)
        pyscf_order = aux_ao_map(auxmol).from_canonical(np.asarray(coefficients, dtype=float))
        coords = np.asarray(points, dtype=float).reshape(-1, 3) / BOHR
        return properties.electrostatic_potential(auxmol, pyscf_order, coords)

    def write_scf_guess(
        self,
        atoms: ase.Atoms,
        coefficients: np.ndarray,
        directory: Path,
        stem: str,
        layout: BasisLayout | None = None,
    ) -> list[Path]:
        """``<stem>_dm.npy`` (density matrix for ``mf.kernel(dm0=...)``) and ``<stem>.chk``
        (a PySCF chkfile with the molecule and the guess orbitals, for ``mf.from_chk``).
        ``layout`` is unused: the auxiliary basis follows from the options."""
        from pyscf.scf import chkfile

        from rhocore_pyscf.guess.model import guess_orbitals

        self._molecules_only(atoms, "an SCF guess")
        mol = build_mol(atoms, self.options)
        guess = guess_orbitals(mol, coefficients, self.options)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        matrix_path, chk_path = directory / f"{stem}_dm.npy", directory / f"{stem}.chk"
        np.save(matrix_path, guess.density_matrix)
        chk_path.unlink(missing_ok=True)
        chkfile.dump_scf(mol, str(chk_path), 0.0, guess.mo_energy, guess.mo_coeff, guess.mo_occ)
        return [matrix_path, chk_path]

    def _molecules_only(self, atoms: ase.Atoms, what: str) -> None:
        if periodic.is_periodic(atoms):
            raise PropertiesNotAvailableError(
                f"the pyscf backend computes {what} of molecules only; "
                f"{atoms.get_chemical_formula()} is periodic (pbc={list(atoms.pbc)})"
            )

    def _auxmol(self, atoms: ase.Atoms) -> gto.Mole:
        mol = build_mol(atoms, self.options, for_scf=False)
        return build_auxmol(mol, self.options, atoms.get_chemical_formula())
