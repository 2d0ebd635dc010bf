"""Closed-form ridge with a support smaller than the training set (subset of regressors)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from rhocore.descriptors.tensormaps import split_structures
from rhocore.models.kernel import KernelModel
from rhocore.models.linear import LinearModel, dense, support_ridge
from rhocore.models.linear.ridge import RidgeProblem, set_dual_weights
from rhocore.models.linear.support_ridge import SupportRidgeProblem
from rhocore.training.options import TrainingOptions
from rhocore.training.trainer import predict, train
from tests.training_data import LAYOUT, linear_samples, make_descriptor

#: Coefficients of one water molecule in the test layout.
WATER = LAYOUT.size([8, 1, 1])


def _problem_inputs(descriptor, samples):
    features = split_structures(descriptor.compute([s.atoms for s in samples]), len(samples))
    numbers = [s.atoms.numbers for s in samples]
    return features, numbers, [s.coefficients for s in samples], [s.metric for s in samples]


@pytest.mark.parametrize(
    ("model_cls", "options"), [(KernelModel, {"zeta": 2}), (LinearModel, None)]
)
def test_the_whole_training_set_as_support_gives_the_full_dual_solution(model_cls, options):
    descriptor = make_descriptor()
    samples = linear_samples(6, seed=21)
    frames = [s.atoms for s in linear_samples(3, seed=22)]
    inputs = _problem_inputs(descriptor, samples)
    model = model_cls(options, LAYOUT, descriptor.feature_sizes())
    model.prepare(inputs[0])
    RidgeProblem(model, *inputs).apply(1e-3)
    expected = predict(model, descriptor, frames)
    SupportRidgeProblem(model, *inputs, support=len(samples)).apply(1e-3)
    for got, want in zip(predict(model, descriptor, frames), expected, strict=True):
        assert np.allclose(got, want, rtol=1e-6, atol=1e-8 * np.abs(want).max())


@pytest.mark.slow
@pytest.mark.parametrize("column_block", [2048, 7])
def test_a_smaller_support_minimises_the_subset_of_regressors_loss(
    tmp_path, monkeypatch, column_block
):
    """Against the loss written out from the model's own predictions: column j of K_NM is
    the change of every training prediction when dual weight j alone is one. The normal
    matrix is built in one block of columns and in several."""
    monkeypatch.setattr(dense, "COLUMN_BLOCK", column_block)
    descriptor = make_descriptor()
    samples = linear_samples(10, seed=23)
    strength, support = 1e-3, 3
    options = TrainingOptions(
        optimizer="ridge", ridge_regularizations=[strength], ridge_max_support=support * WATER
    )
    model = KernelModel({"zeta": 2}, LAYOUT, descriptor.feature_sizes())
    train(model, descriptor, samples, samples[:2], options, tmp_path / "run", progress=False)
    assert model.layers["0_8"].support.shape[0] == support  # one O atom per water
    frames = [s.atoms for s in samples]
    trained = np.concatenate(predict(model, descriptor, frames))

    problem = SupportRidgeProblem(model, *_problem_inputs(descriptor, samples), support=support)
    size = len(problem.vectors)
    columns = []
    for alpha in np.eye(size + 1)[:, :size]:  # the last row: every dual weight zero
        set_dual_weights(model, problem.groups, problem.vectors, problem.row_targets, alpha)
        columns.append(np.concatenate(predict(model, descriptor, frames)))
    baseline = columns.pop()
    kernel = np.array(columns).T - baseline[:, None]  # K_NM
    metric = scipy.linalg.block_diag(*[s.metric for s in samples])
    targets = np.concatenate([s.coefficients for s in samples]) - baseline
    normal = kernel.T @ metric @ kernel + strength * kernel[:size]  # K_MM: the support's rows
    expected = baseline + kernel @ np.linalg.solve(normal, kernel.T @ metric @ targets)
    assert np.allclose(trained, expected, rtol=1e-6, atol=1e-8 * np.abs(expected).max())
    # the structures outside the support enter the fit
    alone = KernelModel({"zeta": 2}, LAYOUT, descriptor.feature_sizes())
    train(alone, descriptor, samples[:support], samples[:2], options, tmp_path / "alone", False)
    assert not np.allclose(np.concatenate(predict(alone, descriptor, frames)), trained)


def test_a_training_set_beyond_the_dense_limit_is_fitted_on_a_support(tmp_path, monkeypatch):
    monkeypatch.setattr(support_ridge, "MAX_DUAL_SIZE", 2 * WATER + 1)
    samples = linear_samples(5, seed=24)
    descriptor = make_descriptor()
    model = KernelModel({"zeta": 2}, LAYOUT, descriptor.feature_sizes())
    options = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-3])
    train(model, descriptor, samples, samples[:2], options, tmp_path / "run", progress=False)
    log = (tmp_path / "run" / "train.log").read_text()
    assert f"the first 2 of 5 training structures ({2 * WATER} coefficients)" in log
    assert model.layers["1_1"].support.shape[0] == 4  # the H atoms of two waters


def test_a_support_smaller_than_one_structure_is_refused_by_name(tmp_path):
    descriptor = make_descriptor()
    model = KernelModel({"zeta": 2}, LAYOUT, descriptor.feature_sizes())
    options = TrainingOptions(optimizer="ridge", ridge_max_support=WATER - 1)
    samples = linear_samples(3, seed=25)
    with pytest.raises(ValueError, match=f"alone has {WATER} coefficients.*ridge_max_support"):
        train(model, descriptor, samples, samples[:1], options, tmp_path / "run", progress=False)
