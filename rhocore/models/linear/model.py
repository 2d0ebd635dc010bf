"""``linear``: coefficients as a linear function of the lambda-SOAP features.

For every (l, Z) of the basis, d = W_lZ x over the feature properties (same W for every
o3_mu), plus bias and per-species baseline for l = 0. With a fixed descriptor the loss is
quadratic in W, so training converges to the least-squares model.
"""

from __future__ import annotations

import torch
from metatensor.torch import TensorBlock, TensorMap
from pydantic import Field

from rhocore.models.base import Model
from rhocore.models.layers import (
    EquivariantLinear,
    coefficient_block,
    coefficient_map,
    key_selection,
)
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout


class LinearOptions(PluginOptions):
    """Options of the ``linear`` model (defaults in ``default-hypers.yaml``)."""

    invariant_bias: bool = Field(
        True,
        description="Learn a bias on the l = 0 coefficients on top of the species baseline.",
    )


class LinearModel(Model):
    """One :class:`EquivariantLinear` map per (l, Z) block of the basis."""

    name = "linear"
    Options = LinearOptions

    def __init__(
        self,
        options: LinearOptions | dict | None,
        layout: BasisLayout,
        feature_sizes: dict[tuple[int, int], int],
    ):
        super().__init__(options, layout, feature_sizes)
        self.layers = torch.nn.ModuleDict(
            {
                f"{l}_{z}": EquivariantLinear(
                    l,
                    z,
                    self.feature_sizes[(l, z)],
                    layout.nmax[z][l],
                    self.options.invariant_bias,
                )
                for l, z in self.output_keys()
            }
        )

    def starts_linear(self) -> bool:
        """Always: this model is linear."""
        return True

    def forward(self, features: TensorMap) -> TensorMap:
        """Coefficients of every (l, Z) block of the basis."""
        keys: list[list[int]] = []
        blocks: list[TensorBlock] = []
        for layer in self.layers.values():
            block = features.block(key_selection(layer.o3_lambda, layer.center_type))
            blocks.append(coefficient_block(layer(block.values), block))
            keys.append([layer.o3_lambda, 1, layer.center_type])
        return coefficient_map(keys, blocks)
