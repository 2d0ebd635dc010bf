"""Which orbitals count as occupied or empty, and which spin channels a target reads."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from rhocore.api import OrbitalData

#: A spin channel (0 = alpha, 1 = beta) or ``"both"``.
SpinChoice = Literal["both"] | Annotated[int, Field(ge=0, le=1)]

OCCUPATION_THRESHOLD_HELP = (
    "Fraction of a full occupation (2 electrons spin-restricted, 1 unrestricted) above "
    "which an orbital counts as occupied; an orbital counts as empty below "
    "1 - threshold. A partially filled orbital is both, so it is the HOMO and the LUMO. "
    "Dimensionless, in [0, 0.5)."
)


def full_occupation(orbitals: OrbitalData) -> float:
    """Electrons one orbital holds when full: 2 spin-restricted, 1 per channel otherwise."""
    return 2.0 if orbitals.n_spin == 1 else 1.0


def occupied_mask(orbitals: OrbitalData, threshold: float) -> np.ndarray:
    """(n_spin, n_k, n_state) mask of orbitals holding more than ``threshold`` of a full one."""
    return orbitals.occupations / full_occupation(orbitals) > threshold


def empty_mask(orbitals: OrbitalData, threshold: float) -> np.ndarray:
    """(n_spin, n_k, n_state) mask of orbitals with room for more than ``threshold``."""
    return orbitals.occupations / full_occupation(orbitals) < 1.0 - threshold


def channels(spin: int | str, orbitals: OrbitalData) -> list[int]:
    """Spin channels selected by ``spin`` (``"both"`` or 0/1), checked against the data."""
    if spin == "both":
        return list(range(orbitals.n_spin))
    if spin >= orbitals.n_spin:
        raise ValueError(
            f"spin channel {spin} was requested, but the orbital data are spin-restricted "
            "(one channel that holds both spins); use spin 0 or 'both'"
        )
    return [int(spin)]
