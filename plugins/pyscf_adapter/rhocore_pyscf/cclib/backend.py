"""The ``cclib`` backend: fields of finished QC calculations, fitted with PySCF integrals.

Instead of running an SCF, it reads the output of a finished calculation of any code
cclib parses (:mod:`rhocore_pyscf.cclib.output`): geometry, AO basis, MO coefficients,
orbital energies and occupations. The RI fit, field evaluation and integration grids
are the ``pyscf`` backend's. Each structure knows its output file through
``atoms.info["source_file"]``, which :meth:`CclibBackend.read_outputs` sets and
``rhocore generate`` keeps; a config's ``structures.file`` is then a glob of outputs.

A dataset entry stores the orbital basis (PySCF's serialised molecule, as UTF-8 bytes)
next to the density matrix, so its exact field is evaluated without the output file.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase
import numpy as np
from pyscf import gto

from rhocore.api import (
    BackendSetupError,
    BasisLayout,
    IntegrationGrid,
    MetricKind,
    QCBackend,
    RIFit,
    SCFResult,
)
from rhocore_pyscf.backend import PySCFState
from rhocore_pyscf.cclib.options import CclibOptions
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.molecular import grids
from rhocore_pyscf.molecular.fit import fit_orbital_density
from rhocore_pyscf.molecular.molecules import PySCFBackendError, build_named_auxmol

#: ``atoms.info`` key of the QC output a structure was read from.
SOURCE_KEY = "source_file"
#: Largest accepted distance (angstrom) between a structure's atoms and its output's.
POSITION_TOLERANCE = 1e-5


def _require_cclib() -> None:
    try:
        import cclib  # noqa: F401
    except ImportError:
        raise BackendSetupError(
            "the cclib backend needs cclib: pip install cclib (rhocore-pyscf pins 1.8.1)"
        ) from None


class CclibBackend(QCBackend):
    """Orbitals of finished QC outputs (any code cclib reads) fitted with PySCF integrals."""

    name = "cclib"
    Options = CclibOptions
    options: CclibOptions
    reads_outputs = True

    @property
    def metric_kind(self) -> MetricKind:
        """The ``metric`` option."""
        return self.options.metric

    @property
    def version(self) -> str:
        """cclib's version (the parser of the outputs)."""
        import cclib

        return f"cclib {cclib.__version__}"

    @classmethod
    def read_outputs(cls, path: Path) -> list[ase.Atoms]:
        """The structure of the QC output ``path``: its last geometry, tagged with the file."""
        from rhocore.api import StructureError
        from rhocore_pyscf.cclib.output import CclibOutputError, read_atoms

        _require_cclib()
        try:
            atoms = read_atoms(path)
        except CclibOutputError as error:
            raise StructureError(str(error)) from None
        atoms.info[SOURCE_KEY] = str(Path(path).resolve())
        return [atoms]

    def check_setup(self, structures: list[ase.Atoms]) -> None:
        """cclib must be installed and every structure must name its output file."""
        _require_cclib()
        untagged = [i for i, atoms in enumerate(structures) if SOURCE_KEY not in atoms.info]
        if untagged:
            raise BackendSetupError(
                f"structures {untagged[:5]} have no QC output file (atoms.info"
                f"['{SOURCE_KEY}']); the cclib backend reads finished outputs: point "
                "structures.file at them (a glob such as outputs/*.log)"
            )

    def run_scf(self, atoms: ase.Atoms) -> SCFResult:
        """Read and check the output of ``atoms``; nothing is computed."""
        from rhocore_pyscf.cclib.output import CclibOutputError, read_output

        source = atoms.info.get(SOURCE_KEY)
        if source is None:
            raise PySCFBackendError(
                f"structure {atoms.get_chemical_formula()} names no QC output file "
                f"(atoms.info['{SOURCE_KEY}']); read structures from outputs with the cclib "
                "backend"
            )
        output = read_output(source, self.options.orthonormality_tolerance)
        same_numbers = np.array_equal(output.atoms.numbers, atoms.numbers)
        if not same_numbers or not np.allclose(
            output.atoms.positions, atoms.positions, atol=POSITION_TOLERANCE, rtol=0
        ):
            raise CclibOutputError(
                source,
                f"the structure given ({atoms.get_chemical_formula()}) is not the geometry "
                "of this output; the cclib backend cannot move atoms",
            )
        return SCFResult(
            atoms=atoms.copy(),
            orbitals=output.orbitals,
            total_energy=output.total_energy,
            converged=True,
            state=PySCFState(mol=output.mol, mo_coeff=output.mo_coeff),
        )

    def basis_layout(self, atoms: ase.Atoms) -> BasisLayout:
        """Radial-function counts per element and l of the auxiliary basis."""
        return aux_ao_map(self._auxmol(atoms)).layout

    def fit(self, scf: SCFResult, weights: np.ndarray, n_electrons: float | None = None) -> RIFit:
        """RI fit of ``sum_a W(a) |psi_a|^2``; ``n_electrons`` is imposed if constrain_charge."""
        state: PySCFState = scf.state
        weights = np.asarray(weights, dtype=float)
        formula = scf.atoms.get_chemical_formula()
        if weights.shape != scf.orbitals.energies.shape:
            raise ValueError(
                f"target weights have shape {weights.shape}, but the orbitals of {formula} "
                f"have shape {scf.orbitals.energies.shape}"
            )
        fit = fit_orbital_density(
            state.mol,
            build_named_auxmol(state.mol, self.options.aux_basis, formula),
            state.mo_coeff,
            weights[:, 0, :],
            self.options.metric,
            target_integral=n_electrons if self.options.constrain_charge else None,
            condition_limit=self.options.condition_limit,
            label=f"{formula} with aux_basis '{self.options.aux_basis}'",
        )
        fit.field_state["orbital_basis"] = serialise_basis(state.mol)
        return fit

    def evaluate_fitted(
        self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """sum_b d_b chi_b(r) on ``points`` (angstrom) for canonical coefficients, in a.u."""
        return grids.canonical_aux_field_on_points(self._auxmol(atoms), coefficients, points)

    def evaluate_exact(
        self, atoms: ase.Atoms, field_state: dict[str, np.ndarray], points: np.ndarray
    ) -> np.ndarray:
        """The field of the stored density matrix on ``points`` (angstrom), bohr^-3."""
        if "orbital_basis" not in field_state:
            raise ValueError(
                "the field state has no 'orbital_basis'; it was not written by the cclib backend"
            )
        mol = deserialise_basis(field_state["orbital_basis"], atoms)
        return grids.density_on_points(mol, np.asarray(field_state["density_matrix"]), points)

    def integration_grid(self, atoms: ase.Atoms) -> IntegrationGrid:
        """PySCF's DFT grid of ``grid_level``: points in angstrom, weights in bohr^3."""
        return grids.integration_grid(_bare_molecule(atoms), self.options.grid_level)

    def _auxmol(self, atoms: ase.Atoms) -> gto.Mole:
        return build_named_auxmol(
            _bare_molecule(atoms), self.options.aux_basis, atoms.get_chemical_formula()
        )


def _bare_molecule(atoms: ase.Atoms) -> gto.Mole:
    """A PySCF molecule of ``atoms`` with one s function per element.

    For what depends on the atoms alone (auxiliary basis, integration grid); neutral
    with the lowest spin.
    """
    symbols = atoms.get_chemical_symbols()
    return gto.M(
        atom=list(zip(symbols, atoms.positions.tolist(), strict=True)),
        unit="Angstrom",
        basis={symbol: [[0, [1.0, 1.0]]] for symbol in set(symbols)},
        spin=None,
        verbose=0,
    )


def serialise_basis(mol: gto.Mole) -> np.ndarray:
    """The orbital basis of ``mol`` (PySCF's JSON of the molecule) as UTF-8 bytes (uint8)."""
    return np.frombuffer(mol.dumps().encode(), dtype=np.uint8).copy()


def deserialise_basis(stored: np.ndarray, atoms: ase.Atoms) -> gto.Mole:
    """The molecule of :func:`serialise_basis`, moved to the positions of ``atoms``."""
    text = np.asarray(stored, dtype=np.uint8).tobytes().decode()
    mol = gto.loads(text)
    if mol.natm != len(atoms) or list(mol.atom_charges()) != list(atoms.numbers):
        raise ValueError(
            f"the stored orbital basis is of {mol.natm} atoms with charges "
            f"{json.dumps(mol.atom_charges().tolist())}, not of {atoms.get_chemical_formula()}"
        )
    mol.verbose = 0
    return mol.set_geom_(atoms.positions, unit="Angstrom", inplace=False)
