"""An extended-Hueckel model on one s Gaussian per atom, as a rhocore QC backend.

Each atom carries one normalised s Gaussian orbital and one electron; the Hamiltonian is
the extended-Hueckel one. All integrals between s Gaussians are analytic, so the RI fit
(overlap metric, three s Gaussians per atom) is exact linear algebra. It is a model, not
DFT: its purpose is to show every method a backend implements.
"""

from __future__ import annotations

import ase
import numpy as np
from pydantic import Field

from rhocore.api import (
    BOHR_IN_ANGSTROM,
    BasisLayout,
    IntegrationGrid,
    OrbitalData,
    PluginOptions,
    QCBackend,
    RIFit,
    SCFResult,
    solve_fit,
)


class ToyOptions(PluginOptions):
    """Options of the toy backend."""

    orbital_exponent: float = Field(0.6, gt=0, description="Orbital Gaussian exponent, bohr^-2.")
    aux_exponents: tuple[float, ...] = Field(
        (0.3, 0.6, 1.2, 2.4, 4.8), description="Auxiliary s-Gaussian exponents, bohr^-2."
    )
    onsite_energy: float = Field(-13.6, description="Orbital energy of an isolated atom, eV.")
    grid_spacing: float = Field(0.12, gt=0, description="Integration grid spacing, angstrom.")


def gaussian_product(a: float, centre_a: np.ndarray, b: float, centre_b: np.ndarray):
    """exp(-a|r-A|^2) exp(-b|r-B|^2) = k exp(-p|r-P|^2): returns (k, p, P)."""
    p = a + b
    distance2 = np.sum((centre_a - centre_b) ** 2)
    return np.exp(-a * b / p * distance2), p, (a * centre_a + b * centre_b) / p


def gaussian_values(exponent: float, centre: np.ndarray, points: np.ndarray) -> np.ndarray:
    """exp(-exponent |r - centre|^2) on points (bohr)."""
    return np.exp(-exponent * np.sum((points - centre) ** 2, axis=1))


class ToyBackend(QCBackend):
    """Extended-Hueckel s-Gaussian model with an overlap-metric RI fit."""

    name = "toy"
    Options = ToyOptions

    def _orbital_norm(self) -> float:
        return (2 * self.options.orbital_exponent / np.pi) ** 0.75

    def _aux(self, atoms: ase.Atoms) -> list[tuple[float, np.ndarray]]:
        """(exponent, centre in bohr) of every auxiliary function, canonical order."""
        centres = atoms.positions / BOHR_IN_ANGSTROM
        return [(g, centre) for centre in centres for g in self.options.aux_exponents]

    def basis_layout(self, atoms: ase.Atoms) -> BasisLayout:
        count = len(self.options.aux_exponents)
        return BasisLayout({int(z): (count,) for z in set(atoms.numbers)})

    def run_scf(self, atoms: ase.Atoms) -> SCFResult:
        alpha = self.options.orbital_exponent
        centres = atoms.positions / BOHR_IN_ANGSTROM
        n = len(atoms)
        overlap = np.array(
            [[gaussian_product(alpha, a, alpha, b)[0] for b in centres] for a in centres]
        )
        hamiltonian = 1.75 * overlap * self.options.onsite_energy
        np.fill_diagonal(hamiltonian, self.options.onsite_energy)
        # generalised eigenproblem H C = S C e through Loewdin orthogonalisation
        values, vectors = np.linalg.eigh(overlap)
        inverse_root = vectors @ np.diag(values**-0.5) @ vectors.T
        energies, rotated = np.linalg.eigh(inverse_root @ hamiltonian @ inverse_root)
        occupations = np.zeros(n)
        occupations[: n // 2] = 2.0
        if n % 2:
            occupations[n // 2] = 1.0
        orbitals = OrbitalData(energies[None, None], occupations[None, None], np.ones(1))
        state = {"mo_coeff": inverse_root @ rotated, "centres": centres}
        return SCFResult(atoms, orbitals, float(energies @ occupations), True, state)

    def fit(self, scf: SCFResult, weights: np.ndarray, n_electrons: float | None = None) -> RIFit:
        mo = scf.state["mo_coeff"]
        density_matrix = (mo * weights[0, 0]) @ mo.T
        aux = self._aux(scf.atoms)
        norm2 = self._orbital_norm() ** 2
        alpha = self.options.orbital_exponent
        centres = scf.state["centres"]
        metric = np.array(
            [
                [
                    self._aux_norm(g)
                    * self._aux_norm(h)
                    * (np.pi / (g + h)) ** 1.5
                    * gaussian_product(g, a, h, b)[0]
                    for h, b in aux
                ]
                for g, a in aux
            ]
        )
        projections = np.zeros(len(aux))
        for i, a in enumerate(centres):
            for j, b in enumerate(centres):
                k, p, centre = gaussian_product(alpha, a, alpha, b)
                for index, (g, c) in enumerate(aux):
                    k2 = gaussian_product(p, centre, g, c)[0]
                    projections[index] += (
                        density_matrix[i, j]
                        * norm2
                        * k
                        * self._aux_norm(g)
                        * k2
                        * (np.pi / (p + g)) ** 1.5
                    )
        integrals = np.ones(len(aux))
        coefficients = solve_fit(metric, projections, integrals, n_electrons)
        return RIFit(
            coefficients=coefficients,
            projections=metric @ coefficients,
            metric=metric,
            metric_kind="overlap",
            layout=self.basis_layout(scf.atoms),
            integrals=integrals,
            field_state={"density_matrix": density_matrix},
        )

    @staticmethod
    def _aux_norm(exponent: float) -> float:
        """Normalisation giving every auxiliary function a unit integral."""
        return (exponent / np.pi) ** 1.5

    def evaluate_fitted(self, atoms: ase.Atoms, coefficients: np.ndarray, points: np.ndarray):
        bohr_points = points / BOHR_IN_ANGSTROM
        return sum(
            d * self._aux_norm(g) * gaussian_values(g, centre, bohr_points)
            for d, (g, centre) in zip(coefficients, self._aux(atoms), strict=True)
        )

    def evaluate_exact(self, atoms: ase.Atoms, field_state: dict, points: np.ndarray):
        bohr_points = points / BOHR_IN_ANGSTROM
        centres = atoms.positions / BOHR_IN_ANGSTROM
        alpha = self.options.orbital_exponent
        orbitals = np.stack([gaussian_values(alpha, c, bohr_points) for c in centres], axis=1)
        orbitals *= self._orbital_norm()
        return np.einsum("pi,ij,pj->p", orbitals, field_state["density_matrix"], orbitals)

    def integration_grid(self, atoms: ase.Atoms) -> IntegrationGrid:
        spacing = self.options.grid_spacing
        low = atoms.positions.min(axis=0) - 4.0
        high = atoms.positions.max(axis=0) + 4.0
        axes = [np.arange(lo, hi + spacing, spacing) for lo, hi in zip(low, high, strict=True)]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        volume = (spacing / BOHR_IN_ANGSTROM) ** 3
        return IntegrationGrid(points=points, weights=np.full(len(points), volume))
