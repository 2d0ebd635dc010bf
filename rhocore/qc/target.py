"""The Target interface: a field of electronic structure is a weight function W(a).

Every field rhocore learns is ``rho(r) = sum_a W(a) |psi_a(r)|^2`` over Kohn-Sham
orbitals a. A target turns orbital data (energies in eV, occupations, k-weights) into W;
it never sees a backend object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from rhocore.plugins.options import PluginOptions
from rhocore.qc.backend import OrbitalData

#: Zero of a target's energies: the Fermi level, the HOMO or LUMO energy, a slab's vacuum
#: level, or the backend's own zero.
EnergyReference = Literal["fermi", "homo", "lumo", "vacuum", "absolute"]


@dataclass(frozen=True)
class EnergyWindow:
    """The energy window whose states a field counts: [lower, upper] eV from ``reference``."""

    lower: float
    upper: float
    reference: EnergyReference


class Target(ABC):
    """A field as orbital weights. Subclasses set ``name`` and ``Options``.

    ``is_total_density`` marks targets whose field integrates to the electron count and
    may be fitted with an exact charge constraint. Workflows read what they need of a
    field from these typed attributes, never from a target's name or option names.
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

    @property
    def energy_window(self) -> EnergyWindow | None:
        """The window of an integrated local density of states (the field of an STM image);
        None for fields that are not the states of one energy window."""
        return None

    def expected_integral(self, orbitals: OrbitalData) -> float:
        """Integral of the field over all space: the sum of the weights."""
        return float(self.weights(orbitals).sum())
