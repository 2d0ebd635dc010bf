"""HOMO and LUMO densities: unit weight on the frontier orbital (or degenerate shell).

For molecules (one k-point) the HOMO is the occupied orbital of highest energy over the
selected spin channels, the LUMO the empty orbital of lowest energy. Orbitals within
``degeneracy_tolerance`` of it form a shell, and each of its g members gets weight 1/g:
the density of a degenerate shell does not depend on how the SCF happened to mix its
members, which makes it a learnable field. The field integrates to one.

With several k-points a frontier orbital is a band: band n of channel s is occupied if it
is occupied at some k, and its energy is the top (HOMO) or bottom (LUMO) of that part of
the band. The selected band gets ``W(s, k, n) = k_weight(k) / g`` at every k. For metals
HOMO and LUMO are ill-defined; use an energy-window target there.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from rhocore.api import OrbitalData, PluginOptions, Target
from rhocore_targets._occupations import (
    OCCUPATION_THRESHOLD_HELP,
    SpinChoice,
    channels,
    empty_mask,
    occupied_mask,
)


class FrontierOptions(PluginOptions):
    """Options of the ``homo`` and ``lumo`` targets."""

    spin: SpinChoice = Field(
        "both",
        description=(
            "Spin channel searched for the frontier orbital: 0 (alpha), 1 (beta) or 'both' "
            "(the frontier orbital over both channels). Spin-restricted data have one "
            "channel, 0, which 'both' selects."
        ),
    )
    degeneracy_tolerance: float = Field(
        1e-3,
        ge=0.0,
        description=(
            "Orbitals whose energy is within this many eV of the frontier orbital form a "
            "degenerate shell and share the unit weight equally (eV)."
        ),
    )
    occupation_threshold: float = Field(0.01, ge=0.0, lt=0.5, description=OCCUPATION_THRESHOLD_HELP)


def frontier_weights(
    orbitals: OrbitalData, options: FrontierOptions, *, occupied: bool
) -> np.ndarray:
    """W of the HOMO shell (``occupied=True``) or LUMO shell (``occupied=False``)."""
    selected_channels = channels(options.spin, orbitals)
    if occupied:
        mask = occupied_mask(orbitals, options.occupation_threshold)
        band_energy = np.where(mask, orbitals.energies, -np.inf).max(axis=1)
    else:
        mask = empty_mask(orbitals, options.occupation_threshold)
        band_energy = np.where(mask, orbitals.energies, np.inf).min(axis=1)
    candidates = np.zeros(band_energy.shape, dtype=bool)
    candidates[selected_channels] = mask.any(axis=1)[selected_channels]
    if not candidates.any():
        kind = "occupied" if occupied else "empty"
        raise ValueError(
            f"spin channel(s) {selected_channels} have no {kind} orbital among "
            f"{orbitals.energies.shape[2]} states, so the "
            f"{'HOMO' if occupied else 'LUMO'} does not exist"
            + ("" if occupied else "; compute more virtual orbitals in the backend")
        )
    frontier = band_energy[candidates].max() if occupied else band_energy[candidates].min()
    shell = candidates & (np.abs(band_energy - frontier) <= options.degeneracy_tolerance)
    weights = np.zeros_like(orbitals.energies)
    spins, bands = np.nonzero(shell)
    weights[spins, :, bands] = orbitals.k_weights[None, :] / len(bands)
    return weights


class HomoTarget(Target):
    """Density of the highest occupied orbital (shell), normalised to one electron."""

    name = "homo"
    Options = FrontierOptions

    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """Unit weight, shared by a degenerate shell, on the HOMO; k-weighted."""
        return frontier_weights(orbitals, self.options, occupied=True)


class LumoTarget(Target):
    """Density of the lowest unoccupied orbital (shell), normalised to one electron."""

    name = "lumo"
    Options = FrontierOptions

    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """Unit weight, shared by a degenerate shell, on the LUMO; k-weighted."""
        return frontier_weights(orbitals, self.options, occupied=False)
