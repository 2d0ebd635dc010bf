"""The Si(100)-(2x1) slab builder: bonding, dimers, passivation, vacuum, variants."""

from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from rhocore.data.generators import si100_2x1_slab, si100_variants


def coordination(atoms):
    """Bonded neighbours: Si-Si up to 2.6 angstrom, Si-H and H-H up to 1.6."""
    cutoffs = {("Si", "Si"): 2.6, ("Si", "H"): 1.6, ("H", "Si"): 1.6, ("H", "H"): 1.6}
    first = neighbor_list("i", atoms, cutoffs)
    return np.bincount(first, minlength=len(atoms))


@pytest.mark.parametrize("repeat", [(1, 1), (2, 1)])
def test_every_si_is_fourfold_bonded_except_the_dimer_atoms(repeat):
    slab = si100_2x1_slab(layers=5, repeat=repeat)
    symbols = np.array(slab.get_chemical_symbols())
    counts = coordination(slab)
    z = slab.positions[:, 2]
    top = z > np.sort(z[symbols == "Si"])[-2 * repeat[0] * repeat[1] - 1] + 0.1
    assert np.all(counts[symbols == "H"] == 1)
    assert np.all(counts[(symbols == "Si") & ~top] == 4)
    assert np.all(counts[top] == 3)  # two back bonds and the dimer bond
    assert (symbols == "H").sum() == 4 * repeat[0] * repeat[1]  # 2 H on 2 bottom Si per cell
    distances = slab.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 1.45  # canted dihydrides: no H-H contact


def test_dimers_are_buckled_and_the_vacuum_is_there():
    slab = si100_2x1_slab(layers=6, buckling=0.72, vacuum=12.0)
    si = slab.positions[np.array(slab.get_chemical_symbols()) == "Si"]
    up, down = np.sort(si[:, 2])[-1], np.sort(si[:, 2])[-2]
    assert up - down == pytest.approx(0.72, abs=1e-6)
    assert np.linalg.norm(si[np.argsort(si[:, 2])[-1]] - si[np.argsort(si[:, 2])[-2]]) == (
        pytest.approx(2.35, abs=1e-6)
    )
    height = np.ptp(slab.positions[:, 2])
    assert slab.cell[2, 2] - height == pytest.approx(12.0)
    assert tuple(slab.pbc) == (True, True, False)


def test_variants_differ_in_buckling_size_and_noise():
    frames = si100_variants(6, seed=1, layers=4, repeats=((1, 1), (2, 1)), rattle=0.05)
    assert len({len(atoms) for atoms in frames}) == 2
    tops = [atoms.positions[:, 2].max() for atoms in frames]
    assert np.std(tops) > 0.01
    again = si100_variants(6, seed=1, layers=4, repeats=((1, 1), (2, 1)), rattle=0.05)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(frames, again, strict=True))
