"""Shared fixtures of the rhocore-aims tests: where the real FHI-aims data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path:
    """``../shared/data`` next to the repository, or ``$RHOCORE_SHARED_DATA``."""
    return Path(os.environ.get("RHOCORE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data of other projects; tests that need it skip, loudly, when it is absent."""
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(
            f"real FHI-aims data not found at {path} (set RHOCORE_SHARED_DATA to its folder)"
        )
    return path


@pytest.fixture(scope="session")
def water_density_h5(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 30 rho_learn water densities imported once per test process into one dataset.

    Shared by the tests that train on it (read only: do not write to it); the import
    itself, and its CLI, are tested in test_aims_import.py.
    """
    from rhocore_aims.importer import import_folders

    root = shared_data / "rho_learn_water_density"
    output = tmp_path_factory.mktemp("water-density") / "density.h5"
    import_folders(
        [root / "structures"], output, xyz=root / "water_monomers_1k.xyz", progress=False
    )
    return output
