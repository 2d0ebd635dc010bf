"""The total electron density: every orbital weighted by its occupation."""

from __future__ import annotations

import numpy as np

from rhocore.api import OrbitalData, PluginOptions, Target


class DensityOptions(PluginOptions):
    """The total density has no options."""


class DensityTarget(Target):
    """``W(s, k, n) = occupation(s, k, n) * k_weight(k)``; integrates to the electron count.

    Fractional occupations (smearing, partially filled shells) enter as they are, so the
    field is the density the SCF itself used.
    """

    name = "density"
    Options = DensityOptions
    is_total_density = True

    def weights(self, orbitals: OrbitalData) -> np.ndarray:
        """Occupations times k-point weights, shape (n_spin, n_k, n_state)."""
        return orbitals.occupations * orbitals.k_weights[None, :, None]
