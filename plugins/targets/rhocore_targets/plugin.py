"""Entry point of the ``rhocore-targets`` distribution (group ``rhocore``)."""

from __future__ import annotations

from rhocore.plugins import hookimpl


@hookimpl
def rhocore_register_targets() -> list[type]:
    """The ``density``, ``homo``, ``lumo`` and ``orbital`` targets."""
    from rhocore_targets import DensityTarget, HomoTarget, LumoTarget, OrbitalTarget

    return [DensityTarget, HomoTarget, LumoTarget, OrbitalTarget]
