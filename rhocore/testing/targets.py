"""Contract checks for :class:`rhocore.qc.target.Target` plugins.

A target plugin calls :func:`check_target` (and :func:`check_density_target` for a total
density) on orbital data of its own choosing; every failure is an ``AssertionError`` that
says which part of the contract broke.
"""

from __future__ import annotations

import copy

import numpy as np

from rhocore.qc.backend import OrbitalData
from rhocore.qc.target import Target
from rhocore.testing.plugins import check_plugin_class


def check_target(target: Target, orbitals: OrbitalData, *, non_negative: bool = True) -> np.ndarray:
    """Check the Target contract of ``target`` on ``orbitals`` and return its weights.

    Checked: class attributes (``name``, a documented ``Options`` that forbids unknown
    fields), W is a fresh finite float array of the shape of ``orbitals.energies``
    (not a view of the input, not mutated by the caller's later edits, identical on a
    second call), the input is left unchanged, ``expected_integral`` equals ``W.sum()``
    and, unless ``non_negative=False`` (a target whose field may be negative), W >= 0.
    """
    check_plugin_class(type(target))
    assert isinstance(target.options, target.Options), (
        f"{type(target).__name__}.options is a {type(target.options).__name__}, "
        f"expected an instance of its Options class {target.Options.__name__}"
    )
    before = copy.deepcopy(orbitals)
    weights = target.weights(orbitals)
    label = f"target '{target.name}'"
    assert isinstance(weights, np.ndarray), (
        f"{label}: weights() returned {type(weights).__name__}, expected a numpy array"
    )
    assert weights.shape == orbitals.energies.shape, (
        f"{label}: weights have shape {weights.shape}, expected the shape "
        f"(n_spin, n_k, n_state) = {orbitals.energies.shape} of the orbital energies"
    )
    assert np.issubdtype(weights.dtype, np.floating), (
        f"{label}: weights have dtype {weights.dtype}, expected a float dtype"
    )
    assert np.all(np.isfinite(weights)), f"{label}: weights contain NaN or infinity"
    if non_negative:
        assert np.all(weights >= 0), f"{label}: negative weights {weights[weights < 0]}"
    for field_name in ("energies", "occupations", "k_weights"):
        assert not np.shares_memory(weights, getattr(orbitals, field_name)), (
            f"{label}: weights share memory with orbitals.{field_name}; return a fresh array"
        )
        assert np.array_equal(getattr(orbitals, field_name), getattr(before, field_name)), (
            f"{label}: weights() modified orbitals.{field_name}"
        )
    reference = weights.copy()
    weights[...] = np.nan
    again = target.weights(orbitals)
    assert not np.shares_memory(again, weights), (
        f"{label}: two calls of weights() return the same array; return a fresh one each call"
    )
    assert np.array_equal(again, reference), (
        f"{label}: a second call of weights() on the same orbitals gave different weights"
    )
    total = float(reference.sum())
    expected = target.expected_integral(orbitals)
    assert np.isclose(expected, total, rtol=1e-10, atol=1e-12), (
        f"{label}: expected_integral() is {expected}, but the weights sum to {total}"
    )
    return reference


def check_density_target(target: Target, orbitals: OrbitalData) -> np.ndarray:
    """:func:`check_target` plus: a total density, whose weights sum to the electron count."""
    weights = check_target(target, orbitals)
    assert target.is_total_density, (
        f"target '{target.name}' is checked as a total density but is_total_density is False"
    )
    total = float(weights.sum())
    assert np.isclose(total, orbitals.n_electrons, rtol=1e-10, atol=1e-12), (
        f"target '{target.name}': weights sum to {total}, but the orbitals hold "
        f"{orbitals.n_electrons} electrons"
    )
    return weights
