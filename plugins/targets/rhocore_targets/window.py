"""LDOS and ILDOS: orbitals weighted by a Gaussian-broadened density of states.

Each orbital level eps is broadened into a normalised Gaussian of width ``sigma`` (eV).

``ldos``: the local density of states at energy E,
``W(s, k, n) = g * k_weight(k) * exp(-(E - eps)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))``,
in states per eV (the field is in states per eV per bohr^3).

``ildos``: the local density of states integrated over the window [E_lo, E_hi],
``W(s, k, n) = g * k_weight(k) * [erf((E_hi - eps) / (sqrt(2) sigma))
- erf((E_lo - eps) / (sqrt(2) sigma))] / 2``, a number of states (dimensionless). It is
the ``ldos`` integrated over E from E_lo to E_hi.

Spin factor g: the field counts electron states, both spins together. A spin-restricted
orbital (one channel, ``n_spin = 1``) holds two states, so g = 2; each spin orbital of
spin-unrestricted data holds one, so g = 1. g is the occupation of a full orbital, so
the ILDOS is the number of states (electrons, if they are filled) in the window per cell,
as in simulated STM images, and (with ``spin`` 'both') does not depend on whether a
closed-shell system was run restricted or unrestricted. For an insulator, a window holding
every occupied level and no empty one, with edges many sigma away from all levels, gives
the ``density`` target's weights: the field integrates to the electron count. The
``homo``/``lumo``/``orbital`` targets are normalised to one instead, so an ILDOS window
around a single restricted orbital gives twice their weights.

Energies E, E_lo and E_hi are given in eV relative to a ``reference``: the Fermi level,
the HOMO or LUMO (over all spin channels and k-points), the vacuum level of a slab, or
zero (``absolute``). The ``ildos`` window can also be given as a ``bias`` (V) as in STM,
with the sign convention of ASE and CP2K: the window runs from the Fermi level to
E_F + bias, so a negative bias images filled states [E_F + bias, E_F] and a positive bias
empty states [E_F, E_F + bias].
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from pydantic import Field, model_validator
from scipy.special import erf

from rhocore.api import EnergyReference, EnergyWindow, OrbitalData, PluginOptions, Target
from rhocore_targets._occupations import (
    OCCUPATION_THRESHOLD_HELP,
    SpinChoice,
    channels,
    empty_mask,
    full_occupation,
    occupied_mask,
)


class BroadenedOptions(PluginOptions):
    """Options shared by the ``ldos`` and ``ildos`` targets."""

    reference: EnergyReference = Field(
        "fermi",
        description=(
            "Zero of the energies given in the options: 'fermi' (the Fermi level the "
            "backend reports), 'homo' / 'lumo' (highest occupied / lowest empty orbital "
            "energy over all spin channels and k-points), 'vacuum' (the vacuum level of a "
            "slab, for backends that compute it) or 'absolute' (the backend's own zero)."
        ),
    )
    sigma: float = Field(
        0.1,
        gt=0.0,
        allow_inf_nan=False,
        description="Standard deviation of the Gaussian that broadens each orbital level (eV).",
    )
    spin: SpinChoice = Field(
        "both",
        description=(
            "Spin channels counted: 0 (alpha), 1 (beta) or 'both'. Spin-restricted data "
            "have one channel, 0, holding both spins, which 0 and 'both' select alike."
        ),
    )
    occupation_threshold: float = Field(
        0.01,
        ge=0.0,
        lt=0.5,
        description=OCCUPATION_THRESHOLD_HELP + " Used by the 'homo' and 'lumo' references.",
    )


class LdosOptions(BroadenedOptions):
    """Options of the ``ldos`` target."""

    energy: float = Field(
        0.0,
        allow_inf_nan=False,
        description="Energy at which the LDOS is taken, relative to the reference (eV).",
    )


class IldosOptions(BroadenedOptions):
    """Options of the ``ildos`` target: a window as ``emin``/``emax`` or as ``bias``."""

    emin: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Lower edge of the energy window, relative to the reference (eV).",
    )
    emax: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Upper edge of the energy window, relative to the reference (eV).",
    )
    bias: float | None = Field(
        None,
        allow_inf_nan=False,
        description=(
            "Sample bias (V) instead of emin/emax: the window from the Fermi level to "
            "E_F + bias, i.e. filled states [E_F + bias, E_F] for a negative bias and empty "
            "states [E_F, E_F + bias] for a positive one. Needs reference 'fermi'."
        ),
    )

    @model_validator(mode="after")
    def _one_window(self) -> Self:
        """Exactly one way of giving a non-empty window, and bias only from the Fermi level."""
        if self.bias is None:
            if self.emin is None or self.emax is None:
                raise ValueError(
                    "the ildos window needs both 'emin' and 'emax' (eV relative to the "
                    "reference) or a 'bias' (V)"
                )
            if self.emin >= self.emax:
                raise ValueError(f"'emin' ({self.emin} eV) must lie below 'emax' ({self.emax} eV)")
            return self
        if self.emin is not None or self.emax is not None:
            raise ValueError("give the ildos window as 'bias' or as 'emin'/'emax', not both")
        if self.bias == 0.0:
            raise ValueError("'bias' 0 V gives an empty window; use a non-zero bias")
        if self.reference != "fermi":
            raise ValueError(
                f"'bias' is measured from the Fermi level, so it needs reference 'fermi', "
                f"not '{self.reference}'; use 'emin'/'emax' for a window relative to "
                f"'{self.reference}'"
            )
        return self

    def window(self) -> tuple[float, float]:
        """(lower, upper) window edges relative to the reference (eV)."""
        if self.bias is None:
            return self.emin, self.emax
        return min(0.0, self.bias), max(0.0, self.bias)


def reference_energy(orbitals: OrbitalData, options: BroadenedOptions) -> float:
    """The absolute energy (eV) of ``options.reference``, or a ValueError saying what lacks."""
    reference = options.reference
    if reference == "absolute":
        return 0.0
    if reference == "fermi":
        if orbitals.fermi_level is None:
            raise ValueError(
                "reference 'fermi' needs the Fermi level, but the backend did not provide "
                "one; use reference 'homo', 'lumo' or 'absolute'"
            )
        return float(orbitals.fermi_level)
    if reference == "vacuum":
        if orbitals.vacuum_level is None:
            raise ValueError(
                "reference 'vacuum' needs the vacuum level, but the backend did not provide "
                "a vacuum level; use reference 'fermi', 'homo', 'lumo' or 'absolute'"
            )
        return float(orbitals.vacuum_level)
    return frontier_energy(orbitals, options.occupation_threshold, occupied=reference == "homo")


def frontier_energy(orbitals: OrbitalData, threshold: float, *, occupied: bool) -> float:
    """Highest occupied (``occupied=True``) or lowest empty energy over all spins and k."""
    if occupied:
        energies = orbitals.energies[occupied_mask(orbitals, threshold)]
    else:
        energies = orbitals.energies[empty_mask(orbitals, threshold)]
    if energies.size == 0:
        kind, name = ("occupied", "homo") if occupied else ("empty", "lumo")
        raise ValueError(
            f"reference '{name}' needs an {kind} orbital, but none of the "
            f"{orbitals.energies.shape[2]} states is {kind}"
            + ("" if occupied else "; compute more virtual orbitals in the backend")
        )
    return float(energies.max() if occupied else energies.min())


def state_counts(orbitals: OrbitalData, spin: int | str) -> np.ndarray:
    """(n_spin, n_k, 1): states per orbital times k-weight on the selected channels, else 0."""
    counts = np.zeros((orbitals.n_spin, orbitals.energies.shape[1], 1))
    counts[channels(spin, orbitals), :, 0] = full_occupation(orbitals) * orbitals.k_weights
    return counts


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian of standard deviation ``sigma`` (eV) at ``x`` (eV), in 1/eV."""
    return np.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))


def window_fraction(energies: np.ndarray, lower: float, upper: float, sigma: float) -> np.ndarray:
    """Part of each Gaussian-broadened level that lies between ``lower`` and ``upper`` (eV)."""
    scale = math.sqrt(2.0) * sigma
    return 0.5 * (erf((upper - energies) / scale) - erf((lower - energies) / scale))


class LdosTarget(Target):
    """Local density of states at one energy, both spins counted (see the module docs)."""

    name = "ldos"
    Options = LdosOptions

    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """States per orbital times k-weight times the broadened level at the energy (1/eV)."""
        energy = reference_energy(orbitals, self.options) + self.options.energy
        broadened = gaussian(energy - orbitals.energies, self.options.sigma)
        return state_counts(orbitals, self.options.spin) * broadened


class IldosTarget(Target):
    """Local density of states integrated over an energy window: states in it per cell."""

    name = "ildos"
    Options = IldosOptions

    @property
    def energy_window(self) -> EnergyWindow:
        """The window of the options: edges in eV from the reference (a bias: the Fermi level)."""
        lower, upper = self.options.window()
        return EnergyWindow(lower, upper, self.options.reference)

    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """States per orbital times k-weight times the part of its level in the window."""
        shift = reference_energy(orbitals, self.options)
        lower, upper = self.options.window()
        inside = window_fraction(
            orbitals.energies, shift + lower, shift + upper, self.options.sigma
        )
        return state_counts(orbitals, self.options.spin) * inside
