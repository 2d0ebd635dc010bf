"""Small structure generators used by demos, examples and tests."""

from __future__ import annotations

import ase
import numpy as np
from scipy.spatial.transform import Rotation


def distorted_waters(
    count: int,
    seed: int = 0,
    bond_sigma: float = 0.04,
    angle_sigma: float = 6.0,
    rotate: bool = True,
) -> list[ase.Atoms]:
    """Water molecules with random O-H lengths (angstrom) and H-O-H angles (degrees).

    Distortions are Gaussian around the gas-phase geometry (0.9572 angstrom, 104.52
    degrees); each molecule is randomly oriented so that models must be equivariant.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        r1, r2 = 0.9572 + bond_sigma * rng.standard_normal(2)
        half = np.radians(104.52 + angle_sigma * rng.standard_normal()) / 2
        positions = np.array(
            [
                [0.0, 0.0, 0.0],
                [r1 * np.sin(half), 0.0, r1 * np.cos(half)],
                [-r2 * np.sin(half), 0.0, r2 * np.cos(half)],
            ]
        )
        positions -= positions.mean(axis=0)
        if rotate:
            positions = positions @ Rotation.random(random_state=rng).as_matrix().T
        frames.append(ase.Atoms("OH2", positions=positions))
    return frames
