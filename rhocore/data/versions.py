"""Upgrading versioned files (datasets, checkpoints) one format version at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Turns the document of format n into the document of format n + 1.
Updater = Callable[[dict[str, Any]], dict[str, Any]]


def upgrade(
    document: dict[str, Any],
    version: int,
    current: int,
    updaters: Mapping[int, Updater],
    description: str,
    error: type[Exception] = ValueError,
    hint: str = "",
) -> dict[str, Any]:
    """Apply ``updaters[version]``, ``updaters[version + 1]``, ... up to ``current``.

    ``description`` names the file and its kind in the error raised when a step is
    missing (``"'run/checkpoint.ckpt' has checkpoint"``); ``hint`` says what reads it.
    """
    while version < current:
        if version not in updaters:
            raise error(
                f"{description} format version {version}, which this rhocore no longer reads{hint}"
            )
        document = updaters[version](document)
        version += 1
    return document
