"""The density of one orbital chosen by its index relative to the HOMO."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from rhocore.api import OrbitalData, PluginOptions, Target
from rhocore_targets._occupations import OCCUPATION_THRESHOLD_HELP, channels, occupied_mask


class OrbitalOptions(PluginOptions):
    """Options of the ``orbital`` target."""

    index: int = Field(
        0,
        description=(
            "Orbital relative to the HOMO of the channel: 0 = HOMO, -1 = HOMO-1, 1 = the "
            "next orbital up (the LUMO for integer occupations)."
        ),
    )
    spin: int = Field(0, ge=0, le=1, description="Spin channel: 0 (alpha) or 1 (beta).")
    occupation_threshold: float = Field(0.01, ge=0.0, lt=0.5, description=OCCUPATION_THRESHOLD_HELP)


class OrbitalTarget(Target):
    """``W = k_weight`` on state HOMO + ``index`` of one spin channel, zero elsewhere.

    States are counted in the order the backend delivers them (ascending energy at each
    k-point). The HOMO is the highest state occupied at some k-point; with several
    k-points the whole band is taken, each k weighted by its k-weight. No degeneracy
    averaging: the ``homo`` and ``lumo`` targets do that.
    """

    name = "orbital"
    Options = OrbitalOptions

    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """Unit (k-weighted) weight on the selected orbital."""
        (spin,) = channels(self.options.spin, orbitals)
        n_state = orbitals.energies.shape[2]
        occupied = np.nonzero(occupied_mask(orbitals, self.options.occupation_threshold)[spin])
        if occupied[1].size == 0:
            raise ValueError(
                f"spin channel {spin} has no occupied orbital, so an index relative to "
                "its HOMO is undefined"
            )
        homo = int(occupied[1].max())
        state = homo + self.options.index
        if not 0 <= state < n_state:
            raise ValueError(
                f"orbital index {self.options.index} (relative to the HOMO) is state {state} "
                f"of spin channel {spin}, which has {n_state} orbitals with the HOMO at "
                f"state {homo}: valid indices are {-homo} to {n_state - 1 - homo}"
            )
        weights = np.zeros_like(orbitals.energies)
        weights[spin, :, state] = orbitals.k_weights
        return weights
