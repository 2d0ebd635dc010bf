"""The base class every rhocore model architecture derives from.

A model maps lambda-SOAP features (a TensorMap with keys (o3_lambda, o3_sigma,
center_type)) to RI coefficients (a TensorMap with the same keys, properties ``n``). It is
built from its ``Options``, the basis layout and the feature size of every key, and must
be TorchScript-able so a trained model is exported as one file.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import torch
from metatensor.torch import TensorMap

from rhocore.errors import InputError
from rhocore.models.layers import EquivariantLinear
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout


class Model(torch.nn.Module):
    """Equivariant map from lambda-SOAP features to RI coefficients.

    Subclasses set ``name`` and ``Options``, build their layers for every (l, Z) of
    ``layout`` in ``__init__`` and implement ``forward``. ``set_baseline`` must make the
    per-species mean of the l = 0 coefficients part of the prediction.
    """

    name: ClassVar[str]
    Options: ClassVar[type[PluginOptions]] = PluginOptions
    # Python-side metadata, invisible to TorchScript
    __jit_ignored_attributes__: ClassVar[list[str]] = ["options", "layout", "feature_sizes"]

    def __init__(
        self,
        options: PluginOptions | dict | None,
        layout: BasisLayout,
        feature_sizes: dict[tuple[int, int], int],
    ):
        super().__init__()
        if isinstance(options, PluginOptions):
            self.options = options
        else:
            self.options = self.Options.model_validate(options or {})
        self.layout = layout
        self.feature_sizes = {(int(l), int(z)): int(n) for (l, z), n in feature_sizes.items()}
        missing = [key for key in self.output_keys() if key not in self.feature_sizes]
        if missing:
            raise InputError(
                f"the descriptor gives no features for the coefficient blocks (l, Z) {missing}; "
                "build the descriptor from the same basis layout and species"
            )

    def output_keys(self) -> list[tuple[int, int]]:
        """(l, Z) of the predicted blocks: the layout's, for species that have features."""
        species = {z for _, z in self.feature_sizes}
        return [(l, z) for l, z in self.layout.keys() if z in species]

    def starts_linear(self) -> bool:
        """Whether a fresh model is the ``linear`` one, so its layers can be fitted in closed
        form (:mod:`rhocore.models.linear.ridge`) before any gradient step."""
        return False

    def prepare(self, features: list[TensorMap]) -> None:
        """Take what the architecture needs from the training set before any fit.

        Called once per training run with the features of every training structure;
        models that hold reference environments (``kernel``) take them here. Default:
        nothing.
        """

    def set_baseline(self, means: dict[int, np.ndarray]) -> None:
        """Add ``means[Z]`` (shape (n_radial,) of l = 0) to the invariant outputs of Z.

        Sets the baseline of every l = 0 :class:`EquivariantLinear` layer; species
        missing from ``means`` keep theirs.
        """
        for module in self.modules():
            if isinstance(module, EquivariantLinear) and module.baseline is not None:
                if module.center_type in means:
                    module.set_baseline(means[module.center_type])

    def hypers(self) -> dict[str, Any]:
        """JSON-ready arguments that rebuild this model with :meth:`from_hypers`."""
        return {
            "options": self.options.model_dump(mode="json"),
            "layout": json.loads(self.layout.to_json()),
            "feature_sizes": [[l, z, n] for (l, z), n in sorted(self.feature_sizes.items())],
        }

    @classmethod
    def from_hypers(cls, hypers: dict[str, Any]) -> Model:
        """A fresh (untrained) model from the output of :meth:`hypers`."""
        layout = BasisLayout.from_json(json.dumps(hypers["layout"]))
        sizes = {(l, z): n for l, z, n in hypers["feature_sizes"]}
        return cls(cls.Options.model_validate(hypers["options"]), layout, sizes)
