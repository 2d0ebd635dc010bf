"""The density, homo, lumo and orbital targets on hand-built orbital data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from rhocore_targets import DensityTarget, HomoTarget, LumoTarget, OrbitalTarget

from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.backend import OrbitalData
from rhocore.testing.targets import check_density_target, check_target


def restricted() -> OrbitalData:
    """Closed shell, 6 states: doubly degenerate HOMO (states 2, 3) and LUMO (4, 5)."""
    energies = [[[-20.0, -10.0, -5.0, -5.0, 1.0, 1.0]]]
    occupations = [[[2.0, 2.0, 2.0, 2.0, 0.0, 0.0]]]
    return OrbitalData(energies, occupations, [1.0])


def unrestricted() -> OrbitalData:
    """Open shell: alpha HOMO (-4 eV) lies above beta HOMO; beta LUMO (-3 eV) is lowest."""
    energies = [[[-20.0, -9.0, -4.0, 2.0]], [[-19.0, -8.0, -3.0, 3.0]]]
    occupations = [[[1.0, 1.0, 1.0, 0.0]], [[1.0, 1.0, 0.0, 0.0]]]
    return OrbitalData(energies, occupations, [1.0])


def fractional() -> OrbitalData:
    """Spin-restricted, a degenerate shell holding 1.2 of its 4 electrons (smearing)."""
    energies = [[[-15.0, -6.0, -2.0, -2.0, 4.0]]]
    occupations = [[[2.0, 2.0, 0.6, 0.6, 0.0]]]
    return OrbitalData(energies, occupations, [1.0])


def periodic() -> OrbitalData:
    """Two k-points with weights 0.25 / 0.75; band 1 is the valence band."""
    energies = [[[-8.0, -1.0, 2.0], [-7.0, -0.5, 3.0]]]
    occupations = [[[2.0, 2.0, 0.0], [2.0, 2.0, 0.0]]]
    return OrbitalData(energies, occupations, [0.25, 0.75])


ALL_DATA = [restricted, unrestricted, fractional, periodic]


def _unit(shape: tuple[int, ...], *entries: tuple[tuple[int, int, int], float]) -> np.ndarray:
    out = np.zeros(shape)
    for index, value in entries:
        out[index] = value
    return out


@pytest.mark.parametrize("make", ALL_DATA)
def test_density_weights_are_occupations_times_k_weights(make):
    orbitals = make()
    weights = check_density_target(DensityTarget(), orbitals)
    assert np.allclose(weights, orbitals.occupations * orbitals.k_weights[None, :, None])


def test_density_of_periodic_data_counts_electrons_per_cell():
    assert check_density_target(DensityTarget(), periodic()).sum() == pytest.approx(4.0)


def test_homo_of_degenerate_shell_shares_unit_weight():
    weights = check_target(HomoTarget(), restricted())
    assert np.allclose(weights, _unit((1, 1, 6), ((0, 0, 2), 0.5), ((0, 0, 3), 0.5)))


def test_lumo_of_degenerate_shell_shares_unit_weight():
    weights = check_target(LumoTarget(), restricted())
    assert np.allclose(weights, _unit((1, 1, 6), ((0, 0, 4), 0.5), ((0, 0, 5), 0.5)))


def test_zero_degeneracy_tolerance_still_groups_exact_ties_only():
    orbitals = OrbitalData([[[-5.0, -5.0 + 1e-4, 1.0]]], [[[2.0, 2.0, 0.0]]], [1.0])
    assert np.allclose(HomoTarget({"degeneracy_tolerance": 0.0}).weights(orbitals)[0, 0], [0, 1, 0])
    assert np.allclose(HomoTarget().weights(orbitals)[0, 0], [0.5, 0.5, 0])


def test_homo_over_both_spins_is_the_highest_occupied_energy():
    weights = check_target(HomoTarget(), unrestricted())
    assert np.allclose(weights, _unit((2, 1, 4), ((0, 0, 2), 1.0)))


def test_homo_of_one_spin_channel():
    weights = check_target(HomoTarget({"spin": 1}), unrestricted())
    assert np.allclose(weights, _unit((2, 1, 4), ((1, 0, 1), 1.0)))


def test_lumo_over_both_spins_is_the_lowest_empty_energy():
    weights = check_target(LumoTarget(), unrestricted())
    assert np.allclose(weights, _unit((2, 1, 4), ((1, 0, 2), 1.0)))
    alpha = check_target(LumoTarget({"spin": 0}), unrestricted())
    assert np.allclose(alpha, _unit((2, 1, 4), ((0, 0, 3), 1.0)))


def test_closed_shell_run_unrestricted_gives_the_restricted_homo_density():
    closed = OrbitalData([[[-9.0, -4.0, 2.0]]] * 2, [[[1.0, 1.0, 0.0]]] * 2, [1.0])
    weights = check_target(HomoTarget(), closed)
    assert np.allclose(weights, _unit((2, 1, 3), ((0, 0, 1), 0.5), ((1, 0, 1), 0.5)))


def test_partially_filled_shell_is_both_homo_and_lumo():
    shell = _unit((1, 1, 5), ((0, 0, 2), 0.5), ((0, 0, 3), 0.5))
    assert np.allclose(check_target(HomoTarget(), fractional()), shell)
    assert np.allclose(check_target(LumoTarget(), fractional()), shell)


def test_smearing_tail_below_threshold_is_not_occupied():
    orbitals = OrbitalData([[[-5.0, 1.0, 2.0]]], [[[1.99, 0.01, 0.0]]], [1.0])
    assert np.allclose(HomoTarget().weights(orbitals)[0, 0], [1, 0, 0])
    assert np.allclose(HomoTarget({"occupation_threshold": 0.0}).weights(orbitals)[0, 0], [0, 1, 0])


def test_periodic_homo_and_lumo_take_the_band_at_every_k_point():
    homo = check_target(HomoTarget(), periodic())
    assert np.allclose(homo, _unit((1, 2, 3), ((0, 0, 1), 0.25), ((0, 1, 1), 0.75)))
    lumo = check_target(LumoTarget(), periodic())
    assert np.allclose(lumo, _unit((1, 2, 3), ((0, 0, 2), 0.25), ((0, 1, 2), 0.75)))


@pytest.mark.parametrize(("index", "state"), [(0, 3), (-1, 2), (-3, 0), (1, 4), (2, 5)])
def test_orbital_index_is_relative_to_the_homo(index, state):
    weights = check_target(OrbitalTarget({"index": index}), restricted())
    assert np.allclose(weights, _unit((1, 1, 6), ((0, 0, state), 1.0)))


def test_orbital_of_beta_channel_and_periodic_band():
    beta = check_target(OrbitalTarget({"spin": 1, "index": 1}), unrestricted())
    assert np.allclose(beta, _unit((2, 1, 4), ((1, 0, 2), 1.0)))
    band = check_target(OrbitalTarget({"index": -1}), periodic())
    assert np.allclose(band, _unit((1, 2, 3), ((0, 0, 0), 0.25), ((0, 1, 0), 0.75)))


@pytest.mark.parametrize("index", [3, -4])
def test_orbital_index_out_of_range_says_how_many_orbitals_exist(index):
    with pytest.raises(ValueError, match=r"has 6 orbitals with the HOMO at state 3.*-3 to 2"):
        OrbitalTarget({"index": index}).weights(restricted())


def test_beta_channel_of_restricted_data_is_refused():
    with pytest.raises(ValueError, match="spin-restricted"):
        OrbitalTarget({"spin": 1}).weights(restricted())
    with pytest.raises(ValueError, match="spin-restricted"):
        HomoTarget({"spin": 1}).weights(restricted())


def test_lumo_without_virtual_orbitals_is_an_error():
    full = OrbitalData([[[-9.0, -4.0]]], [[[2.0, 2.0]]], [1.0])
    with pytest.raises(ValueError, match="no empty orbital.*virtual orbitals"):
        LumoTarget().weights(full)


@pytest.mark.parametrize(
    ("cls", "options", "field"),
    [
        (DensityTarget, {"sigma": 0.1}, "sigma"),
        (HomoTarget, {"spin": "up"}, "spin"),
        (HomoTarget, {"spin": 2}, "spin"),
        (LumoTarget, {"degeneracy_tolerance": -1.0}, "degeneracy_tolerance"),
        (OrbitalTarget, {"index": 0, "band": 3}, "band"),
        (OrbitalTarget, {"spin": "both"}, "spin"),
    ],
)
def test_bad_options_are_rejected_naming_the_field(cls, options, field):
    with pytest.raises(ValidationError, match=field):
        cls(options)


def test_installed_entry_point_registers_all_targets():
    manager = get_plugin_manager()
    # The core's built-in models are not needed to find targets.
    manager.unregister(name="rhocore.models.builtin")
    registry = get_registry(manager)
    expected = {"density": DensityTarget, "homo": HomoTarget, "lumo": LumoTarget}
    expected["orbital"] = OrbitalTarget
    for name, cls in expected.items():
        info = registry.info("target", name)
        assert info.cls is cls
        assert info.distribution == "rhocore-targets"
