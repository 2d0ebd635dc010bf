"""Clebsch-Gordan self-product of a neighbour-density expansion (the lambda-SOAP step).

rhocore's lambda-SOAP features couple two angular channels l_1, l_2 of the same spherical
expansion into o3_lambda with real Clebsch-Gordan coefficients. Everything that depends
only on the hyper-parameters (coefficients, which channel pairs feed which o3_lambda,
which property pairs are unique, property labels) is prepared once here, so coupling a
batch of atoms is a few tensor contractions without any per-call metadata work.
"""

from collections.abc import Sequence

import numpy as np
import torch
from featomic.clebsch_gordan import calculate_cg_coefficients
from metatensor.torch import Labels

#: Property names of the channels of a pair of an uncompressed expansion (first factor, then
#: second): neighbour type and radial index.
EXPANSION_PAIR_NAMES = ["neighbor_1_type", "n_1", "neighbor_2_type", "n_2"]
#: Property names of the channels of a pair of a compressed expansion: principal components.
COMPRESSED_PAIR_NAMES = ["k_1", "k_2"]


def expansion_channels(neighbor_types: Sequence[int], max_radial: int) -> torch.Tensor:
    """Channel labels (neighbor_type, n) of a spherical expansion, type-major (int32)."""
    return torch.cartesian_prod(
        torch.tensor(sorted(neighbor_types), dtype=torch.int32),
        torch.arange(max_radial + 1, dtype=torch.int32),
    ).reshape(-1, 2)


def compressed_channels(count: int) -> torch.Tensor:
    """Channel labels (k,) of ``count`` principal components (int32)."""
    return torch.arange(count, dtype=torch.int32).reshape(-1, 1)


def coupled_pairs(o3_lambda: int, max_angular: int) -> list[tuple[int, int]]:
    """Pairs l_1 <= l_2 <= max_angular that couple to ``o3_lambda`` with o3_sigma = +1.

    Both factors come from one expansion, so (l_2, l_1) repeats (l_1, l_2); parity +1
    needs l_1 + l_2 + o3_lambda even.
    """
    return [
        (l1, l2)
        for l1 in range(max_angular + 1)
        for l2 in range(l1, max_angular + 1)
        if l2 - l1 <= o3_lambda <= l1 + l2 and (l1 + l2 + o3_lambda) % 2 == 0
    ]


def real_cg_coefficients(max_angular: int) -> dict[tuple[int, int, int], torch.Tensor]:
    """Float64 coefficients C[m_1, m_2, mu] of every (l_1, l_2, o3_lambda <= max_angular).

    They are featomic's, so that features computed from featomic's spherical expansion
    transform with rhocore's canonical Wigner matrices. Computed with numpy arrays,
    which is much faster to set up than featomic's torch variant.
    """
    tensor = calculate_cg_coefficients(
        lambda_max=max_angular,
        cg_backend="python-dense",
        arrays_backend="numpy",
        dtype=np.float64,
        device="cpu",
    )
    return {
        (int(l1), int(l2), int(lam)): torch.from_numpy(
            np.ascontiguousarray(block.values[0, ..., 0])
        )
        for (l1, l2, lam), block in zip(tensor.keys.values, tensor.blocks(), strict=True)
    }


class SelfProduct(torch.nn.Module):
    """lambda-SOAP blocks of selected o3_lambda from the density blocks of one centre type.

    The density of angular channel l has shape (atoms, 2l + 1, channels), the channels
    labelled by the rows of ``channels`` (:func:`expansion_channels`, or
    :func:`compressed_channels` after a compression). Output properties are the unique
    pairs (l_1, l_2, first channel, second channel), named ``["l_1", "l_2"] + pair_names``:
    l_1 < l_2, or l_1 = l_2 with the first channel's index <= the second's, because the
    swapped pair of a self-product is equal for o3_sigma = +1.

    All channel pairs (l_1, l_2 >= l_1) of one l_1 form a *group*, coupled by two matrix
    products: the group's weights map the density rows of its partners l_2 to columns
    (m_1, u), u running over the (o3_lambda, l_2, mu) of the group (zero where l_2 does not
    own the row); multiplying by the l_1 density then contracts m_1 and gives products
    laid out (atom, p, u, q), p and q the channels of l_1 and l_2. A *run* is the
    consecutive output properties of one (o3_lambda, l_1), consecutive in the group's
    products too, so one strided copy moves all its pieces with l_2 > l_1; a piece with
    l_2 = l_1 keeps only the unique pairs p <= q and is gathered by flat positions.

    Atoms are processed in chunks of ``chunk`` so that the products of a chunk stay in
    the processor cache between the two matrix products per l_1 and the copy into the
    output; per chunk the number of torch calls is fixed (each has a fixed cost), so the
    time is linear in the number of atoms. The intermediates live in scratch tensors
    allocated once per call: fresh memory for every chunk would be page-faulted anew,
    which costs about ten times as much as writing it. Constant tensors (weights, gather
    positions) are buffers: the module follows ``.to(device)`` and computes on the device
    of its input. The module is TorchScript-able,
    so exported models (:mod:`rhocore.models.atomistic`) compute the same features.
    """

    o3_lambdas: list[int]
    # per group (one l_1): l_1, first and last + 1 density row, width of u, weights
    _group_l1: list[int]
    _group_rows: list[tuple[int, int]]
    _group_width: list[int]
    _group_weights: list[tuple[int, int, int]]  # (offset, rows, (2 l_1 + 1) * width)
    # per run, flat over groups (runs of group g are _group_runs[g] .. _group_runs[g + 1])
    _group_runs: list[int]
    _run_lambda: list[int]
    _run_start: list[int]  # first output property
    _run_u: list[int]  # first u of the run in the group
    _run_same: list[tuple[int, int]]  # (offset, size) of the flat positions of the
    # l_2 = l_1 piece (size 0 if none)
    _run_rest: list[int]  # pieces with l_2 > l_1
    _sizes: dict[int, int]
    properties: dict[int, Labels]

    def __init__(
        self,
        o3_lambdas: Sequence[int],
        max_angular: int,
        channels: torch.Tensor,
        pair_names: Sequence[str],
        coefficients: dict[tuple[int, int, int], torch.Tensor],
        chunk: int = 32,
    ):
        super().__init__()
        self.o3_lambdas = sorted({int(lam) for lam in o3_lambdas})
        self.chunk = chunk
        count = self._channels = len(channels)
        first, second = torch.meshgrid(torch.arange(count), torch.arange(count), indexing="ij")
        first, second = first.reshape(-1), second.reshape(-1)
        unique = torch.nonzero(first <= second).reshape(-1)
        row_offset = [l * l for l in range(max_angular + 2)]  # density rows of l start at l^2

        feeds: dict[int, dict[int, list[int]]] = {}  # l_1 -> o3_lambda -> partners l_2
        for lam in self.o3_lambdas:
            for l1, l2 in coupled_pairs(lam, max_angular):
                feeds.setdefault(l1, {}).setdefault(lam, []).append(l2)

        self._group_l1, self._group_rows, self._group_width = [], [], []
        self._group_weights, self._group_runs = [], [0]
        weight_values: list[torch.Tensor] = []
        same_values: list[torch.Tensor] = []
        weight_offset = same_offset = 0
        self._run_lambda, self._run_start, self._run_u = [], [], []
        self._run_same, self._run_rest = [], []
        start = {lam: 0 for lam in self.o3_lambdas}  # next output property per o3_lambda
        for l1, by_lambda in sorted(feeds.items()):
            partners = [l2 for l2s in by_lambda.values() for l2 in l2s]
            lo, hi = row_offset[min(partners)], row_offset[max(partners) + 1]
            width = sum((2 * lam + 1) * len(l2s) for lam, l2s in by_lambda.items())
            weights = torch.zeros(2 * l1 + 1, width, hi - lo, dtype=torch.float64)
            u = 0
            for lam, l2s in sorted(by_lambda.items()):
                same = l2s[0] == l1
                same_index = torch.zeros(0, dtype=torch.int64)
                if same:
                    # flat position of (p, u + mu, q) in products of shape (p, width, q)
                    p, q = first[unique], second[unique]
                    mu = torch.arange(2 * lam + 1)[:, None]
                    same_index = ((p * width + u + mu) * count + q).reshape(-1)
                self._run_lambda.append(lam)
                self._run_start.append(start[lam])
                self._run_u.append(u)
                self._run_same.append((same_offset, same_index.numel()))
                same_values.append(same_index)
                same_offset += same_index.numel()
                self._run_rest.append(len(l2s) - same)
                for l2 in l2s:
                    block = coefficients[(l1, l2, lam)].permute(0, 2, 1)  # (m_1, mu, m_2)
                    rows = slice(row_offset[l2] - lo, row_offset[l2 + 1] - lo)
                    weights[:, u : u + 2 * lam + 1, rows] = block
                    u += 2 * lam + 1
                start[lam] += (len(unique) if same else 0) + (len(l2s) - same) * count**2
            self._group_l1.append(l1)
            self._group_rows.append((lo, hi))
            self._group_width.append(width)
            weights = weights.reshape(-1, hi - lo).T.contiguous()
            self._group_weights.append((weight_offset, weights.shape[0], weights.shape[1]))
            weight_values.append(weights.reshape(-1))
            weight_offset += weights.numel()
            self._group_runs.append(len(self._run_lambda))
        self._sizes = start
        # doubles per atom of the largest intermediate of any group
        self._scratch = max(
            count * max(columns, count * width)
            for (_, _, columns), width in zip(self._group_weights, self._group_width, strict=True)
        )
        # constant tensors are buffers, so that they follow .to(device)
        self.register_buffer("_weights", torch.cat(weight_values), persistent=False)
        self.register_buffer("_same", torch.cat(same_values), persistent=False)

        self.properties = {}
        for lam in self.o3_lambdas:
            labels = []
            for l1, l2 in coupled_pairs(lam, max_angular):
                pairs = torch.cat([channels[first], channels[second]], dim=1)
                if l1 == l2:
                    pairs = pairs[unique]
                prefix = torch.tensor([[l1, l2]], dtype=torch.int32).expand(len(pairs), 2)
                labels.append(torch.cat([prefix, pairs], dim=1))
            self.properties[lam] = Labels(["l_1", "l_2", *pair_names], torch.cat(labels))

    def forward(
        self, density: list[torch.Tensor], normalize: bool = False
    ) -> dict[int, torch.Tensor]:
        """Blocks (atoms, 2 lambda + 1, properties) from density blocks indexed by l.

        With ``normalize``, every atom's features are divided by the norm of its
        o3_lambda = 0 features (which must be among the selected o3_lambda).
        """
        stacked = torch.cat(density, dim=1)  # (atoms, sum of 2l + 1, channels)
        atoms, count = stacked.shape[0], stacked.shape[2]
        out: dict[int, torch.Tensor] = {}
        for lam, size in self._sizes.items():
            out[lam] = stacked.new_empty((atoms, 2 * lam + 1, size))
        rows_per_chunk = min(self.chunk, atoms)
        scratch = [stacked.new_empty((rows_per_chunk * self._scratch,)) for _ in range(3)]
        for begin in range(0, atoms, self.chunk):
            end = min(begin + self.chunk, atoms)
            n = end - begin
            chunk = stacked[begin:end]
            transposed = chunk.transpose(1, 2).contiguous()  # (atoms, q, rows)
            for group in range(len(self._group_l1)):
                l1, width = self._group_l1[group], self._group_width[group]
                lo, hi = self._group_rows[group]
                offset, rows, columns = self._group_weights[group]
                weights = self._weights[offset : offset + rows * columns].view(rows, columns)
                m1, columns = 2 * l1 + 1, weights.shape[1]
                # one product (atoms * q, rows) @ (rows, m_1 * u), turned into
                # (atoms, m_1, u * q); contracting m_1 with the l_1 density gives
                # (atoms, p, u * q)
                half_t = scratch[0][: n * count * columns].view(n * count, columns)
                torch.mm(transposed[:, :, lo:hi].reshape(n * count, -1), weights, out=half_t)
                half = scratch[1][: n * count * columns].view(n, columns, count)
                half.copy_(half_t.view(n, count, columns).transpose(1, 2))
                first = chunk[:, l1 * l1 : l1 * l1 + m1]
                products = scratch[2][: n * count * count * width].view(n, count, -1)
                torch.bmm(first.transpose(1, 2), half.view(n, m1, -1), out=products)
                for run in range(self._group_runs[group], self._group_runs[group + 1]):
                    target = out[self._run_lambda[run]][begin:end]
                    self._copy_run(products, run, width, target, scratch[0])
            if normalize:
                norm = torch.linalg.vector_norm(out[0][begin:end], dim=(1, 2)).clamp_min(1e-12)
                for block in out.values():
                    block[begin:end].div_(norm[:, None, None])
        return out

    def _copy_run(
        self,
        products: torch.Tensor,
        run: int,
        width: int,
        out: torch.Tensor,
        scratch: torch.Tensor,
    ) -> None:
        """Move the pieces of ``run`` from ``products`` (atoms, p, u * q) into ``out``
        (``scratch`` holds the gathered unique pairs on the way)."""
        atoms, count = products.shape[0], self._channels
        mu = 2 * self._run_lambda[run] + 1
        start = self._run_start[run]
        same_offset, same_size = self._run_same[run]
        same_index = self._same[same_offset : same_offset + same_size]
        rest = self._run_rest[run]
        u = self._run_u[run]
        if same_index.numel() > 0:
            unique = same_index.numel() // mu
            gathered = scratch[: atoms * mu * unique].view(atoms, -1)
            torch.index_select(products.reshape(atoms, -1), 1, same_index, out=gathered)
            out[:, :, start : start + unique].copy_(gathered.reshape(atoms, mu, unique))
            start += unique
            u += mu
        if rest > 0:
            source = products.view(atoms, count, width, count)[:, :, u : u + rest * mu]
            source = source.view(atoms, count, rest, mu, count).permute(0, 3, 2, 1, 4)
            target = out[:, :, start : start + rest * count * count]
            target.view(atoms, mu, rest, count, count).copy_(source)
