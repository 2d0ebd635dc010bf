"""The QC backend interface and the typed results it returns.

A backend runs the SCF of a structure, hands orbital data (energies in eV, occupations,
k-point weights) to a target, forms the weighted density matrix
``P = sum_a W(a) C(a) C(a)^T`` from the target's weights W and fits the field it
describes onto an auxiliary basis: ``rho(r) ~ sum_b d_b chi_b(r)``. It returns d in the
canonical order of :mod:`rhocore.qc.basis`, the projections ``w = S d`` and the metric S.
Only evaluation of fields on points needs the backend again; training never does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import ase
import numpy as np

from rhocore.errors import RhocoreError
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout
from rhocore.qc.properties import PropertiesNotAvailableError

#: What a backend can do beyond SCF and RI fits: each is a boolean class attribute of
#: :class:`QCBackend`, with the words an error uses when a backend lacks it.
CAPABILITIES = {
    "evaluates_fields": "evaluate fields on points",
    "computes_properties": "compute derived quantities of its RI densities",
    "writes_scf_guess": "start its SCF from a predicted density",
}
Capability = Literal["evaluates_fields", "computes_properties", "writes_scf_guess"]

#: Metric of an RI fit: the L2 norm of the fit error, its Coulomb energy, or its L2 norm
#: relative to the local field (error^2 / (abs(field) + floor)^p; vacuum tails count).
MetricKind = Literal["overlap", "coulomb", "relative"]


class BackendSetupError(RhocoreError):
    """The QC code cannot run at all as configured (missing binary, data files, licence).

    Not a property of one structure: runs stop at once instead of recording every
    structure as failed.
    """


@dataclass
class OrbitalData:
    """Kohn-Sham orbital data in the units targets use.

    Arrays have shape (n_spin, n_k, n_state); ``occupations`` are per spin channel
    (at most 2 when n_spin = 1, at most 1 when n_spin = 2); ``k_weights`` sum to one.
    ``vacuum_level`` (eV) is the electrostatic potential far from a slab's surface, for
    backends that compute it; energies can then be referred to the vacuum.
    """

    energies: np.ndarray
    occupations: np.ndarray
    k_weights: np.ndarray
    fermi_level: float | None = None
    vacuum_level: float | None = None

    def __post_init__(self) -> None:
        self.energies = np.asarray(self.energies, dtype=float)
        self.occupations = np.asarray(self.occupations, dtype=float)
        self.k_weights = np.asarray(self.k_weights, dtype=float)
        if self.energies.ndim != 3 or self.energies.shape != self.occupations.shape:
            raise ValueError(
                "orbital energies and occupations must both have shape "
                f"(n_spin, n_k, n_state); got {self.energies.shape} and "
                f"{self.occupations.shape}"
            )
        if self.k_weights.shape != (self.energies.shape[1],):
            raise ValueError(
                f"k_weights has shape {self.k_weights.shape}, expected "
                f"({self.energies.shape[1]},) for {self.energies.shape[1]} k-points"
            )

    @property
    def n_spin(self) -> int:
        """1 for spin-restricted, 2 for spin-unrestricted calculations."""
        return self.energies.shape[0]

    @property
    def n_electrons(self) -> float:
        """Total electron count implied by occupations and k-weights."""
        return float(np.einsum("skn,k->", self.occupations, self.k_weights))

    def homo_index(self, spin: int) -> int:
        """Index of the highest occupied state of channel ``spin`` (Gamma / first k)."""
        occupied = np.nonzero(self.occupations[spin, 0] > 1e-6)[0]
        if occupied.size == 0:
            raise ValueError(f"spin channel {spin} has no occupied orbital")
        return int(occupied[-1])


@dataclass
class SCFResult:
    """A converged (or not) SCF: structure, orbital data and backend-private state."""

    atoms: ase.Atoms
    orbitals: OrbitalData
    total_energy: float
    converged: bool
    state: Any = field(default=None, repr=False)


@dataclass
class RIFit:
    """An RI fit of one field of one structure.

    ``coefficients`` d (bohr^-3 per unit basis function), ``projections`` w = S d and the
    ``metric`` S are in the canonical order of ``layout``. ``field_state`` holds the arrays
    the backend needs later to evaluate the exact (un-fitted) field, e.g. the weighted
    density matrix; it is stored in the dataset next to d.
    """

    coefficients: np.ndarray
    projections: np.ndarray
    metric: np.ndarray
    metric_kind: MetricKind
    layout: BasisLayout
    integrals: np.ndarray
    field_state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def fitted_integral(self) -> float:
        """Integral of the fitted field over all space (electrons for a density)."""
        return float(self.integrals @ self.coefficients)


@dataclass
class IntegrationGrid:
    """Quadrature points (angstrom) and weights (bohr^3), so that sum(w * rho) integrates."""

    points: np.ndarray
    weights: np.ndarray


class QCBackend(ABC):
    """A quantum-chemistry code: SCF, orbital data, RI fit and field evaluation.

    Subclasses set ``name`` and ``Options`` and are registered through the
    ``rhocore_register_backends`` hook.
    """

    name: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = PluginOptions
    #: False for codes that cannot put fields on arbitrary points (no grid metrics then).
    evaluates_fields: ClassVar[bool] = True
    #: True for backends that read finished QC outputs instead of running an SCF: a
    #: config's structure files are then read by :meth:`read_outputs`, not by ASE.
    reads_outputs: ClassVar[bool] = False
    #: True for backends that implement :meth:`properties`, :meth:`exact_properties` and
    #: :meth:`electrostatic_potential` (derived quantities of a total density).
    computes_properties: ClassVar[bool] = False
    #: True for backends that implement :meth:`write_scf_guess`.
    writes_scf_guess: ClassVar[bool] = False

    def __init__(self, options: PluginOptions | dict | None = None):
        if isinstance(options, PluginOptions):
            self.options = options
        else:
            self.options = self.Options.model_validate(options or {})

    @property
    def metric_kind(self) -> MetricKind:
        """The metric of this backend's RI fits as configured, stored in datasets."""
        return "overlap"

    @property
    def version(self) -> str:
        """Version of the QC code behind this backend, stored in datasets."""
        return "unknown"

    @classmethod
    def read_outputs(cls, path: Path) -> list[ase.Atoms]:
        """The structures of the QC output ``path``, for backends with ``reads_outputs``.

        Each carries ``atoms.info["source_file"]`` (the absolute path), which
        :meth:`run_scf` reads back. Raises :class:`rhocore.data.structure_files.StructureError`
        for a file it cannot use at all.
        """
        raise NotImplementedError(f"backend '{cls.name}' runs its own SCF; ASE reads its input")

    def check_setup(self, structures: list[ase.Atoms]) -> None:
        """Raise :class:`BackendSetupError` if the code cannot run these structures at all.

        Called once before a dataset run starts; the default has nothing to check.
        """
        return None

    @abstractmethod
    def run_scf(self, atoms: ase.Atoms) -> SCFResult:
        """Run the SCF of ``atoms`` and return its orbital data."""

    @abstractmethod
    def basis_layout(self, atoms: ase.Atoms) -> BasisLayout | None:
        """The RI basis layout for the elements of ``atoms``.

        None when the code settles its RI basis only while fitting (FHI-aims prunes its
        product basis during the run); a dataset then takes the layout of its first fit.
        """

    @abstractmethod
    def fit(self, scf: SCFResult, weights: np.ndarray, n_electrons: float | None = None) -> RIFit:
        """Fit the field ``sum_a W(a) |psi_a|^2`` onto the RI basis.

        ``weights`` has the shape of ``scf.orbitals.energies`` and already includes
        occupations and k-weights as the target decides. ``n_electrons``, when given and
        the backend's options ask for it, is imposed exactly on the fitted integral.
        """

    @abstractmethod
    def evaluate_fitted(
        self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """The RI field with canonical ``coefficients`` on ``points`` (angstrom), in a.u."""

    @abstractmethod
    def evaluate_exact(
        self, atoms: ase.Atoms, field_state: dict[str, np.ndarray], points: np.ndarray
    ) -> np.ndarray:
        """The exact (un-fitted) field described by ``field_state`` on ``points`` (angstrom)."""

    @abstractmethod
    def integration_grid(self, atoms: ase.Atoms) -> IntegrationGrid:
        """A DFT integration grid for ``atoms`` on which metrics are computed."""

    # --- optional: derived quantities and SCF guesses of a total density ---------------

    def properties(
        self, atoms: ase.Atoms, coefficients: np.ndarray, names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Derived quantities (:data:`rhocore.qc.properties.PROPERTIES`) of the RI density
        with canonical ``coefficients``, in the units listed there.

        Optional: backends that cannot compute them keep this default, which raises
        :class:`~rhocore.qc.properties.PropertiesNotAvailableError`.
        """
        raise PropertiesNotAvailableError(
            f"backend '{self.name}' cannot compute derived quantities ({', '.join(names)}) "
            "of its RI densities"
        )

    def exact_properties(
        self, atoms: ase.Atoms, field_state: dict[str, np.ndarray], names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """The same quantities of the exact (un-fitted) density of ``field_state``: the
        DFT reference of :meth:`properties`. Optional, as that one."""
        raise PropertiesNotAvailableError(
            f"backend '{self.name}' cannot compute derived quantities ({', '.join(names)}) "
            "of its Kohn-Sham densities"
        )

    def electrostatic_potential(
        self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """Potential of the nuclei and the RI density on ``points`` (angstrom), hartree/e.

        Optional: the default raises
        :class:`~rhocore.qc.properties.PropertiesNotAvailableError`.
        """
        raise PropertiesNotAvailableError(
            f"backend '{self.name}' cannot compute the electrostatic potential of its RI densities"
        )

    def write_scf_guess(
        self,
        atoms: ase.Atoms,
        coefficients: np.ndarray,
        directory: Path,
        stem: str,
        layout: BasisLayout | None = None,
    ) -> list[Path]:
        """Write files that start this code's SCF of ``atoms`` from the RI density with
        canonical ``coefficients`` into ``directory`` (names starting with ``stem``);
        returns their paths. ``layout`` is the basis of the coefficients (a model's), for
        backends whose basis is not fixed by their options. Optional: the default raises
        :class:`~rhocore.qc.properties.PropertiesNotAvailableError`.
        """
        raise PropertiesNotAvailableError(
            f"backend '{self.name}' cannot start its SCF from a predicted density"
        )
