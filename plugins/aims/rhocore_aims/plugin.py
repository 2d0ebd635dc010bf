"""Entry point of the ``rhocore-aims`` distribution (group ``rhocore``)."""

from __future__ import annotations

from typing import Any

from rhocore.api import hookimpl


@hookimpl
def rhocore_register_backends() -> list[type]:
    """The ``aims`` backend."""
    from rhocore_aims.backend import AimsBackend

    return [AimsBackend]


@hookimpl
def rhocore_register_commands(cli: Any) -> None:
    """``rhocore aims import`` and ``rhocore aims parse``."""
    from rhocore_aims.cli import aims

    cli.add_command(aims)
