"""Two-stage configuration validation and the restart file."""

from __future__ import annotations

import types

import pytest
import yaml

from rhocore.backend import PluginOptions
from rhocore.config import ConfigError, load_config, resolve_config
from rhocore.plugins import get_plugin_manager, get_registry, hookimpl
from rhocore.target import Target


class SigmaTarget(Target):
    """An in-test target with one float option."""

    name = "sigma_target"

    class Options(PluginOptions):
        sigma: float = 0.1

    def weights(self, orbitals):
        return orbitals.occupations.copy()


@pytest.fixture
def registry():
    plugin = types.ModuleType("config_test_plugin")

    @hookimpl
    def rhocore_register_targets():
        return [SigmaTarget]

    plugin.rhocore_register_targets = rhocore_register_targets
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    return get_registry(manager)


def test_plugin_options_are_validated_by_the_plugin(registry):
    config = resolve_config(
        {"target": {"name": "sigma_target", "options": {"sigma": 0.3}}}, registry=registry
    )
    assert config.make_target().options.sigma == 0.3
    assert config.model_cls.name == "linear"


def test_bad_option_value_names_the_yaml_path(registry):
    with pytest.raises(ConfigError, match=r"target\.options\.sigma"):
        resolve_config(
            {"target": {"name": "sigma_target", "options": {"sigma": "wide"}}}, registry=registry
        )


def test_unknown_option_is_rejected_with_its_path(registry):
    with pytest.raises(ConfigError, match=r"target\.options\.sigmma"):
        resolve_config(
            {"target": {"name": "sigma_target", "options": {"sigmma": 1}}}, registry=registry
        )


def test_unknown_section_is_rejected(registry):
    with pytest.raises(ConfigError, match="trainig"):
        resolve_config({"trainig": {}}, registry=registry)


def test_unknown_plugin_name_suggests_the_close_one(registry):
    with pytest.raises(ConfigError, match="Did you mean 'sigma_target'"):
        resolve_config({"target": {"name": "sigma_targt"}}, registry=registry)


def test_bad_training_option_names_its_path(registry):
    with pytest.raises(ConfigError, match=r"training\.learning_rate"):
        resolve_config({"training": {"learning_rate": "fast"}}, registry=registry)


def test_expanded_config_reloads_to_the_same_values(registry, tmp_path):
    first = resolve_config({"target": {"name": "sigma_target"}}, registry=registry)
    path = tmp_path / "options_restart.yaml"
    path.write_text(yaml.safe_dump(first.to_dict()))
    second = load_config(path, registry=registry)
    assert second.to_dict() == first.to_dict()
    assert second.to_dict()["target"]["options"] == {"sigma": 0.1}


def test_missing_structure_file_is_named(registry, tmp_path):
    config = resolve_config(
        {"structures": {"file": "nowhere.xyz"}}, base_dir=tmp_path, registry=registry
    )
    with pytest.raises(ConfigError, match="nowhere.xyz"):
        config.read_structures()


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)
