"""Example rhocore plugin: a complete QC backend in about a hundred lines of NumPy."""

from rhocore_toy.backend import ToyBackend

__all__ = ["ToyBackend"]
