"""The ``kernel`` architecture: equivariant kernel regression on lambda-SOAP features."""

from rhocore.models.kernel.model import KernelModel, KernelOptions

__all__ = ["KernelModel", "KernelOptions"]
