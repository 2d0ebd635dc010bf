"""The core's STM plugin: the STM image score that may choose a ridge strength."""

from __future__ import annotations

from rhocore.plugins.hookspecs import hookimpl


@hookimpl
def rhocore_register_scorers() -> list[type]:
    """The ``stm-images`` validation scorer."""
    from rhocore.stm.selection import StmImageScore

    return [StmImageScore]
