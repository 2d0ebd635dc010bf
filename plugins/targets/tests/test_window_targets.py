"""The ldos and ildos targets against numerical integration and the single-orbital targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from rhocore_targets import (
    DensityTarget,
    HomoTarget,
    IldosTarget,
    LdosTarget,
    OrbitalTarget,
)
from scipy.integrate import quad

from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.backend import OrbitalData
from rhocore.qc.target import EnergyWindow
from rhocore.testing.targets import check_target


def restricted(fermi_level: float | None = -2.0) -> OrbitalData:
    """Closed-shell molecule: HOMO -5 eV, LUMO 1 eV, six electrons."""
    energies = [[[-20.0, -10.0, -5.0, 1.0, 3.0]]]
    occupations = [[[2.0, 2.0, 2.0, 0.0, 0.0]]]
    return OrbitalData(energies, occupations, [1.0], fermi_level=fermi_level)


def polarised(vacuum_level: float | None = 4.5) -> OrbitalData:
    """Spin-polarised slab, three k-points, bands dispersing by +-0.1 eV.

    Alpha holds three electrons, beta two. HOMO: top of alpha band 2 (-2.9 eV); LUMO:
    bottom of beta band 2 (0.4 eV). Fermi level -1 eV, vacuum level 4.5 eV.
    """
    alpha = np.array([-12.0, -6.0, -3.0, 2.0])
    beta = np.array([-11.5, -5.5, 0.5, 2.5])
    dispersion = np.array([-0.1, 0.0, 0.1])[:, None]
    energies = np.stack([alpha + dispersion, beta + dispersion])
    occupations = np.zeros_like(energies)
    occupations[0, :, :3] = 1.0
    occupations[1, :, :2] = 1.0
    return OrbitalData(
        energies, occupations, [0.25, 0.5, 0.25], fermi_level=-1.0, vacuum_level=vacuum_level
    )


def random_levels(n_spin: int, seed: int) -> OrbitalData:
    """Random levels in [-4, 4] eV on three k-points; occupations play no part here."""
    rng = np.random.default_rng(seed)
    energies = np.sort(rng.uniform(-4.0, 4.0, (n_spin, 3, 6)), axis=-1)
    return OrbitalData(energies, np.zeros_like(energies), [0.2, 0.3, 0.5], fermi_level=0.3)


def broadened_level(energy: float, level: float, sigma: float) -> float:
    """Normal distribution of mean ``level`` and standard deviation ``sigma`` at ``energy``."""
    return math.exp(-0.5 * ((energy - level) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


@pytest.mark.parametrize(
    ("target", "make"),
    [
        (LdosTarget(), restricted),
        (LdosTarget({"reference": "homo", "energy": -0.5, "spin": 1, "sigma": 0.3}), polarised),
        (LdosTarget({"reference": "vacuum", "energy": -5.0}), polarised),
        (IldosTarget({"bias": -1.5}), polarised),
        (IldosTarget({"bias": 2.0, "spin": 0}), restricted),
        (IldosTarget({"reference": "lumo", "emin": -0.2, "emax": 1.0}), polarised),
        (IldosTarget({"reference": "absolute", "emin": -30, "emax": 30, "sigma": 0.5}), polarised),
    ],
    ids=lambda value: getattr(value, "name", getattr(value, "__name__", "")),
)
def test_window_targets_pass_the_contract(target, make):
    check_target(target, make())


@pytest.mark.parametrize(("n_spin", "states_per_orbital"), [(1, 2.0), (2, 1.0)])
def test_ildos_is_the_broadened_dos_integrated_over_the_window(n_spin, states_per_orbital):
    orbitals = random_levels(n_spin, seed=n_spin)
    sigma, lower, upper = 0.4, -1.5, 0.8
    options = {"reference": "absolute", "emin": lower, "emax": upper, "sigma": sigma}
    weights = check_target(IldosTarget(options), orbitals)
    expected = np.zeros_like(weights)
    for index, level in np.ndenumerate(orbitals.energies):
        peak = [min(max(level, lower + 1e-3), upper - 1e-3)]
        inside, _ = quad(broadened_level, lower, upper, (level, sigma), points=peak, epsabs=1e-13)
        expected[index] = states_per_orbital * orbitals.k_weights[index[1]] * inside
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-8)
    shifted = {**options, "reference": "fermi", "emin": lower - 0.3, "emax": upper - 0.3}
    np.testing.assert_allclose(IldosTarget(shifted).weights(orbitals), weights, atol=1e-12)


@pytest.mark.parametrize("n_spin", [1, 2])
@pytest.mark.parametrize("energy", [-2.0, 0.1, 1.7])
def test_ldos_is_the_derivative_of_ildos_by_the_upper_edge(n_spin, energy):
    orbitals = random_levels(n_spin, seed=10 + n_spin)
    common = {"reference": "absolute", "sigma": 0.3}
    step = 1e-4
    below, above = (
        IldosTarget({**common, "emin": -10.0, "emax": energy + sign * step}).weights(orbitals)
        for sign in (-1, 1)
    )
    ldos = check_target(LdosTarget({**common, "energy": energy}), orbitals)
    np.testing.assert_allclose(ldos, (above - below) / (2 * step), rtol=0, atol=1e-7)
    assert ldos.max() > 0.1


def test_window_around_one_restricted_orbital_holds_its_two_electrons():
    narrow = {"emin": -0.5, "emax": 0.5, "sigma": 0.05}
    homo = IldosTarget({**narrow, "reference": "homo"}).weights(restricted())
    np.testing.assert_allclose(homo, 2 * HomoTarget().weights(restricted()), atol=1e-12)
    lumo = IldosTarget({**narrow, "reference": "lumo"}).weights(restricted())
    np.testing.assert_allclose(lumo, 2 * OrbitalTarget({"index": 1}).weights(restricted()))
    deep = IldosTarget({**narrow, "reference": "absolute", "emin": -10.5, "emax": -9.5})
    np.testing.assert_allclose(
        deep.weights(restricted()), 2 * OrbitalTarget({"index": -1}).weights(restricted())
    )


def test_window_around_one_spin_band_gives_that_band_with_its_k_weights():
    homo = IldosTarget({"reference": "homo", "emin": -0.5, "emax": 0.3, "sigma": 0.02})
    np.testing.assert_allclose(homo.weights(polarised()), HomoTarget().weights(polarised()))
    lumo = IldosTarget({"reference": "lumo", "emin": -0.3, "emax": 0.5, "sigma": 0.02})
    beta_lumo = OrbitalTarget({"spin": 1, "index": 1}).weights(polarised())
    np.testing.assert_allclose(lumo.weights(polarised()), beta_lumo, atol=1e-12)
    only_alpha = IldosTarget({**lumo.options.model_dump(), "spin": 0}).weights(polarised())
    assert not only_alpha.any()


@pytest.mark.parametrize("make", [restricted, polarised])
def test_window_over_all_filled_levels_gives_the_density(make):
    orbitals = make()
    filled = IldosTarget({"emin": -30.0, "emax": 0.0}).weights(orbitals)
    np.testing.assert_allclose(filled, DensityTarget().weights(orbitals), atol=1e-12)
    assert filled.sum() == pytest.approx(orbitals.n_electrons)


def test_closed_shell_ldos_does_not_depend_on_running_restricted():
    levels = [-9.0, -4.0, -3.9, 2.0]
    closed = OrbitalData([[levels]], [[[2.0, 2.0, 2.0, 0.0]]], [1.0])
    split = OrbitalData([[levels]] * 2, [[[1.0, 1.0, 1.0, 0.0]]] * 2, [1.0])
    options = {"reference": "absolute", "energy": -4.0, "sigma": 0.2}
    both = LdosTarget(options).weights(split)
    np.testing.assert_allclose(LdosTarget(options).weights(closed)[0], both.sum(axis=0))
    alpha, beta = (LdosTarget({**options, "spin": s}).weights(split) for s in (0, 1))
    np.testing.assert_allclose(alpha + beta, both)
    assert not alpha[1].any() and not beta[0].any()


def bias_levels() -> OrbitalData:
    """Fermi level -4 eV; filled levels at -7 and -4.5 eV, empty ones at -3.6 and -1 eV."""
    return OrbitalData([[[-7.0, -4.5, -3.6, -1.0]]], [[[2.0, 2.0, 0.0, 0.0]]], [1.0], -4.0)


@pytest.mark.parametrize(
    ("bias", "emin", "emax", "counted"),
    [
        (-1.0, -1.0, 0.0, [0, 2, 0, 0]),
        (1.0, 0.0, 1.0, [0, 0, 2, 0]),
        (-4.0, -4.0, 0.0, [2, 2, 0, 0]),
    ],
)
def test_negative_bias_images_filled_and_positive_bias_empty_states(bias, emin, emax, counted):
    sigma = {"sigma": 0.02}
    weights = IldosTarget({"bias": bias, **sigma}).weights(bias_levels())
    np.testing.assert_allclose(weights[0, 0], counted, atol=1e-12)
    window = IldosTarget({"reference": "fermi", "emin": emin, "emax": emax, **sigma})
    np.testing.assert_array_equal(window.weights(bias_levels()), weights)


def test_energies_follow_the_reference():
    absolute = {"reference": "absolute", "sigma": 0.3}
    for reference, energy, shift in [("vacuum", -5.0, 4.5), ("homo", 0.2, -2.9), ("lumo", 0, 0.4)]:
        moved = LdosTarget({"reference": reference, "energy": energy, "sigma": 0.3})
        fixed = LdosTarget({**absolute, "energy": energy + shift})
        np.testing.assert_allclose(moved.weights(polarised()), fixed.weights(polarised()))


@pytest.mark.parametrize(
    "target",
    [
        LdosTarget({"reference": "vacuum"}),
        IldosTarget({"reference": "vacuum", "emin": -6, "emax": -4}),
    ],
)
def test_vacuum_reference_without_vacuum_level_is_an_error(target):
    with pytest.raises(ValueError, match="reference 'vacuum'.*did not provide a vacuum level"):
        target.weights(polarised(vacuum_level=None))


@pytest.mark.parametrize("target", [LdosTarget(), IldosTarget({"bias": -1.0})])
def test_fermi_reference_without_fermi_level_is_an_error(target):
    with pytest.raises(ValueError, match="reference 'fermi'.*Fermi level"):
        target.weights(restricted(fermi_level=None))


def test_frontier_references_need_occupied_and_empty_levels():
    full = OrbitalData([[[-9.0, -4.0]]], [[[2.0, 2.0]]], [1.0])
    with pytest.raises(ValueError, match="reference 'lumo'.*empty.*virtual orbitals"):
        LdosTarget({"reference": "lumo"}).weights(full)
    empty = OrbitalData([[[-9.0, -4.0]]], [[[0.0, 0.0]]], [1.0])
    with pytest.raises(ValueError, match="reference 'homo'.*occupied"):
        LdosTarget({"reference": "homo"}).weights(empty)


def test_beta_channel_of_restricted_data_is_refused():
    with pytest.raises(ValueError, match="spin-restricted"):
        LdosTarget({"spin": 1}).weights(restricted())


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (IldosTarget, {"bias": 1.0, "emin": -1.0, "emax": 0.0}, "'bias' or as 'emin'/'emax'"),
        (IldosTarget, {"bias": 1.0, "emax": 0.0}, "'bias' or as 'emin'/'emax'"),
        (IldosTarget, {"bias": -1.0, "reference": "homo"}, "'bias'.*reference 'fermi', not 'homo'"),
        (IldosTarget, {"bias": 0.0}, "'bias' 0 V"),
        (IldosTarget, {}, "'emin' and 'emax'"),
        (IldosTarget, {"emin": -1.0}, "'emin' and 'emax'"),
        (IldosTarget, {"emin": 1.0, "emax": -1.0}, "'emin' .* below 'emax'"),
        (IldosTarget, {"emin": -1.0, "emax": 1.0, "energy": 0.0}, "energy"),
        (IldosTarget, {"bias": float("nan")}, "bias"),
        (LdosTarget, {"bias": 1.0}, "bias"),
        (LdosTarget, {"sigma": 0.0}, "sigma"),
        (LdosTarget, {"sigma": -0.1}, "sigma"),
        (LdosTarget, {"reference": "work_function"}, "reference"),
        (LdosTarget, {"spin": 2}, "spin"),
    ],
)
def test_bad_options_are_rejected_naming_the_option(cls, options, message):
    with pytest.raises(ValidationError, match=message):
        cls(options)


def test_installed_entry_point_registers_ldos_and_ildos():
    manager = get_plugin_manager()
    manager.unregister(name="rhocore.models.builtin")
    registry = get_registry(manager)
    for name, cls in {"ldos": LdosTarget, "ildos": IldosTarget}.items():
        assert registry.get("target", name) is cls
        assert registry.info("target", name).distribution == "rhocore-targets"


@pytest.mark.parametrize(
    ("options", "window"),
    [
        ({"bias": -1.5}, EnergyWindow(-1.5, 0.0, "fermi")),
        ({"bias": 0.5}, EnergyWindow(0.0, 0.5, "fermi")),
        ({"emin": -2.0, "emax": 1.0, "reference": "vacuum"}, EnergyWindow(-2.0, 1.0, "vacuum")),
    ],
)
def test_ildos_reports_its_window_and_other_fields_none(options, window):
    assert IldosTarget(options).energy_window == window
    for target in (DensityTarget(), HomoTarget(), LdosTarget(), OrbitalTarget()):
        assert target.energy_window is None
    assert DensityTarget.is_total_density and not IldosTarget.is_total_density
