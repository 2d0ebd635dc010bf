"""rhocore.testing.targets accepts every target here and rejects broken ones."""

from __future__ import annotations

import numpy as np
import pytest
from rhocore_targets import DensityTarget, HomoTarget, LumoTarget, OrbitalTarget

from rhocore.qc.backend import OrbitalData, PluginOptions
from rhocore.qc.target import Target
from rhocore.testing.targets import check_density_target, check_target

ORBITALS = OrbitalData(
    [[[-9.0, -4.0, 2.0], [-8.0, -3.0, 2.5]], [[-8.5, -3.5, 2.2], [-7.5, -2.5, 3.0]]],
    [[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]], [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]],
    [0.5, 0.5],
)


@pytest.mark.parametrize(
    "target",
    [DensityTarget(), HomoTarget(), LumoTarget(), OrbitalTarget({"index": 1, "spin": 1})],
    ids=lambda target: target.name,
)
def test_every_target_passes_the_contract(target):
    check_target(target, ORBITALS)


class _Options(PluginOptions):
    """No options."""


class _Occupations(Target):
    """Returns the input occupations themselves, not a fresh array."""

    name = "aliased"
    Options = _Options
    is_total_density = True

    def weights(self, orbitals):
        return orbitals.occupations


class _Flat(_Occupations):
    """Drops the spin axis."""

    name = "flat"

    def weights(self, orbitals):
        return orbitals.occupations.sum(axis=0)


class _Negative(_Occupations):
    name = "negative"

    def weights(self, orbitals):
        return -orbitals.occupations.copy()


class _Cached(_Occupations):
    """Returns one cached array, so a caller's edit changes the next result."""

    name = "cached"

    def weights(self, orbitals):
        if not hasattr(self, "_cache"):
            self._cache = orbitals.occupations.copy()
        return self._cache


class _WrongIntegral(_Occupations):
    name = "wrong-integral"

    def weights(self, orbitals):
        return orbitals.occupations.copy()

    def expected_integral(self, orbitals):
        return 1.0


class _MissingKWeights(_WrongIntegral):
    """Forgets the k-weights: right shape, wrong electron count with two k-points."""

    name = "no-k-weights"

    def expected_integral(self, orbitals):
        return float(self.weights(orbitals).sum())


class _Loose(PluginOptions):
    """Undocumented field."""

    sigma: float = 0.1


class _Undocumented(_WrongIntegral):
    name = "undocumented"
    Options = _Loose

    def expected_integral(self, orbitals):
        return float(self.weights(orbitals).sum())


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (_Occupations(), "share memory with orbitals.occupations"),
        (_Flat(), "expected the shape"),
        (_Negative(), "negative weights"),
        (_Cached(), "same array"),
        (_WrongIntegral(), "expected_integral"),
        (_Undocumented(), "no description"),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_broken_targets_fail_the_contract(target, message):
    with pytest.raises(AssertionError, match=message):
        check_target(target, ORBITALS)


def test_density_check_catches_a_missing_k_weight():
    check_target(_MissingKWeights(), ORBITALS)
    with pytest.raises(AssertionError, match="electrons"):
        check_density_target(_MissingKWeights(), ORBITALS)


def test_density_check_requires_is_total_density():
    with pytest.raises(AssertionError, match="is_total_density"):
        check_density_target(HomoTarget(), OrbitalData([[[0.0]]], [[[1.0]]], [1.0]))


def test_negative_weights_pass_when_the_target_allows_them():
    weights = check_target(_Negative(), ORBITALS, non_negative=False)
    assert np.all(weights <= 0)
