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


#: Lattice constant of silicon (angstrom) and the Si-H bond length of the passivation.
SI_LATTICE = 5.431
SI_H_BOND = 1.48
#: Rotation of each bottom SiH2 about z (degrees): the ideal dihydrides of neighbouring
#: atoms point at the same missing Si and would put their H 1.42 angstrom apart; canted
#: by 30 degrees they are 2.1 angstrom apart.
DIHYDRIDE_CANT = 30.0
#: The top layer sits lower than the bulk-terminated plane (angstrom), which keeps the
#: dimer atoms' back bonds near 2.4-2.5 angstrom.
DIMER_DROP = 0.25


def si100_2x1_slab(
    layers: int = 6,
    repeat: tuple[int, int] = (1, 1),
    vacuum: float = 12.0,
    buckling: float = 0.72,
    dimer_bond: float = 2.35,
    alternate: bool = False,
) -> ase.Atoms:
    """A Si(100)-(2x1) slab: buckled top dimers, an H-passivated bottom, vacuum above.

    ``layers`` Si layers (the bottom one carries two H per atom, along the bonds to the
    missing bulk atoms); the (2x1) surface cell (3.84 x 7.68 angstrom) is repeated
    ``repeat`` times along x (along the dimer rows) and y. Each top-layer pair dimerises
    along y with bond ``dimer_bond`` and height difference ``buckling`` (up atom at
    +buckling/2); ``alternate`` flips every other dimer along a row (c(4x2)-like, needs
    repeat[0] even). ``vacuum`` is the empty space between the topmost and the periodic
    image of the bottommost atom (angstrom). Periodic in x and y, not in z.
    """
    from ase.build import diamond100

    bulk = diamond100("Si", (repeat[0], 2 * repeat[1], layers + 1), a=SI_LATTICE, vacuum=0.0)
    z = np.round(bulk.positions[:, 2], 3)
    levels = np.unique(z)
    removed = bulk[z == levels[0]]
    slab = bulk[z != levels[0]]
    _dimerise(slab, levels[-1], buckling, dimer_bond, alternate)
    hydrogens = _passivation(slab, removed, levels[1])
    slab += hydrogens
    slab.positions[:, 2] -= slab.positions[:, 2].min()
    height = slab.positions[:, 2].max()
    slab.set_cell([slab.cell[0], slab.cell[1], [0.0, 0.0, height + vacuum]])
    slab.positions[:, 2] += 0.5 * vacuum
    slab.pbc = (True, True, False)
    slab.info.pop("adsorbate_info", None)  # ase.build's, not meaningful after the changes
    return slab


def _dimerise(slab: ase.Atoms, top_z: float, buckling: float, bond: float, alternate: bool):
    """Pair the top-layer atoms along y into buckled dimers (in place)."""
    top = np.nonzero(np.isclose(slab.positions[:, 2], top_z, atol=1e-3))[0]
    cell_y = slab.cell[1, 1]
    spacing = SI_LATTICE / np.sqrt(2.0)
    horizontal = np.sqrt(bond**2 - buckling**2)
    for index in top:
        x, y = slab.positions[index, :2]
        cell_index = int(np.floor(y / (2 * spacing) + 1e-6))
        lower = np.isclose(y - 2 * spacing * cell_index, 0.0, atol=1e-3)
        row_position = int(np.round(x / spacing))
        up = lower != (alternate and row_position % 2 == 1)
        slab.positions[index, 1] = (
            2 * spacing * cell_index + 0.5 * spacing + (-0.5 if lower else 0.5) * horizontal
        ) % cell_y
        slab.positions[index, 2] += (0.5 * buckling if up else -0.5 * buckling) - DIMER_DROP


def _passivation(slab: ase.Atoms, removed: ase.Atoms, bottom_z: float) -> ase.Atoms:
    """Two H per bottom Si atom, along its bonds to the removed bulk atoms below.

    Periodic images count: in a one-cell-wide slab both missing partners of an atom can
    be images of one removed atom.
    """
    cell = slab.cell.array
    shifts = [i * cell[0] + j * cell[1] for i in (-1, 0, 1) for j in (-1, 0, 1)]
    bottom = np.nonzero(np.isclose(slab.positions[:, 2], bottom_z, atol=1e-3))[0]
    turn = Rotation.from_euler("z", DIHYDRIDE_CANT, degrees=True)
    positions = []
    for index in bottom:
        origin = slab.positions[index]
        for partner in removed.positions:
            for shift in shifts:
                delta = partner + shift - origin
                if np.linalg.norm(delta) < 2.5:
                    bond = turn.apply(delta)
                    positions.append(origin + SI_H_BOND * bond / np.linalg.norm(bond))
    return ase.Atoms(f"H{len(positions)}", positions=positions)


def si100_variants(
    count: int,
    seed: int = 0,
    layers: int = 6,
    repeats: tuple[tuple[int, int], ...] = ((1, 1),),
    buckling_range: tuple[float, float] = (0.5, 0.9),
    rattle: float = 0.05,
    vacuum: float = 12.0,
) -> list[ase.Atoms]:
    """Distorted Si(100)-(2x1) slabs: buckling amplitude and direction, thermal noise, sizes.

    Each slab takes a random repeat from ``repeats``, a buckling drawn uniformly from
    ``buckling_range`` (angstrom) with a random sign (which dimer atom is up), for
    repeats with an even x a random c(4x2)-like alternation, and Gaussian displacements
    of every atom with standard deviation ``rattle`` (angstrom; about 0.05 at room
    temperature).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        repeat = repeats[rng.integers(len(repeats))]
        buckling = rng.uniform(*buckling_range) * rng.choice([-1.0, 1.0])
        alternate = repeat[0] % 2 == 0 and bool(rng.integers(2))
        slab = si100_2x1_slab(layers, repeat, vacuum, buckling, alternate=alternate)
        slab.positions += rattle * rng.standard_normal(slab.positions.shape)
        frames.append(slab)
    return frames
