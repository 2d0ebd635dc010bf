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
