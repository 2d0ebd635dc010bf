"""``kernel``: equivariant kernel regression on lambda-SOAP features.

The coefficient of radial function n of atom i (element Z, component m of l) is

    d_{i,l,n,m} = sum_q x_{i,m,q} sum_M k(i, M) P_{M,q,n}      (+ baseline for l = 0)

over the support atoms M of element Z (every Z atom of the training set), with
k(i, M) = ((1 + u_i . u_M) / 2)^(zeta - 1) the invariant kernel of the centred, normalised
invariant (o3_lambda = 0) features u. The weights that map lambda-SOAP features to coefficients thus
vary smoothly with the atom's environment. k is invariant, so the prediction rotates like
the features. Closed-form (ridge) training gives P_M = sum_m' x_{M,m'} a_{M,m'} with dual
weights a: kernel ridge regression with the equivariant kernel
K(i m, M m') = (x_{i,m} . x_{M,m'}) k(i, M), the polynomial lambda-kernel of the
density-learning literature. zeta = 1 is the ``linear`` model without its bias.
"""

from __future__ import annotations

import numpy as np
import torch
from metatensor.torch import TensorBlock, TensorMap
from pydantic import Field

from rhocore.models.base import Model
from rhocore.models.layers import (
    DualRows,
    coefficient_block,
    coefficient_map,
    copy_baseline,
    key_selection,
)
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout


class KernelOptions(PluginOptions):
    """Options of the ``kernel`` model (defaults in ``default-hypers.yaml``)."""

    zeta: int = Field(
        2,
        ge=1,
        le=8,
        description="Power of the invariant kernel multiplying the lambda-SOAP kernel: "
        "1 is linear in the features, 2 and more are increasingly nonlinear.",
    )


def centred_invariants(values: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Invariant features (samples, 1, q) minus ``centre``, scaled to unit length: (samples, q).

    Centring on the support's mean spreads the similarities of related environments over
    [-1, 1] (raw power spectra of one element are all nearly parallel). The norm has a
    floor of 1e-12, so that an environment equal to the centre stays finite.
    """
    flat = values[:, 0, :] - centre
    return flat / (torch.linalg.norm(flat, dim=1, keepdim=True) + 1e-12)


class KernelLayer(torch.nn.Module):
    """The (l, Z) block: support atoms' invariants and the projections ``P_M``.

    Both are empty until :meth:`KernelModel.prepare` sees the training set; loading a
    state dict takes the sizes it holds.
    """

    def __init__(
        self,
        o3_lambda: int,
        center_type: int,
        in_features: int,
        out_features: int,
        invariant_features: int,
        zeta: int,
    ):
        super().__init__()
        self.o3_lambda = o3_lambda
        self.center_type = center_type
        self.zeta = zeta
        self.in_features = in_features
        self.out_features = out_features
        # the ridge solver reads ``bias`` like a linear layer's: this model has none
        self.bias: torch.Tensor | None = None
        self.register_buffer("support", torch.zeros(0, invariant_features, dtype=torch.float64))
        self.register_buffer("centre", torch.zeros(invariant_features, dtype=torch.float64))
        self.projection = torch.nn.Parameter(
            torch.zeros(0, in_features, out_features, dtype=torch.float64)
        )
        self.baseline: torch.Tensor | None
        if o3_lambda == 0:
            self.register_buffer("baseline", torch.zeros(out_features, dtype=torch.float64))
        else:
            self.baseline = None

    def set_support(self, invariants: torch.Tensor) -> None:
        """Take the raw ``invariants`` (n_support, 1, q0) as the support; zero projections."""
        invariants = invariants.detach().to(torch.float64)
        self.centre = invariants[:, 0, :].mean(dim=0) if len(invariants) else self.centre
        self.support = centred_invariants(invariants, self.centre)
        self.projection = torch.nn.Parameter(
            torch.zeros(len(invariants), self.in_features, self.out_features, dtype=torch.float64)
        )

    def reset_parameters(self) -> None:
        """Zero projections: the layer then outputs its baseline."""
        with torch.no_grad():
            self.projection.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        support = state_dict.get(prefix + "support")
        if support is not None and support.shape != self.support.shape:
            self.set_support(torch.zeros_like(support)[:, None, :])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def similarity(self, invariants: torch.Tensor) -> torch.Tensor:
        """k(i, M) of raw invariant features (samples, 1, q0) to the support atoms."""
        return self._to_support(centred_invariants(invariants, self.centre))

    def support_similarity(self) -> torch.Tensor:
        """k(M, M') between the support atoms (the closed-form ridge's kernel)."""
        return self._to_support(self.support)

    def _to_support(self, centred: torch.Tensor) -> torch.Tensor:
        """The polynomial kernel of centred invariants to the (centred) support."""
        return (0.5 * (1.0 + centred @ self.support.T)) ** (self.zeta - 1)

    # --- the closed-form ridge solver's view (rhocore.models.linear.ridge) ----------------

    #: True: each dual row adds to the projection of its own support atom.
    dual_per_atom = True

    def dual_similarity(self, invariants: torch.Tensor | None = None) -> np.ndarray | None:
        """The ridge kernel's factor beyond the feature products: k(i, M) of raw
        ``invariants`` to the support atoms, or k(M, M') without them."""
        if invariants is None:
            return self.support_similarity().detach().numpy()
        return self.similarity(invariants).detach().numpy()

    def set_dual_weights(self, rows: dict[int, DualRows]) -> None:
        """Projections from the ridge solver's dual weights: ``rows[n]`` holds output n's
        feature rows, their dual weights and support atoms."""
        projection = np.zeros(tuple(self.projection.shape))
        for n, (stacked, alpha, support) in rows.items():
            np.add.at(projection[:, :, n], support, alpha[:, None] * stacked)
        with torch.no_grad():
            self.projection.copy_(torch.from_numpy(projection))

    def forward(self, values: torch.Tensor, invariants: torch.Tensor) -> torch.Tensor:
        """(samples, 2l+1, q) features and (samples, 1, q0) invariants -> coefficients."""
        similarity = self.similarity(invariants)
        weights = torch.einsum("iM,Mqn->iqn", similarity, self.projection)
        out = torch.bmm(values, weights)
        baseline = self.baseline
        if baseline is not None:
            out = out + baseline
        return out

    def set_baseline(self, mean: np.ndarray) -> None:
        """Set the fixed offset of the invariant outputs (shape (out_features,))."""
        copy_baseline(self.baseline, mean, self.o3_lambda, self.center_type)


class KernelModel(Model):
    """One :class:`KernelLayer` per (l, Z) block of the basis."""

    name = "kernel"
    Options = KernelOptions

    def __init__(
        self,
        options: KernelOptions | dict | None,
        layout: BasisLayout,
        feature_sizes: dict[tuple[int, int], int],
    ):
        super().__init__(options, layout, feature_sizes)
        self.layers = torch.nn.ModuleDict(
            {
                f"{l}_{z}": KernelLayer(
                    l,
                    z,
                    self.feature_sizes[(l, z)],
                    layout.nmax[z][l],
                    self.feature_sizes[(0, z)],
                    self.options.zeta,
                )
                for l, z in self.output_keys()
            }
        )

    def starts_linear(self) -> bool:
        """Always: the prediction is linear in the projections, so ridge solves it."""
        return True

    def prepare(self, features: list[TensorMap]) -> None:
        """Every atom of the training ``features`` becomes a support atom of its element."""
        for layer in self.layers.values():
            assert isinstance(layer, KernelLayer)
            rows = [
                structure.block(key_selection(0, layer.center_type)).values
                for structure in features
            ]
            layer.set_support(torch.cat(rows) if rows else layer.support[:, None, :])

    def set_baseline(self, means: dict[int, np.ndarray]) -> None:
        """Add ``means[Z]`` to the l = 0 outputs of Z (species missing keep theirs)."""
        for layer in self.layers.values():
            if isinstance(layer, KernelLayer) and layer.baseline is not None:
                if layer.center_type in means:
                    layer.set_baseline(means[layer.center_type])

    def forward(self, features: TensorMap) -> TensorMap:
        """Coefficients of every (l, Z) block of the basis."""
        keys: list[list[int]] = []
        blocks: list[TensorBlock] = []
        for layer in self.layers.values():
            block = features.block(key_selection(layer.o3_lambda, layer.center_type))
            invariants = features.block(key_selection(0, layer.center_type)).values
            blocks.append(coefficient_block(layer(block.values, invariants), block))
            keys.append([layer.o3_lambda, 1, layer.center_type])
        return coefficient_map(keys, blocks)
