"""Contract suite of a QC backend: class, metric, rotation of coefficients, electron count.

A backend is tested by one call from its own tests, ``check_backend(backend, atoms)``.
Every failure is an ``AssertionError`` that says which part of the contract broke and
what usually causes it. Only the core is imported here: the suite runs on any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ase
import numpy as np

from rhocore.qc.backend import OrbitalData, QCBackend, RIFit
from rhocore.qc.basis import BasisLayout
from rhocore.qc.rotations import random_rotation, rotate_coefficients
from rhocore.testing.plugins import check_plugin_class

WeightsFn = Callable[[OrbitalData], np.ndarray]

#: Default tolerance on ``abs(fitted integral - N) / N`` per metric: an overlap-metric fit does not
#: conserve the electron count (0.1-1.3 % measured on small molecules), a Coulomb one nearly.
ELECTRON_RTOL: dict[str, float] = {"overlap": 2e-2, "coulomb": 1e-3}


@dataclass
class BackendReport:
    """What :func:`check_backend` measured (relative errors are dimensionless)."""

    n_electrons: float
    fitted_electrons: float
    fitted_electrons_on_grid: float
    exact_electrons_on_grid: float
    rotation_error: float
    metric_rotation_error: float
    scf_converged_rotated: bool


def density_weights(orbitals: OrbitalData) -> np.ndarray:
    """W(a) of the total density: occupation times k-point weight."""
    return orbitals.occupations * orbitals.k_weights[None, :, None]


def check_backend(
    backend: QCBackend,
    atoms: ase.Atoms,
    target_weights_fn: WeightsFn | None = None,
    rotation_seed: int = 0,
    rtol: float = 1e-6,
    electron_rtol: float | None = None,
    grid_rtol: float = 1e-4,
) -> BackendReport:
    """Check the QCBackend contract of ``backend`` on ``atoms`` and return what it measured.

    Checked: the class (``name``, an ``Options`` that forbids unknown, documented fields);
    the SCF converges; the fit of ``target_weights_fn`` (default: the total density) has
    the layout's size and a symmetric positive definite metric with ``projections = S d``;
    rotating the structure (``positions @ R.T``) rotates the coefficients by the Wigner-D
    matrices of :mod:`rhocore.qc.rotations` (relative error <= ``rtol``), the metric as
    ``D S D^T`` and leaves the fitted field covariant; the total density integrates to the
    electron count, exactly on the integration grid (``grid_rtol``) and as fitted
    (``electron_rtol``, by default :data:`ELECTRON_RTOL` of the fit's metric).

    Choose an asymmetric structure whose targeted states are not degenerate: a rotation
    mixes degenerate orbitals.
    """
    check_plugin_class(type(backend))
    weights_fn = target_weights_fn or density_weights
    formula = atoms.get_chemical_formula()
    label = f"backend '{backend.name}' on {formula}"
    layout = backend.basis_layout(atoms)
    scf = backend.run_scf(atoms)
    assert scf.converged, f"{label}: the SCF did not converge"
    n_electrons = scf.orbitals.n_electrons
    fit = backend.fit(scf, _weights(weights_fn, scf.orbitals, label))
    check_fit(fit, layout, atoms, label)

    total = fit if target_weights_fn is None else None
    if total is None:
        total = backend.fit(scf, density_weights(scf.orbitals))
        check_fit(total, layout, atoms, label)
    grid = backend.integration_grid(atoms)
    exact_on_grid = float(
        grid.weights @ backend.evaluate_exact(atoms, total.field_state, grid.points)
    )
    assert abs(exact_on_grid - n_electrons) <= grid_rtol * n_electrons, (
        f"{label}: the exact total density integrates to {exact_on_grid:.8f} on the "
        f"integration grid, the occupations give {n_electrons:.8f} electrons (tolerance "
        f"{grid_rtol:.1e} relative). The grid weights (bohr^3), the points (angstrom) or "
        "evaluate_exact are wrong."
    )
    fitted_on_grid = float(
        grid.weights @ backend.evaluate_fitted(atoms, total.coefficients, grid.points)
    )
    assert abs(fitted_on_grid - total.fitted_integral) <= grid_rtol * n_electrons, (
        f"{label}: the fitted density integrates to {fitted_on_grid:.8f} on the grid but "
        f"integrals . d gives {total.fitted_integral:.8f}: the basis-function integrals or "
        "evaluate_fitted disagree with the fit."
    )
    tolerance = ELECTRON_RTOL[total.metric_kind] if electron_rtol is None else electron_rtol
    error = abs(total.fitted_integral - n_electrons) / n_electrons
    assert error <= tolerance, (
        f"{label}: the {total.metric_kind}-metric fit of the total density integrates to "
        f"{total.fitted_integral:.8f} instead of {n_electrons:.8f} electrons (relative error "
        f"{error:.2e} > {tolerance:.1e}): the projections, metric or integrals are inconsistent."
    )
    rotation_error, metric_error, converged = check_rotation(
        backend, atoms, fit, weights_fn, seed=rotation_seed, rtol=rtol
    )
    return BackendReport(
        n_electrons=n_electrons,
        fitted_electrons=total.fitted_integral,
        fitted_electrons_on_grid=fitted_on_grid,
        exact_electrons_on_grid=exact_on_grid,
        rotation_error=rotation_error,
        metric_rotation_error=metric_error,
        scf_converged_rotated=converged,
    )


def check_fit(fit: RIFit, layout: BasisLayout, atoms: ase.Atoms, label: str = "fit") -> None:
    """Shapes of a fit match the layout; S is symmetric positive definite; w = S d."""
    size = layout.size(atoms.numbers)
    assert fit.layout == layout, (
        f"{label}: the fit's layout {fit.layout.nmax} differs from basis_layout() {layout.nmax}"
    )
    for what, array, shape in (
        ("coefficients", fit.coefficients, (size,)),
        ("projections", fit.projections, (size,)),
        ("integrals", fit.integrals, (size,)),
        ("metric", fit.metric, (size, size)),
    ):
        assert np.shape(array) == shape, (
            f"{label}: {what} have shape {np.shape(array)}, the basis layout gives {shape}"
        )
        unknown = what == "integrals" and bool(np.all(np.isnan(array)))
        assert unknown or np.all(np.isfinite(array)), f"{label}: {what} contain NaN or infinity"
    assert fit.metric_kind in ELECTRON_RTOL, (
        f"{label}: metric_kind '{fit.metric_kind}' is none of {sorted(ELECTRON_RTOL)}"
    )
    check_metric(fit, label)
    if np.all(np.isnan(fit.integrals)):  # a code that does not write them: all NaN
        return
    nonzero = np.abs(fit.integrals) > 1e-12 * np.abs(fit.integrals).max()
    assert not np.any(nonzero & ~layout.s_function_mask(atoms.numbers)), (
        f"{label}: basis functions with l > 0 have non-zero integrals; the canonical order "
        "of the integrals vector is wrong"
    )


def check_metric(fit: RIFit, label: str = "fit") -> None:
    """S is symmetric and positive definite, and ``projections = S d``."""
    metric = np.asarray(fit.metric)
    scale = np.abs(metric).max()
    asymmetry = np.abs(metric - metric.T).max() / scale
    assert asymmetry <= 1e-10, f"{label}: the metric is not symmetric ({asymmetry:.2e} relative)"
    smallest = float(np.linalg.eigvalsh(metric)[0])
    assert smallest > 0, (
        f"{label}: the metric is not positive definite (smallest eigenvalue {smallest:.3e})"
    )
    residual = np.abs(metric @ fit.coefficients - fit.projections).max()
    assert residual <= 1e-8 * max(np.abs(fit.projections).max(), 1e-300), (
        f"{label}: projections are not S d (largest residual {residual:.2e})"
    )


def check_rotation(
    backend: QCBackend,
    atoms: ase.Atoms,
    fit: RIFit,
    weights_fn: WeightsFn = density_weights,
    seed: int = 0,
    rtol: float = 1e-6,
) -> tuple[float, float, bool]:
    """The fit of the rotated structure is the Wigner-rotated fit of ``atoms``.

    ``fit`` is the fit of ``atoms`` with ``weights_fn``. Checked: coefficients (relative
    error <= ``rtol``; an SCF on a rotated integration grid is invariant only to its
    convergence and grid error), the metric ``S(R) = D S D^T`` (1e-8: analytic integrals)
    and the fitted field at rotated points (1e-8). Returns the coefficient and metric
    errors and whether the rotated SCF converged.
    """
    label = f"backend '{backend.name}' on {atoms.get_chemical_formula()}"
    rotation = random_rotation(seed)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    if np.any(atoms.pbc):
        rotated.set_cell(np.asarray(atoms.cell) @ rotation.T, scale_atoms=False)
    layout = backend.basis_layout(atoms)
    numbers = atoms.numbers

    def rotate(vector: np.ndarray) -> np.ndarray:
        return rotate_coefficients(vector, layout, numbers, rotation)

    rotated_scf = backend.run_scf(rotated)
    rotated_fit = backend.fit(rotated_scf, _weights(weights_fn, rotated_scf.orbitals, label))

    wigner = np.stack([rotate(column) for column in np.eye(layout.size(numbers))], axis=1)
    expected_metric = wigner @ fit.metric @ wigner.T
    metric_error = float(
        np.linalg.norm(rotated_fit.metric - expected_metric) / np.linalg.norm(expected_metric)
    )
    assert metric_error <= 1e-8, (
        f"{label}: the metric of the rotated structure differs from D S D^T by "
        f"{metric_error:.2e} (relative). The backend's conversion of its basis functions to "
        "the canonical order atom -> l -> n -> m and real-harmonic phases (featomic's "
        "convention, rhocore.qc.rotations) is wrong."
    )
    expected = wigner @ fit.coefficients
    error = float(np.linalg.norm(rotated_fit.coefficients - expected) / np.linalg.norm(expected))
    assert error <= rtol, (
        f"{label}: coefficients of the rotated structure differ from the Wigner-rotated "
        f"ones by {error:.2e} (relative; tolerance {rtol:.1e}). The backend's canonical order "
        "or phases are wrong, or the SCF is not converged tightly enough."
    )
    points = _probe_points(atoms, seed)
    before = backend.evaluate_fitted(atoms, fit.coefficients, points)
    after = backend.evaluate_fitted(rotated, expected, points @ rotation.T)
    field_error = float(np.linalg.norm(after - before) / np.linalg.norm(before))
    assert field_error <= 1e-8, (
        f"{label}: evaluate_fitted of the rotated structure and Wigner-rotated coefficients "
        f"differs from the original field at rotated points by {field_error:.2e} (relative): "
        "evaluate_fitted converts canonical coefficients back to the backend's order wrongly."
    )
    return error, metric_error, bool(rotated_scf.converged)


def _weights(weights_fn: WeightsFn, orbitals: OrbitalData, label: str) -> np.ndarray:
    weights = np.asarray(weights_fn(orbitals), dtype=float)
    assert weights.shape == orbitals.energies.shape, (
        f"{label}: target weights have shape {weights.shape}, the orbitals "
        f"{orbitals.energies.shape}"
    )
    return weights


def _probe_points(atoms: ase.Atoms, seed: int, count: int = 64) -> np.ndarray:
    """Points (angstrom) within about one angstrom of the atoms, where fields are large."""
    rng = np.random.default_rng(seed)
    centres = atoms.positions[rng.integers(len(atoms), size=count)]
    return centres + rng.normal(scale=0.6, size=(count, 3))
