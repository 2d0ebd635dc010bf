"""Choosing the ridge strength on STM images: what it refuses, before any training."""

from __future__ import annotations

import types

import pytest

from rhocore.data.dataset import DatasetWriter
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.target import Target
from rhocore.stm.selection import StmImageScore, StmSelectionOptions
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata
from rhocore.training.scorers import Scorers


class HomoStub(Target):
    """The synthetic data's target: no energy window."""

    name = "homo"

    class Options(Target.Options):
        spin: str = "both"

    def weights(self, orbitals):
        raise AssertionError("the score refuses the data before any field")


@pytest.fixture
def registry():
    plugin = types.ModuleType("selection_test_targets")
    plugin.rhocore_register_targets = hookimpl(lambda: [HomoStub])
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    return get_registry(manager)


def test_image_selection_refuses_data_that_are_not_an_ildos_and_names_the_file(tmp_path, registry):
    path = tmp_path / "homo.h5"
    with DatasetWriter(path, synthetic_metadata()) as writer:
        writer.write(synthetic_entry(0))
    with pytest.raises(ValueError, match=rf"STM images of the data in {path}: .* not an ILDOS"):
        StmImageScore(path, [0], StmSelectionOptions(), registry)


def test_image_selection_without_validation_structures_says_how_to_get_them(tmp_path):
    with pytest.raises(ValueError, match="split.validation_fraction > 0"):
        StmImageScore(tmp_path / "any.h5", [], StmSelectionOptions())


#: The scorers a run finds through the plugin hooks.
SCORERS = Scorers(get_registry().classes("scorer"))


def test_training_knows_the_image_score_as_stm_images_with_its_options():
    assert SCORERS.get("stm-images") is StmImageScore
    assert get_registry().info("scorer", "stm-images").distribution == "rhocore"
    options = SCORERS.options("stm-images", {"height": 2.5})
    assert isinstance(options, StmSelectionOptions)
    assert (options.height, options.spacing) == (2.5, 0.15)
    assert SCORERS.options("loss", {}) is None


def test_scorer_options_are_checked_by_the_scorer_with_their_yaml_path():
    with pytest.raises(ValueError, match=r"ridge_selection_options\.hieght: Extra inputs"):
        SCORERS.options("stm-images", {"hieght": 3.0})
    with pytest.raises(ValueError, match=r"ridge_selection_options\.height: .*greater than 0"):
        SCORERS.options("stm-images", {"height": -1.0})


def test_an_unknown_scorer_is_refused_with_the_known_names():
    with pytest.raises(
        ValueError, match=r"choose one of loss, stm-images. Did you mean 'stm-images'"
    ):
        SCORERS.get("stm-image")
    with pytest.raises(ValueError, match=r"choose one of loss\.$"):
        Scorers([]).build("stm-images", {}, "data.h5", [0])


def test_a_plugin_registers_its_own_validation_scorer():
    class HalfLossScorer:
        name = "half-loss"
        Options = StmSelectionOptions

    plugin = types.ModuleType("scorer_plugin")
    plugin.rhocore_register_scorers = hookimpl(lambda: [HalfLossScorer])
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    scorers = Scorers(get_registry(manager).classes("scorer"))
    assert scorers.names() == ["loss", "half-loss", "stm-images"]
    assert scorers.get("half-loss") is HalfLossScorer
