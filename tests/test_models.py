"""The built-in models pass the shared model battery; the battery catches broken models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from metatensor.torch import TensorBlock, TensorMap

from rhocore.descriptors.features import LambdaSoap
from rhocore.models.base import Model
from rhocore.models.layers import coefficient_block, coefficient_map
from rhocore.models.linear import LinearModel
from rhocore.models.nonlinear import NonlinearModel
from rhocore.plugins.registry import get_registry
from rhocore.testing.models import CHECK_DESCRIPTOR, CHECK_LAYOUT, check_model, random_waters


def test_linear_model_passes_the_model_battery():
    check_model(LinearModel)


@pytest.mark.parametrize("activation", ["silu", "tanh"])
def test_nonlinear_model_passes_the_model_battery(activation):
    check_model(NonlinearModel, {"hidden_sizes": [8, 8], "activation": activation})


def test_nonlinear_model_with_several_heads_passes_the_model_battery():
    check_model(NonlinearModel, {"hidden_sizes": [8], "heads": 3})


class ShiftedDipoleModel(Model):
    """Broken on purpose: adds a constant vector to the l = 1 outputs of a linear model."""

    name = "shifted-dipole"
    Options = LinearModel.Options

    def __init__(self, options, layout, feature_sizes):
        super().__init__(options, layout, feature_sizes)
        self.inner = LinearModel(options, layout, feature_sizes)

    def forward(self, features: TensorMap) -> TensorMap:
        output = self.inner(features)
        keys: list[list[int]] = []
        blocks: list[TensorBlock] = []
        for index in range(len(output.keys)):
            key = output.keys.entry(index)
            block = output.block(index)
            values = block.values
            if int(key.values[0]) == 1:
                values = values + 0.5
            keys.append([int(key.values[0]), 1, int(key.values[2])])
            blocks.append(coefficient_block(values, block))
        return coefficient_map(keys, blocks)


def test_battery_rejects_a_model_that_breaks_rotation_equivariance():
    with pytest.raises(AssertionError, match="is not rotation equivariant"):
        check_model(ShiftedDipoleModel)


@pytest.mark.parametrize("model_cls", [LinearModel, NonlinearModel])
def test_default_hypers_yaml_documents_the_option_defaults(model_cls):
    folder = Path(__import__("importlib").import_module(model_cls.__module__).__file__).parent
    defaults = yaml.safe_load((folder / "default-hypers.yaml").read_text())
    assert defaults == model_cls.Options().model_dump(mode="json")


def test_models_are_registered_by_name():
    registry = get_registry()
    assert registry.get("model", "linear") is LinearModel
    assert registry.get("model", "nonlinear") is NonlinearModel


def test_hypers_rebuild_the_model_and_exported_file_predicts_the_same(tmp_path):
    descriptor = LambdaSoap(CHECK_DESCRIPTOR, CHECK_LAYOUT, CHECK_LAYOUT.species)
    model = NonlinearModel({"hidden_sizes": [4]}, CHECK_LAYOUT, descriptor.feature_sizes())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    rebuilt = NonlinearModel.from_hypers(model.hypers())
    rebuilt.load_state_dict(model.state_dict())
    torch.jit.save(torch.jit.script(model), str(tmp_path / "model.pt"))
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    features = descriptor.compute(random_waters(2))
    expected = model(features)
    for other in (rebuilt(features), loaded(features)):
        for key, block in expected.items():
            assert torch.allclose(other.block(key).values, block.values, atol=1e-12)


def test_features_missing_a_basis_block_are_refused():
    descriptor = LambdaSoap(CHECK_DESCRIPTOR, CHECK_LAYOUT, CHECK_LAYOUT.species)
    sizes = descriptor.feature_sizes()
    del sizes[(2, 8)]
    with pytest.raises(
        ValueError, match=r"no features for the coefficient blocks \(l, Z\) \[\(2, 8\)\]"
    ):
        LinearModel(None, CHECK_LAYOUT, sizes)


def test_unknown_model_option_is_rejected():
    with pytest.raises(ValueError, match="extra"):
        NonlinearModel.Options(hidden=[3])
