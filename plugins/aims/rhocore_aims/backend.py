"""The ``aims`` backend: FHI-aims SCF and RI fits, run through ASE and read from its files.

Each structure gets a run folder (named by a hash of structure and options) with an
``scf`` step and one RI step per field. The SCF step gives the orbital data a target
turns into weights; the RI step fits that field on FHI-aims' product basis and writes
the coefficients, projections and overlap that :mod:`rhocore_aims.parsers` convert to
rhocore's canonical order. Finished steps are reused, so a killed run resumes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np

from rhocore.api import (
    BasisLayout,
    IntegrationGrid,
    PropertiesNotAvailableError,
    QCBackend,
    RhocoreError,
    RIFit,
    SCFResult,
)
from rhocore_aims import keywords
from rhocore_aims.fit import grid_field_state, overlap_fit
from rhocore_aims.keywords import Generation
from rhocore_aims.options import AimsOptions
from rhocore_aims.parsers.eigenvalues import KSOrbitalInfo, parse_ks_orbital_info, write_kso_weights
from rhocore_aims.parsers.ri_files import read_ri_outputs
from rhocore_aims.restart import restart_conversion, write_restart_folder
from rhocore_aims.runner import check_species, resolve_setup, run_step, structure_key

#: Density-matrix restart files of FHI-aims' ELSI interface, carried from SCF to RI step.
RESTART_GLOB = "D_*.csc"


class AimsBackendError(RhocoreError, RuntimeError):
    """Something the FHI-aims backend cannot do, with what to do instead."""


@dataclass
class AimsState:
    """What the RI step needs from the SCF step: its folder, keyword generation, orbitals."""

    folder: Path
    generation: Generation
    orbital_info: KSOrbitalInfo


class AimsBackend(QCBackend):
    """FHI-aims through ASE: Kohn-Sham SCF, then FHI-aims' own RI fit of the target field."""

    name = "aims"
    Options = AimsOptions
    evaluates_fields = False
    writes_scf_guess = True
    options: AimsOptions

    @property
    def version(self) -> str:
        """FHI-aims prints its version in each run's aims.out; datasets keep the folders."""
        return "see aims.out of each run"

    def check_setup(self, structures: list[ase.Atoms]) -> None:
        """The command's binary and the species files of every element exist."""
        setup = resolve_setup(self.options)
        numbers = sorted({int(z) for atoms in structures for z in atoms.numbers})
        check_species(setup.species_dir, ase.Atoms(numbers=numbers))

    def run_scf(self, atoms: ase.Atoms) -> SCFResult:
        """The SCF step of ``atoms`` (reused when its folder holds a finished run)."""
        setup = resolve_setup(self.options)
        check_species(setup.species_dir, atoms)
        folder = self.options.run_directory / structure_key(atoms, self.options)
        periodic = bool(np.any(atoms.pbc))
        output = run_step(
            folder / "scf", atoms, keywords.scf_parameters(self.options, periodic), setup
        )
        info = parse_ks_orbital_info(folder / "scf" / keywords.ORBITAL_INFO_FILE)
        generation = (
            keywords.generation_for_version(output.version)
            if self.options.keywords == "auto"
            else self.options.keywords
        )
        orbitals = info.orbitals
        if orbitals.fermi_level is None and output.fermi_level_ev is not None:
            orbitals.fermi_level = output.fermi_level_ev
        return SCFResult(
            atoms=atoms.copy(),
            orbitals=orbitals,
            total_energy=float(output.total_energy_ev),
            converged=bool(output.converged),
            state=AimsState(folder=folder, generation=generation, orbital_info=info),
        )

    def basis_layout(self, atoms: ase.Atoms) -> BasisLayout | None:
        """Unknown before a run: FHI-aims prunes its product basis per structure."""
        return None

    def fit(self, scf: SCFResult, weights: np.ndarray, n_electrons: float | None = None) -> RIFit:
        """FHI-aims' RI fit of ``sum_a W(a) |psi_a|^2`` (overlap metric).

        The total density (weights = occupations x k-weights) is fitted from the SCF
        density matrix; any other field from ``ks_orbital_weights.in``. FHI-aims does not
        write the integrals of its basis functions, so ``integrals`` are NaN and an exact
        charge constraint is not available. Where FHI-aims wrote the fields on its grid,
        their integral is checked and the RI error on that grid kept in ``field_state``.
        """
        state: AimsState = scf.state
        weights = np.asarray(weights, dtype=float)
        orbitals = scf.orbitals
        if weights.shape != orbitals.energies.shape:
            raise ValueError(
                f"target weights have shape {weights.shape}, but the orbitals of "
                f"{scf.atoms.get_chemical_formula()} have shape {orbitals.energies.shape}"
            )
        total_density = np.allclose(
            weights, orbitals.occupations * orbitals.k_weights[None, :, None], atol=1e-12
        )
        step = "ri-density" if total_density else f"ri-{_digest(weights)}"
        folder = state.folder / step
        scf_folder = state.folder / "scf"
        carried = [*sorted(scf_folder.glob(RESTART_GLOB)), scf_folder / keywords.ORBITAL_INFO_FILE]
        extra: dict[str, Path | str] = {path.name: path for path in carried}
        if not total_density:
            folder.mkdir(parents=True, exist_ok=True)
            write_kso_weights(folder / keywords.ORBITAL_WEIGHTS_FILE, state.orbital_info, weights)
        setup = resolve_setup(self.options)
        periodic = bool(np.any(scf.atoms.pbc))
        parameters = keywords.ri_parameters(self.options, periodic, state.generation, total_density)
        run_step(folder, scf.atoms, parameters, setup, extra, require_converged=False)
        outputs = read_ri_outputs(folder, scf.atoms.numbers, state.generation)
        field_state = grid_field_state(folder, state.generation, float(weights.sum()))
        return overlap_fit(
            outputs.coefficients, outputs.overlap, outputs.projections, outputs.layout, field_state
        )

    def evaluate_fitted(
        self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """Not available: FHI-aims does not write the radial functions of its RI basis."""
        raise AimsBackendError(_NO_POINTS)

    def evaluate_exact(
        self, atoms: ase.Atoms, field_state: dict[str, np.ndarray], points: np.ndarray
    ) -> np.ndarray:
        """Not available: the exact field lives on FHI-aims' own grid in its run folder."""
        raise AimsBackendError(_NO_POINTS)

    def integration_grid(self, atoms: ase.Atoms) -> IntegrationGrid:
        """Not available outside an FHI-aims run (its grid is in partition_tab.out)."""
        raise AimsBackendError(_NO_POINTS)

    def write_scf_guess(
        self,
        atoms: ase.Atoms,
        coefficients: np.ndarray,
        directory: Path,
        stem: str,
        layout: BasisLayout | None = None,
    ) -> list[Path]:
        """Folder ``directory/stem`` with ``ri_restart_coeffs.out`` (FHI-aims' order and
        phases), ``geometry.in``, the control.in keywords that read it, and a README.

        The order follows from ``layout`` (the model's basis) for the mainline keywords of
        FHI-aims 240925 and later, the builds with ``ri_density_restart``.
        """
        if layout is None:
            raise PropertiesNotAvailableError(
                "the aims backend writes an FHI-aims RI restart from the layout of the "
                "coefficients (the model's RI basis); none was given"
            )
        if self.options.keywords == "legacy":
            raise PropertiesNotAvailableError(
                "the model's data came from legacy (ri_fit_*) FHI-aims builds, whose RI "
                "function order is per run: write the restart with "
                "rhocore_aims.restart.write_ri_restart and restart_conversion(numbers, "
                "run_folder=<RI step folder with product_basis_idxs.out of that structure>, "
                "generation='legacy'); 'ri_density_restart' is a keyword of the mainline "
                "builds (FHI-aims 240925 and later)"
            )
        conversion = restart_conversion(atoms.numbers, layout=layout, generation="mainline")
        parameters = keywords.restart_parameters(self.options, bool(np.any(atoms.pbc)))
        return write_restart_folder(
            Path(directory) / stem, atoms, coefficients, conversion, parameters
        )


_NO_POINTS = (
    "the aims backend cannot evaluate fields on arbitrary points: FHI-aims does not write "
    "the numeric radial functions of its RI basis. Use the metric errors (`rhocore "
    "evaluate --no-grid`), or the fields FHI-aims writes on its own grid in each run "
    "folder (rho_rebuilt_ri.out, rho_scf.out with partition_tab.out)."
)


def _digest(weights: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(weights).tobytes()).hexdigest()[:10]
