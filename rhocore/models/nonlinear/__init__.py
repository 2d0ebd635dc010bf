"""The ``nonlinear`` architecture: equivariant linear maps gated by an invariant MLP."""

from rhocore.models.nonlinear.model import NonlinearModel, NonlinearOptions

__all__ = ["NonlinearModel", "NonlinearOptions"]
