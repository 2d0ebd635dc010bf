"""Shared structures and backends for the rhocore-pyscf tests."""

from __future__ import annotations

import os
from pathlib import Path

import ase
import numpy as np
import pytest

from rhocore.data.generators import distorted_waters
from rhocore.qc.rotations import random_rotation

REPO_ROOT = Path(__file__).resolve().parents[3]


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


def shared_data_dir() -> Path:
    """``../shared/data`` next to the repository, or ``$RHOCORE_SHARED_DATA``."""
    return Path(os.environ.get("RHOCORE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def cclib_outputs() -> Path:
    """The real QC outputs of ``shared/data/cclib_outputs``; tests skip, loudly, without them."""
    pytest.importorskip("cclib", reason="the cclib backend tests need cclib installed")
    path = shared_data_dir() / "cclib_outputs"
    if not (path / "README.md").is_file():
        pytest.skip(f"real QC outputs not found at {path} (set RHOCORE_SHARED_DATA)")
    return path
