"""Model architectures: one folder per architecture, all subclasses of :class:`Model`."""

from rhocore.models.base import Model

__all__ = ["Model"]
