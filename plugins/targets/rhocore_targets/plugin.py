"""Entry point of the ``rhocore-targets`` distribution (group ``rhocore``)."""

from __future__ import annotations

from rhocore.api import hookimpl


@hookimpl
def rhocore_register_targets() -> list[type]:
    """The ``density``, ``homo``, ``lumo``, ``orbital``, ``ldos`` and ``ildos`` targets."""
    from rhocore_targets import (
        DensityTarget,
        HomoTarget,
        IldosTarget,
        LdosTarget,
        LumoTarget,
        OrbitalTarget,
    )

    return [DensityTarget, HomoTarget, LumoTarget, OrbitalTarget, LdosTarget, IldosTarget]
