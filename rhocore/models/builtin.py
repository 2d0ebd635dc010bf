"""The core's own plugin: the built-in model architectures."""

from __future__ import annotations

from rhocore.plugins.hookspecs import hookimpl


@hookimpl
def rhocore_register_models() -> list[type]:
    """The ``linear``, ``nonlinear`` and ``kernel`` equivariant models."""
    from rhocore.models.kernel import KernelModel
    from rhocore.models.linear import LinearModel
    from rhocore.models.nonlinear import NonlinearModel

    return [LinearModel, NonlinearModel, KernelModel]
