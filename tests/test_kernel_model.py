"""The ``kernel`` model: contract battery, closed-form training, checkpoints and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rhocore.models.kernel import KernelModel
from rhocore.models.linear import LinearModel, ridge
from rhocore.plugins.registry import get_registry
from rhocore.testing.models import check_model
from rhocore.training.checkpoints import load_model
from rhocore.training.options import TrainingOptions
from rhocore.training.trainer import predict, train
from tests.training_data import LAYOUT, linear_samples, make_descriptor

RIDGE = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-8])


@pytest.mark.parametrize("zeta", [1, 2, 3])
def test_kernel_model_passes_the_model_battery(zeta):
    check_model(KernelModel, {"zeta": zeta})


def test_kernel_model_is_registered_and_its_defaults_are_documented():
    assert get_registry().get("model", "kernel") is KernelModel
    folder = Path(__import__("rhocore.models.kernel.model").models.kernel.model.__file__).parent
    defaults = yaml.safe_load((folder / "default-hypers.yaml").read_text())
    assert defaults == KernelModel.Options().model_dump(mode="json")


def _ridge_fit(model_cls, options, samples, tmp_path, name, training=RIDGE):
    descriptor = make_descriptor()
    model = model_cls(options, LAYOUT, descriptor.feature_sizes())
    train(model, descriptor, samples, samples[:2], training, tmp_path / name, progress=False)
    return model, descriptor


def test_zeta_one_kernel_model_predicts_like_the_linear_model_without_bias(tmp_path):
    samples = linear_samples(10, seed=3)
    frames = [sample.atoms for sample in linear_samples(3, seed=4)]
    kernel, descriptor = _ridge_fit(KernelModel, {"zeta": 1}, samples, tmp_path, "kernel")
    linear, _ = _ridge_fit(LinearModel, {"invariant_bias": False}, samples, tmp_path, "linear")
    for got, expected in zip(
        predict(kernel, descriptor, frames), predict(linear, descriptor, frames), strict=True
    ):
        assert np.allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_kernel_model_beats_the_linear_model_on_a_nonlinear_teacher(tmp_path):
    """Each atom's coefficients scaled by a narrow Gaussian of its nearest-neighbour
    distance: a local but strongly nonlinear function that a linear map cannot follow."""
    descriptor = make_descriptor()
    samples = linear_samples(40, seed=6)
    for sample in samples:
        distances = sample.atoms.get_all_distances() + 9.0 * np.eye(len(sample.atoms))
        scale = np.exp(-100.0 * (distances.min(axis=1) - 0.96) ** 2)
        sample.coefficients = sample.coefficients * np.concatenate(
            [np.full(LAYOUT.size([z]), scale[a]) for a, z in enumerate(sample.atoms.numbers)]
        )
    train_set, held_out = samples[:32], samples[32:]
    options = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-8, 1e-6, 1e-4, 1e-2])
    errors = {}
    for name, cls, model_options in (
        ("linear", LinearModel, None),
        ("kernel", KernelModel, {"zeta": 2}),
    ):
        model = cls(model_options, LAYOUT, descriptor.feature_sizes())
        train(model, descriptor, train_set, held_out[:4], options, tmp_path / name, progress=False)
        predictions = predict(model, descriptor, [s.atoms for s in held_out[4:]])
        errors[name] = np.mean(
            [
                (p - s.coefficients)
                @ s.metric
                @ (p - s.coefficients)
                / (s.coefficients @ s.metric @ s.coefficients)
                for p, s in zip(predictions, held_out[4:], strict=True)
            ]
        )
    # measured: 0.31 (linear) and 0.10 (kernel)
    assert errors["kernel"] < 0.5 * errors["linear"], errors


def test_trained_kernel_model_reloads_from_its_checkpoint_and_scripts(tmp_path):
    samples = linear_samples(5, seed=7)
    model, descriptor = _ridge_fit(KernelModel, {"zeta": 2}, samples, tmp_path, "run")
    reloaded, reloaded_descriptor, _ = load_model(tmp_path / "run" / "checkpoint.ckpt")
    scripted = torch.jit.script(model)
    frames = [sample.atoms for sample in linear_samples(2, seed=8)]
    expected = predict(model, descriptor, frames)
    for other in (
        predict(reloaded, reloaded_descriptor, frames),
        predict(scripted, descriptor, frames),
    ):
        for got, want in zip(other, expected, strict=True):
            assert np.allclose(got, want, rtol=1e-12, atol=1e-14)


def _fit_with(training, samples, tmp_path, name):
    """The kernel model (zeta 2) fitted with the ridge settings ``training``."""
    return _ridge_fit(KernelModel, {"zeta": 2}, samples, tmp_path, name, training)[0]


def test_ridge_by_cholesky_gives_the_weights_of_the_eigendecomposition(tmp_path, monkeypatch):
    """Large problems factorise each strength instead of sharing one eigendecomposition."""
    samples = linear_samples(10, seed=8)
    options = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-4, 1e-2, 1.0])
    shared = _fit_with(options, samples, tmp_path, "eigh")
    monkeypatch.setattr(ridge, "EIGH_MAX_SIZE", 0)
    factorised = _fit_with(options, samples, tmp_path, "cholesky")
    for name, value in shared.state_dict().items():
        other = factorised.state_dict()[name]
        assert torch.allclose(value, other, rtol=1e-6, atol=1e-9 * value.abs().max()), name


def test_ridge_skips_a_strength_it_cannot_solve_and_names_it(tmp_path, monkeypatch, caplog):
    samples = linear_samples(6, seed=9)
    solve = ridge.RidgeProblem._solve

    def fails_below_one(self, regularization):
        if regularization < 1.0:
            return solve(self, -1e30)  # not positive definite: the Cholesky path's error
        return solve(self, regularization)

    monkeypatch.setattr(ridge, "EIGH_MAX_SIZE", 0)
    monkeypatch.setattr(ridge.RidgeProblem, "_solve", fails_below_one)
    options = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-3, 1.0])
    with caplog.at_level("WARNING"):
        _fit_with(options, samples, tmp_path, "one")
    assert "ridge strength -1e+30 is too weak" in caplog.text
    with pytest.raises(ValueError, match="no ridge strength"):
        _fit_with(
            TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-3]),
            samples,
            tmp_path,
            "none",
        )
