"""Shared structures and backends for the rhocore-pyscf tests."""

from __future__ import annotations

import ase
import numpy as np
import pytest

from rhocore.rotations import random_rotation
from rhocore.structures import distorted_waters


@pytest.fixture(scope="session")
def water() -> ase.Atoms:
    """One asymmetric, randomly oriented water molecule (angstrom)."""
    return distorted_waters(1, seed=11)[0]


@pytest.fixture(scope="session")
def methylene() -> ase.Atoms:
    """Bent CH2 with unequal C-H bonds (angstrom), randomly oriented: a triplet ground state.

    Its two unpaired electrons sit in non-degenerate orbitals, so its UKS density is
    rotation invariant (unlike OH, whose unpaired electron picks one of two degenerate pi).
    """
    half = np.radians(134.0 / 2)
    positions = np.array(
        [
            [0.0, 0.0, 0.0],
            [1.08 * np.sin(half), 0.0, 1.08 * np.cos(half)],
            [-1.09 * np.sin(half), 0.0, 1.09 * np.cos(half)],
        ]
    )
    return ase.Atoms("CH2", positions=positions @ random_rotation(3).T)
