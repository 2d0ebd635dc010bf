"""Principal components of a spherical expansion's channels, fitted on training structures.

With ``DescriptorOptions.compression`` = K, the (neighbour type x radial) channels of
every (centre type, l) block of the expansion are replaced by their projections on the K
eigenvectors of largest eigenvalue of the uncentred channel covariance
sum_{atoms, m} x_m x_m^T of that block. The map mixes channels, never the m components, so
the projected blocks rotate like the expansion and the Clebsch-Gordan product of them is
equivariant; the product then has K^2 instead of (types x radial)^2 pairs per (l_1, l_2).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rhocore.descriptors.lambda_soap import Expanded

#: Most atoms per centre type whose expansion enters the covariance: enough to fix the
#: leading components of a few dozen channels, few enough that the fit costs seconds.
FIT_ATOMS = 2000


def principal_axes(covariance: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` eigenvectors (channels, count) of largest eigenvalue of a symmetric
    ``covariance``, in descending order, each with its largest-magnitude entry positive
    (so the fit does not depend on the eigensolver's signs)."""
    values, vectors = torch.linalg.eigh(covariance)
    axes = vectors[:, torch.argsort(values, descending=True)[:count]]
    largest = axes.abs().argmax(dim=0, keepdim=True)
    return axes * torch.sign(axes.gather(0, largest))


def fit_projection(
    batches: Iterable[Expanded],
    species: list[int],
    max_angular: int,
    channels: int,
    count: int,
    atoms: int = FIT_ATOMS,
) -> torch.Tensor:
    """Projection (species, l, channels, count) on the principal channels of the expansion.

    ``batches`` are expansions (:meth:`LambdaSoapModule.expand`) of the training
    structures in a seeded random order; the first ``atoms`` atoms of every centre type
    enter the covariance, and batches are read only until every type has them. A type
    without atoms gets the unit axes.
    """
    covariance = torch.zeros(len(species), max_angular + 1, channels, channels, dtype=torch.float64)
    seen = [0] * len(species)
    for expanded in batches:
        for index, z in enumerate(species):
            if z not in expanded or seen[index] >= atoms:
                continue
            values, _ = expanded[z]
            take = min(atoms - seen[index], values[0].shape[0])
            for l, block in enumerate(values):
                rows = block[:take].reshape(-1, channels)
                covariance[index, l] += rows.T @ rows
            seen[index] += take
        if min(seen) >= atoms:
            break
    projection = torch.zeros(len(species), max_angular + 1, channels, count, dtype=torch.float64)
    for index in range(len(species)):
        for l in range(max_angular + 1):
            if seen[index] == 0:
                projection[index, l] = torch.eye(channels, count, dtype=torch.float64)
            else:
                projection[index, l] = principal_axes(covariance[index, l], count)
    return projection
