"""Flat canonical coefficient vectors <-> metatensor TensorMaps, and batching.

Datasets and the loss hold one flat vector per structure (order atom -> l -> n -> m);
descriptors and models speak TensorMaps with keys (o3_lambda, o3_sigma = 1, center_type),
samples (system, atom), components (o3_mu) and properties (n). ``system`` is the index of
the structure in the list the TensorMap was built from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from metatensor.torch import Labels, TensorBlock, TensorMap

from rhocore.qc.basis import BasisLayout

KEY_NAMES = ["o3_lambda", "o3_sigma", "center_type"]
SAMPLE_NAMES = ["system", "atom"]


def coefficients_to_tensormap(
    vectors: Sequence[np.ndarray], numbers: Sequence[Sequence[int]], layout: BasisLayout
) -> TensorMap:
    """Float64 TensorMap of the coefficient vectors of several structures.

    Every (l, Z) key of ``layout`` is present; a key whose element is in none of the
    structures has a block with zero samples.
    """
    if len(vectors) != len(numbers):
        raise ValueError(f"{len(vectors)} coefficient vectors but {len(numbers)} structures")
    values: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in layout.keys()}
    samples: dict[tuple[int, int], list[np.ndarray]] = {key: [] for key in layout.keys()}
    for system, (vector, atom_numbers) in enumerate(zip(vectors, numbers, strict=True)):
        atom_numbers = np.asarray(atom_numbers, dtype=int)
        for (l, z), block in layout.split(np.asarray(vector, dtype=float), atom_numbers).items():
            atoms = np.nonzero(atom_numbers == z)[0]
            values[(l, z)].append(block)
            samples[(l, z)].append(np.stack([np.full_like(atoms, system), atoms], axis=1))
    blocks = []
    for l, z in layout.keys():
        count = layout.nmax[z][l]
        block_values = (
            np.concatenate(values[(l, z)]) if values[(l, z)] else np.zeros((0, 2 * l + 1, count))
        )
        block_samples = (
            np.concatenate(samples[(l, z)]) if samples[(l, z)] else np.zeros((0, 2), dtype=int)
        )
        blocks.append(
            TensorBlock(
                values=torch.tensor(block_values, dtype=torch.float64),
                samples=Labels(SAMPLE_NAMES, torch.tensor(block_samples, dtype=torch.int32)),
                components=[mu_labels(l)],
                properties=n_labels(count),
            )
        )
    return TensorMap(key_labels(layout.keys()), blocks)


def tensormap_to_coefficients(
    tensor: TensorMap, numbers: Sequence[Sequence[int]], layout: BasisLayout
) -> list[torch.Tensor]:
    """Flat canonical vectors, one per structure, differentiable w.r.t. the block values.

    ``numbers[i]`` are the atomic numbers of system ``i``. Every coefficient of every
    structure must be given by exactly one block entry.
    """
    sizes = [layout.size(atom_numbers) for atom_numbers in numbers]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    # start of every atom's functions in the concatenated vectors, and of every system's
    # atoms in that list
    atom_starts = np.concatenate(
        [layout.atom_offsets(z)[:-1] + start for z, start in zip(numbers, starts, strict=False)]
        + [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    first_atom = np.concatenate([[0], np.cumsum([len(z) for z in numbers])]).astype(np.int64)
    l_starts = {
        z: np.concatenate([[0], np.cumsum([(2 * l + 1) * n for l, n in enumerate(counts)])])
        for z, counts in layout.nmax.items()
    }
    indices, values = [], []
    for key, block in tensor.items():
        l, z = int(key["o3_lambda"]), int(key["center_type"])
        if block.values.shape[0] == 0:
            continue
        sample_values = block.samples.values.cpu().numpy()
        _check_samples(sample_values, numbers, z)
        first = atom_starts[first_atom[sample_values[:, 0]] + sample_values[:, 1]] + l_starts[z][l]
        n_count, width = block.values.shape[2], 2 * l + 1
        # flat position of entry (sample, mu, n) is first + n * (2l+1) + mu
        offsets = np.arange(width)[:, None] + width * np.arange(n_count)[None, :]
        indices.append(torch.from_numpy((first[:, None, None] + offsets[None]).reshape(-1)))
        values.append(block.values.reshape(-1))
    total = int(starts[-1])
    index = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.int64)
    if index.numel() != total or torch.unique(index).numel() != total:
        raise ValueError(
            f"the TensorMap holds {index.numel()} coefficients for structures with "
            f"{total} RI basis functions; it does not match the basis layout and atoms"
        )
    dtype = values[0].dtype if values else torch.float64
    flat = torch.zeros(total, dtype=dtype).index_copy(0, index, torch.cat(values))
    return list(torch.split(flat, sizes))


def _check_samples(samples: np.ndarray, numbers: Sequence[Sequence[int]], z: int) -> None:
    """Every (system, atom) sample must be an atom of element ``z`` of ``numbers``."""
    n_atoms = np.array([len(atom_numbers) for atom_numbers in numbers] + [0])
    systems = np.minimum(samples[:, 0], len(numbers))
    valid = (samples[:, 0] < len(numbers)) & (samples[:, 1] < n_atoms[systems])
    if valid.all():
        first_atom = np.concatenate([[0], np.cumsum(n_atoms[:-1])]).astype(np.int64)
        all_numbers = np.concatenate([np.asarray(z_, dtype=int) for z_ in numbers])
        valid = all_numbers[first_atom[samples[:, 0]] + samples[:, 1]] == z
    if not valid.all():
        system, atom = samples[np.argmin(valid)]
        raise ValueError(
            f"the TensorMap has coefficients of Z={z} for structure {system} atom {atom}, "
            f"but structure {system} has no atom {atom} of Z={z}"
        )


def split_structures(tensor: TensorMap, n_structures: int) -> list[TensorMap]:
    """One TensorMap per system (each renumbered to system 0), keeping every key."""
    pieces: list[list[TensorBlock]] = [[] for _ in range(n_structures)]
    for block in tensor.blocks():
        system = block.samples.column("system")
        for index in range(n_structures):
            rows = torch.nonzero(system == index).reshape(-1)
            sample_values = block.samples.values[rows].clone()
            sample_values[:, 0] = 0
            pieces[index].append(
                TensorBlock(
                    values=block.values[rows],
                    samples=Labels(block.samples.names, sample_values),
                    components=block.components,
                    properties=block.properties,
                )
            )
    return [TensorMap(tensor.keys, blocks) for blocks in pieces]


def stack_structures(tensors: Sequence[TensorMap]) -> TensorMap:
    """Join single-structure TensorMaps (system 0 each) into one; system = list index."""
    keys = tensors[0].keys
    blocks = []
    for position in range(len(keys)):
        parts = [tensor.block(position) for tensor in tensors]
        samples = []
        for system, part in enumerate(parts):
            sample_values = part.samples.values.clone()
            sample_values[:, 0] = system
            samples.append(sample_values)
        blocks.append(
            TensorBlock(
                values=torch.cat([part.values for part in parts]),
                samples=Labels(parts[0].samples.names, torch.cat(samples)),
                components=parts[0].components,
                properties=parts[0].properties,
            )
        )
    return TensorMap(keys, blocks)


def join_samples(tensors: list[TensorMap]) -> TensorMap:
    """One TensorMap with the samples of all ``tensors`` (same keys in the same order).

    For the outputs of the pieces of :meth:`rhocore.descriptors.features.LambdaSoap.compute_chunks`,
    whose samples are disjoint. TorchScript-able (exported models call it).
    """
    if len(tensors) == 1:
        return tensors[0]
    blocks: list[TensorBlock] = []
    for position in range(len(tensors[0].keys)):
        parts = [tensor.block(position) for tensor in tensors]
        blocks.append(
            TensorBlock(
                values=torch.cat([part.values for part in parts]),
                samples=Labels(
                    parts[0].samples.names, torch.cat([part.samples.values for part in parts])
                ),
                components=parts[0].components,
                properties=parts[0].properties,
            )
        )
    return TensorMap(tensors[0].keys, blocks)


def key_labels(keys: Sequence[tuple[int, int]]) -> Labels:
    """Key labels (o3_lambda, o3_sigma = 1, center_type) of (l, Z) pairs."""
    rows = [[l, 1, z] for l, z in keys]
    return Labels(KEY_NAMES, torch.tensor(rows, dtype=torch.int32).reshape(-1, 3))


def mu_labels(l: int) -> Labels:
    """Component labels o3_mu = -l..l."""
    return Labels(["o3_mu"], torch.arange(-l, l + 1, dtype=torch.int32).reshape(-1, 1))


def n_labels(count: int) -> Labels:
    """Property labels n = 0..count-1 of the radial functions."""
    return Labels(["n"], torch.arange(count, dtype=torch.int32).reshape(-1, 1))
