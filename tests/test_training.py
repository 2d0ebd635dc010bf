"""Training: convergence on exact data, resume, reproducibility and checkpoint versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from training_data import LAYOUT, linear_samples, make_descriptor

from rhocore.models.linear import LinearModel
from rhocore.models.nonlinear import NonlinearModel
from rhocore.training import trainer
from rhocore.training.checkpoints import (
    CHECKPOINT_FORMAT_VERSION,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from rhocore.training.options import TrainingOptions
from rhocore.training.trainer import predict, train

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def samples():
    return linear_samples(24, seed=3)


def _run(model_cls, samples, run_dir, *, options=None, epochs=8, seed=0, resume=True):
    descriptor = make_descriptor()
    model = model_cls(options, LAYOUT, descriptor.feature_sizes())
    settings = TrainingOptions(
        epochs=epochs, batch_size=5, learning_rate=0.05, seed=seed, ridge_warm_start=False
    )
    result = train(
        model, descriptor, samples[:20], samples[20:], settings, run_dir, resume, progress=False
    )
    return model, descriptor, result


@pytest.mark.slow
def test_linear_model_learns_exactly_linear_coefficients(samples, tmp_path):
    _, _, result = _run(LinearModel, samples, tmp_path, epochs=120)
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 1e-3 * first["train_loss"], result.history[-1]
    assert result.best_loss < 1e-2 * first["validation_loss"]
    log = (tmp_path / "train.log").read_text()
    assert "epoch 120 train_loss" in log and "validation_loss" in log


@pytest.mark.slow
def test_interrupted_training_resumes_from_the_saved_epoch(samples, tmp_path, monkeypatch):
    _, _, straight = _run(LinearModel, samples, tmp_path / "straight", epochs=10)

    def save_then_die(path, checkpoint):
        save_checkpoint(path, checkpoint)
        if checkpoint["epoch"] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)  # where the loop looks it up
    with pytest.raises(KeyboardInterrupt):
        _run(LinearModel, samples, tmp_path / "resumed", epochs=10)
    monkeypatch.setattr(trainer, "save_checkpoint", save_checkpoint)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.ckpt")["epoch"] == 4
    _, _, resumed = _run(LinearModel, samples, tmp_path / "resumed", epochs=10)

    assert "resuming from" in (tmp_path / "resumed" / "train.log").read_text()
    assert [h["epoch"] for h in resumed.history] == list(range(1, 11))
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-10)
        assert a["validation_loss"] == pytest.approx(b["validation_loss"], rel=1e-10)


def test_seeded_runs_are_reproducible_and_the_seed_matters(samples, tmp_path):
    options = {"hidden_sizes": [4]}
    runs = [
        _run(NonlinearModel, samples, tmp_path / name, options=options, epochs=3, seed=seed)
        for name, seed in [("a", 1), ("b", 1), ("c", 2)]
    ]
    (model_a, _, a), (model_b, _, b), (model_c, _, c) = runs
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for (name, x), y in zip(
        model_a.state_dict().items(), model_b.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
    assert a.history[-1]["train_loss"] != c.history[-1]["train_loss"]


def test_loaded_checkpoint_predicts_like_the_trained_model(samples, tmp_path):
    model, descriptor, result = _run(LinearModel, samples, tmp_path, epochs=4)
    loaded, loaded_descriptor, layout = load_model(result.checkpoint)
    assert layout == LAYOUT and loaded_descriptor.species == [1, 8]
    frames = [sample.atoms for sample in samples[20:]]
    for x, y in zip(
        predict(model, descriptor, frames), predict(loaded, loaded_descriptor, frames), strict=True
    ):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


def test_checkpoint_of_another_model_is_not_resumed(samples, tmp_path):
    _run(LinearModel, samples, tmp_path, epochs=1)
    with pytest.raises(ValueError, match="belongs to a different model"):
        _run(NonlinearModel, samples, tmp_path, options={"hidden_sizes": [4]}, epochs=2)


def test_checkpoint_from_a_newer_format_is_refused_naming_its_release(tmp_path):
    checkpoint = load_checkpoint(DATA / "checkpoint_v1.ckpt")
    checkpoint["format_version"] = CHECKPOINT_FORMAT_VERSION + 1
    checkpoint["rhocore_version"] = "9.4.0"
    save_checkpoint(tmp_path / "new.ckpt", checkpoint)
    with pytest.raises(ValueError, match=r"written by rhocore 9\.4\.0.*rhocore>=9\.4\.0"):
        load_model(tmp_path / "new.ckpt")


def test_stored_format_1_checkpoint_still_loads_and_predicts(samples):
    model, descriptor, layout = load_model(DATA / "checkpoint_v1.ckpt")
    assert isinstance(model, LinearModel) and layout == LAYOUT
    vectors = predict(model, descriptor, [samples[0].atoms])
    assert vectors[0].shape == samples[0].coefficients.shape
    assert np.isfinite(vectors[0]).all() and np.abs(vectors[0]).max() > 0


@pytest.mark.slow
def test_full_batch_lbfgs_fits_exactly_linear_coefficients_in_few_epochs(samples, tmp_path):
    descriptor = make_descriptor()
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    settings = TrainingOptions(
        optimizer="lbfgs", learning_rate=1.0, epochs=10, ridge_warm_start=False
    )
    result = train(
        model, descriptor, samples[:20], samples[20:], settings, tmp_path, progress=False
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 1e-4 * first["train_loss"], result.history
    assert result.best_loss < 1e-2 * first["validation_loss"]


def test_closed_form_ridge_recovers_exactly_linear_coefficients(samples, tmp_path):
    descriptor = make_descriptor()
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    settings = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-12, 1e-6, 1.0])
    result = train(
        model, descriptor, samples[:20], samples[20:], settings, tmp_path, progress=False
    )
    losses = [entry["validation_loss"] for entry in result.history]
    # the data are exactly linear, so the weakest regularisation wins and fits them
    assert result.best_epoch == 1 and losses[0] < losses[-1]
    assert result.best_loss < 1e-8 * losses[-1] + 1e-12
    reference = torch.tensor(samples[21].coefficients)
    predicted = torch.tensor(predict(model, descriptor, [samples[21].atoms])[0])
    assert torch.allclose(predicted, reference, atol=1e-4 * reference.abs().max())


def test_a_validation_score_overrides_the_loss_in_the_choice_of_ridge_strength(samples, tmp_path):
    # The loss prefers the weakest strength (exactly linear data); this score, the norm of
    # the weights, the strongest: the score must decide, the loss only be recorded.
    descriptor = make_descriptor()
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    settings = TrainingOptions(optimizer="ridge", ridge_regularizations=[1e-12, 1e-6, 1.0])
    seen = []

    def weight_norm(scored, descriptor):
        assert scored is model and descriptor is not None
        norm = float(sum(torch.sum(p**2) for p in scored.parameters()))
        seen.append(norm)
        return {"score": norm, "weight_norm": norm}

    result = train(
        model,
        descriptor,
        samples[:20],
        samples[20:],
        settings,
        tmp_path,
        progress=False,
        validation_score=weight_norm,
    )
    assert seen[2] < seen[0] and result.best_epoch == 3
    assert [row["validation_score"] for row in result.history] == seen
    assert result.best_loss == result.history[2]["validation_loss"]
    assert result.history[0]["validation_loss"] < result.best_loss


def test_image_selection_of_the_ridge_strength_needs_optimizer_ridge():
    with pytest.raises(ValueError, match="ridge_selection 'stm-images' chooses among the ridge"):
        TrainingOptions(optimizer="adam", ridge_selection="stm-images")
    options = TrainingOptions(
        optimizer="ridge", ridge_selection="stm-images", ridge_selection_options={"height": 2.0}
    )
    assert options.ridge_selection_options == {"height": 2.0}


def test_scorer_options_need_a_scorer_and_the_old_stm_key_says_its_new_name():
    with pytest.raises(ValueError, match="ridge_selection 'loss' takes none"):
        TrainingOptions(optimizer="ridge", ridge_selection_options={"height": 2.0})
    with pytest.raises(ValueError, match="stm_selection is now training.ridge_selection_options"):
        TrainingOptions.model_validate(
            {"optimizer": "ridge", "ridge_selection": "stm-images", "stm_selection": {}}
        )


def test_ridge_refuses_a_model_it_cannot_solve(samples, tmp_path):
    descriptor = make_descriptor()
    model = NonlinearModel({"heads": 2}, LAYOUT, descriptor.feature_sizes())
    with pytest.raises(ValueError, match="linear model only"):
        train(
            model,
            descriptor,
            samples[:20],
            samples[20:],
            TrainingOptions(optimizer="ridge"),
            tmp_path,
            progress=False,
        )


@pytest.mark.slow
def test_nonlinear_training_starts_from_the_closed_form_linear_fit(samples, tmp_path):
    descriptor = make_descriptor()
    ridge_only = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    ridge = train(
        ridge_only,
        descriptor,
        samples[:20],
        samples[20:],
        TrainingOptions(optimizer="ridge"),
        tmp_path / "ridge",
        progress=False,
    )
    model = NonlinearModel(None, LAYOUT, descriptor.feature_sizes())
    result = train(
        model,
        descriptor,
        samples[:20],
        samples[20:],
        TrainingOptions(optimizer="lbfgs", learning_rate=1.0, epochs=3),
        tmp_path / "warm",
        progress=False,
    )
    # gradient steps can only keep or improve on the warm start's validation loss
    assert result.best_loss <= ridge.best_loss * (1 + 1e-9)
