"""``nonlinear``: equivariant linear outputs gated by an MLP of the invariant features.

For an atom of element Z with invariant (o3_lambda = 0) features x0 and o3_lambda = l
features x_l, the coefficient of radial function n is

    d_{l,n} = sum_k (W^k_{lZ} x_l)_n * (1 + g_Z(x0)_{l,n,k})   (+ bias and baseline for l = 0)

over ``heads`` k. g_Z is an MLP per species. The gates are invariant, so the product
rotates like x_l (a gated equivariant architecture), and with one head the model starts
as the ``linear`` one when g is small. Several heads multiply the equivariant features by
several learned functions of the invariants, like a polynomial kernel does.
"""

from __future__ import annotations

from typing import Literal

import torch
from metatensor.torch import TensorBlock, TensorMap
from pydantic import Field

from rhocore.errors import InputError
from rhocore.models.base import Model
from rhocore.models.layers import (
    EquivariantLinear,
    coefficient_block,
    coefficient_map,
    key_selection,
)
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout

ACTIVATIONS = {"silu": torch.nn.SiLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}


class GateOutput(torch.nn.Linear):
    """Last layer of a gate MLP, zero at initialisation so that every gate starts at one."""

    def reset_parameters(self) -> None:
        """Zero weight and bias."""
        torch.nn.init.zeros_(self.weight)
        torch.nn.init.zeros_(self.bias)


class NonlinearOptions(PluginOptions):
    """Options of the ``nonlinear`` model (defaults in ``default-hypers.yaml``)."""

    hidden_sizes: list[int] = Field(
        [32, 32], description="Widths of the hidden layers of the gate MLP of every species."
    )
    activation: Literal["silu", "tanh", "gelu"] = Field(
        "silu", description="Activation function between the gate MLP layers."
    )
    invariant_bias: bool = Field(
        True,
        description="Learn a bias on the l = 0 coefficients on top of the species baseline.",
    )
    heads: int = Field(
        1, ge=1, description="Gated linear maps summed per output (more = more expressive)."
    )


class NonlinearModel(Model):
    """Per-(l, Z) equivariant linear maps, gated per radial channel by a species MLP."""

    name = "nonlinear"
    Options = NonlinearOptions

    def __init__(
        self,
        options: NonlinearOptions | dict | None,
        layout: BasisLayout,
        feature_sizes: dict[tuple[int, int], int],
    ):
        super().__init__(options, layout, feature_sizes)
        keys = self.output_keys()
        self.layers = torch.nn.ModuleDict(
            {
                f"{l}_{z}": EquivariantLinear(
                    l,
                    z,
                    self.feature_sizes[(l, z)],
                    layout.nmax[z][l],
                    self.options.invariant_bias,
                    self.options.heads,
                )
                for l, z in keys
            }
        )
        # where the gates of block (l, Z) start in the output of Z's MLP
        offsets: dict[str, int] = {}
        gate_sizes: dict[int, int] = {}
        for l, z in keys:
            offsets[f"{l}_{z}"] = gate_sizes.get(z, 0)
            gate_sizes[z] = gate_sizes.get(z, 0) + layout.nmax[z][l] * self.options.heads
        self.gate_offsets = offsets
        missing = [z for z in gate_sizes if (0, z) not in self.feature_sizes]
        if missing:
            raise InputError(
                f"the nonlinear model needs invariant (o3_lambda=0) features of species {missing}"
            )
        self.gates = torch.nn.ModuleDict(
            {str(z): self._mlp(self.feature_sizes[(0, z)], size) for z, size in gate_sizes.items()}
        )
        self.gate_species = {str(z): z for z in gate_sizes}

    def _mlp(self, in_features: int, out_features: int) -> torch.nn.Sequential:
        widths = [in_features, *self.options.hidden_sizes]
        layers: list[torch.nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(torch.nn.Linear(width_in, width_out, dtype=torch.float64))
            layers.append(ACTIVATIONS[self.options.activation]())
        layers.append(GateOutput(widths[-1], out_features, dtype=torch.float64))
        return torch.nn.Sequential(*layers)

    def starts_linear(self) -> bool:
        """With one head: fresh gates are exactly one, so the model starts as ``linear``."""
        return self.options.heads == 1

    def forward(self, features: TensorMap) -> TensorMap:
        """Coefficients of every (l, Z) block of the basis."""
        gates: dict[int, torch.Tensor] = {}
        for name, mlp in self.gates.items():
            z = self.gate_species[name]
            invariant = features.block(key_selection(0, z)).values[:, 0, :]
            gates[z] = 1.0 + mlp(invariant)
        keys: list[list[int]] = []
        blocks: list[TensorBlock] = []
        for name, layer in self.layers.items():
            block = features.block(key_selection(layer.o3_lambda, layer.center_type))
            start = self.gate_offsets[name]
            gate = gates[layer.center_type][:, start : start + layer.weight.shape[1]]
            blocks.append(coefficient_block(layer(block.values, gate), block))
            keys.append([layer.o3_lambda, 1, layer.center_type])
        return coefficient_map(keys, blocks)
