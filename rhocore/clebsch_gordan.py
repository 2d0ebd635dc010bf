"""Clebsch-Gordan self-product of a neighbour-density expansion (the lambda-SOAP step).

rhocore's lambda-SOAP features couple two angular channels l_1, l_2 of the same spherical
expansion into o3_lambda with real Clebsch-Gordan coefficients. Everything that depends
only on the hyper-parameters (coefficients, which channel pairs feed which o3_lambda,
which property pairs are unique, property labels) is prepared once here, so coupling a
batch of atoms is a few tensor contractions without any per-call metadata work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from featomic.clebsch_gordan import calculate_cg_coefficients
from metatensor.torch import Labels

PROPERTY_NAMES = ["l_1", "l_2", "neighbor_1_type", "n_1", "neighbor_2_type", "n_2"]


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


@dataclass
class _Group:
    """All channel pairs (l_1, l_2 >= l_1) of one l_1, coupled by two matrix products.

    ``weights`` maps the density rows ``rows`` (the m_2 of every partner l_2) to rows
    (u, m_1), u running over the (l_2, o3_lambda, mu) of the group; zero where l_2 does
    not own the density row. Multiplying by the l_1 density then contracts m_1.
    """

    l1: int
    rows: slice
    weights: torch.Tensor  # (width * (2 l_1 + 1), len(rows))
    width: int


class SelfProduct:
    """lambda-SOAP blocks of selected o3_lambda from the density blocks of one centre type.

    The density of angular channel l has shape (atoms, 2l + 1, channels), channels being
    ``neighbor_types`` x range(max_radial + 1), type-major. Output properties are the
    unique pairs (l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2): l_1 < l_2, or
    l_1 = l_2 with (neighbor_1_type, n_1) <= (neighbor_2_type, n_2), because the swapped
    pair of a self-product is equal for o3_sigma = +1.

    A call does two matrix products per l_1 and one concatenation per o3_lambda: few
    large operations rather than many small ones, since each torch call has a fixed cost.
    """

    def __init__(
        self,
        o3_lambdas: Sequence[int],
        max_angular: int,
        max_radial: int,
        neighbor_types: Sequence[int],
        coefficients: dict[tuple[int, int, int], torch.Tensor],
    ):
        self.o3_lambdas = sorted({int(lam) for lam in o3_lambdas})
        channels = torch.cartesian_prod(
            torch.tensor(sorted(neighbor_types), dtype=torch.int32),
            torch.arange(max_radial + 1, dtype=torch.int32),
        ).reshape(-1, 2)
        count = len(channels)
        first, second = torch.meshgrid(torch.arange(count), torch.arange(count), indexing="ij")
        first, second = first.reshape(-1), second.reshape(-1)
        self._unique = torch.nonzero(first <= second).reshape(-1)
        row_offset = [l * l for l in range(max_angular + 2)]  # density rows of l start at l^2

        feeds: dict[int, dict[int, list[int]]] = {}
        for lam in self.o3_lambdas:
            for l1, l2 in coupled_pairs(lam, max_angular):
                feeds.setdefault(l1, {}).setdefault(l2, []).append(lam)

        column: dict[tuple[int, int, int], int] = {}  # first u of (l_1, l_2, lambda)
        self._groups: list[_Group] = []
        for l1, partners in sorted(feeds.items()):
            lo, hi = row_offset[min(partners)], row_offset[max(partners) + 1]
            width = sum(2 * lam + 1 for lams in partners.values() for lam in lams)
            weights = torch.zeros(width, 2 * l1 + 1, hi - lo, dtype=torch.float64)
            u = 0
            for l2, lams in sorted(partners.items()):
                for lam in lams:
                    column[(l1, l2, lam)] = u
                    block = coefficients[(l1, l2, lam)].permute(2, 0, 1)  # (mu, m_1, m_2)
                    rows = slice(row_offset[l2] - lo, row_offset[l2 + 1] - lo)
                    weights[u : u + 2 * lam + 1, :, rows] = block
                    u += 2 * lam + 1
            self._groups.append(_Group(l1, slice(lo, hi), weights.reshape(-1, hi - lo), width))

        # per o3_lambda, in property order: (l_1, first u, whether swapped pairs repeat)
        self._pieces = {
            lam: [
                (l1, column[(l1, l2, lam)], l1 == l2) for l1, l2 in coupled_pairs(lam, max_angular)
            ]
            for lam in self.o3_lambdas
        }
        self.properties: dict[int, Labels] = {}
        for lam in self.o3_lambdas:
            labels = []
            for l1, l2 in coupled_pairs(lam, max_angular):
                pairs = torch.cat([channels[first], channels[second]], dim=1)
                if l1 == l2:
                    pairs = pairs[self._unique]
                prefix = torch.tensor([[l1, l2]], dtype=torch.int32).expand(len(pairs), 2)
                labels.append(torch.cat([prefix, pairs], dim=1))
            self.properties[lam] = Labels(PROPERTY_NAMES, torch.cat(labels))

    def __call__(self, density: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Blocks (atoms, 2 lambda + 1, properties) from density blocks indexed by l."""
        stacked = torch.cat(list(density), dim=1)  # (atoms, sum of 2l + 1, channels)
        atoms = stacked.shape[0]
        products: dict[int, torch.Tensor] = {}
        for group in self._groups:
            # (atoms, u * m_1, q) -> (atoms, u, m_1, q); contracting m_1 gives (atoms, u, p, q)
            half = torch.matmul(group.weights, stacked[:, group.rows])
            half = half.reshape(atoms, group.width, 2 * group.l1 + 1, -1)
            full = torch.matmul(density[group.l1].transpose(1, 2).unsqueeze(1), half)
            products[group.l1] = full.reshape(atoms, group.width, -1)
        out = {}
        for lam, plan in self._pieces.items():
            pieces = []
            for l1, u, same in plan:
                piece = products[l1][:, u : u + 2 * lam + 1]
                pieces.append(piece.index_select(2, self._unique) if same else piece)
            out[lam] = torch.cat(pieces, dim=2)
        return out
