"""The Target interface: a field of electronic structure is a weight function W(a).

Every field rhocore learns is ``rho(r) = sum_a W(a) |psi_a(r)|^2`` over Kohn-Sham
orbitals a. A target turns orbital data (energies in eV, occupations, k-weights) into W;
it never sees a backend object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from rhocore.qc.backend import OrbitalData, PluginOptions


class Target(ABC):
    """A field as orbital weights. Subclasses set ``name`` and ``Options``.

    ``is_total_density`` marks targets whose field integrates to the electron count and
    may be fitted with an exact charge constraint.
    """

    name: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = PluginOptions
    is_total_density: ClassVar[bool] = False

    def __init__(self, options: PluginOptions | dict | None = None):
        if isinstance(options, PluginOptions):
            self.options = options
        else:
            self.options = self.Options.model_validate(options or {})

    @abstractmethod
    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """W(a) with the shape (n_spin, n_k, n_state) of ``orbitals.energies``.

        W includes the k-point weights, so that ``W.sum()`` is the integral of the field.
        """

    def expected_integral(self, orbitals: OrbitalData) -> float:
        """Integral of the field over all space: the sum of the weights."""
        return float(self.weights(orbitals).sum())
