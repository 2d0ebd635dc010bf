"""Building blocks shared by model architectures."""

from __future__ import annotations

import numpy as np
import torch
from metatensor.torch import Labels, TensorBlock, TensorMap

#: One output's dual rows in the closed-form ridge: feature rows (rows, features [+ 1]),
#: their dual weights (rows,) and each row's support atom.
DualRows = tuple[np.ndarray, np.ndarray, list[int]]


class EquivariantLinear(torch.nn.Module):
    """Linear map over the properties of one (o3_lambda, center_type) block.

    The same weights act on every o3_mu component, which commutes with rotations. Only
    invariant (o3_lambda = 0) blocks get a bias and a fixed baseline (the training-set
    mean of the coefficients), because a constant offset of an equivariant is not
    equivariant. Weights start at zero, so a fresh model predicts the baseline.
    Parameters are float64, the precision of the descriptors.
    """

    def __init__(
        self,
        o3_lambda: int,
        center_type: int,
        in_features: int,
        out_features: int,
        bias: bool,
        heads: int = 1,
    ):
        super().__init__()
        self.o3_lambda = o3_lambda
        self.center_type = center_type
        self.heads = heads
        self.out_features = out_features
        self.weight = torch.nn.Parameter(
            torch.zeros(in_features, heads * out_features, dtype=torch.float64)
        )
        invariant = o3_lambda == 0
        self.bias: torch.Tensor | None = (
            torch.nn.Parameter(torch.zeros(out_features, dtype=torch.float64))
            if invariant and bias
            else None
        )
        self.baseline: torch.Tensor | None
        if invariant:
            self.register_buffer("baseline", torch.zeros(out_features, dtype=torch.float64))
        else:
            self.baseline = None

    def reset_parameters(self) -> None:
        """Zero weights and bias: the layer then outputs its baseline."""
        with torch.no_grad():
            self.weight.zero_()
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, values: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """(samples, 2l+1, in) -> (samples, 2l+1, out).

        With ``heads`` > 1 the layer computes ``heads`` linear maps, scales each output by
        the invariant ``gate`` (samples, heads * out) and sums over the heads.
        """
        out = values @ self.weight
        if gate is not None:
            out = out * gate.unsqueeze(1)
        if self.heads > 1:
            shape = out.shape
            out = out.reshape(shape[0], shape[1], self.heads, self.out_features).sum(dim=2)
        bias = self.bias
        if bias is not None:
            out = out + bias
        baseline = self.baseline
        if baseline is not None:
            out = out + baseline
        return out

    def set_baseline(self, mean: np.ndarray) -> None:
        """Set the fixed offset of the invariant outputs (shape (out_features,))."""
        copy_baseline(self.baseline, mean, self.o3_lambda, self.center_type)

    # --- the closed-form ridge solver's view (rhocore.models.linear.ridge) ----------------

    #: False: one weight matrix serves every atom, so all dual rows add to one weight.
    dual_per_atom = False

    def dual_similarity(self, invariants: torch.Tensor | None = None) -> np.ndarray | None:
        """The ridge kernel's factor beyond the feature products: none for a linear map."""
        return None

    def set_dual_weights(self, rows: dict[int, DualRows]) -> None:
        """Weights from the ridge solver's dual weights: ``rows[n]`` holds output n's
        feature rows (with a trailing 1 for the bias), their dual weights and atoms."""
        weight = np.zeros(tuple(self.weight.shape))
        bias = None if self.bias is None else np.zeros(tuple(self.bias.shape))
        for n, (stacked, alpha, _) in rows.items():
            solution = stacked.T @ alpha
            weight[:, n] = solution[: weight.shape[0]]
            if bias is not None:
                bias[n] = solution[-1]
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(weight))
            if self.bias is not None and bias is not None:
                self.bias.copy_(torch.from_numpy(bias))


def copy_baseline(
    baseline: torch.Tensor | None, mean: np.ndarray, o3_lambda: int, center_type: int
) -> None:
    """Copy ``mean`` into a layer's ``baseline`` buffer, refusing l > 0 and wrong shapes."""
    if baseline is None:
        raise ValueError(f"o3_lambda={o3_lambda} outputs cannot have a baseline")
    values = torch.as_tensor(np.asarray(mean), dtype=baseline.dtype)
    if values.shape != baseline.shape:
        raise ValueError(
            f"baseline of Z={center_type} has shape {tuple(values.shape)}, "
            f"expected {tuple(baseline.shape)} (one value per l=0 radial function)"
        )
    with torch.no_grad():
        baseline.copy_(values)


def coefficient_block(values: torch.Tensor, features: TensorBlock) -> TensorBlock:
    """A coefficient block with the samples and components of ``features``."""
    properties = Labels(
        ["n"],
        torch.arange(values.shape[-1], dtype=torch.int32, device=values.device).reshape(-1, 1),
    )
    return TensorBlock(values, features.samples, features.components, properties)


def key_selection(o3_lambda: int, center_type: int) -> dict[str, int]:
    """Block selection for (o3_lambda, o3_sigma = 1, center_type)."""
    return {"o3_lambda": o3_lambda, "o3_sigma": 1, "center_type": center_type}


def coefficient_map(keys: list[list[int]], blocks: list[TensorBlock]) -> TensorMap:
    """Coefficient TensorMap of ``blocks`` with keys rows [o3_lambda, 1, center_type]."""
    names = ["o3_lambda", "o3_sigma", "center_type"]
    return TensorMap(Labels(names, torch.tensor(keys, dtype=torch.int32)), blocks)
