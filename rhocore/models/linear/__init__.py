"""The ``linear`` architecture: one equivariant linear map per coefficient block."""

from rhocore.models.linear.model import LinearModel, LinearOptions

__all__ = ["LinearModel", "LinearOptions"]
