"""The plugin registry: discovery through hooks, and the errors users see."""

from __future__ import annotations

import types

import pytest

from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import PluginError, get_plugin_manager, get_registry
from rhocore.qc.target import Target


class _Options(PluginOptions):
    scale: float = 1.0


def _make_target(name: str) -> type[Target]:
    class InTestTarget(Target):
        Options = _Options

        def weights(self, orbitals):
            return orbitals.occupations * self.options.scale

    InTestTarget.name = name
    return InTestTarget


def _plugin(module_name: str, *targets: type) -> types.ModuleType:
    module = types.ModuleType(module_name)

    @hookimpl
    def rhocore_register_targets():
        return list(targets)

    module.rhocore_register_targets = rhocore_register_targets
    return module


def _manager_with(*plugins: types.ModuleType):
    manager = get_plugin_manager(load_entry_points=False)
    for plugin in plugins:
        manager.register(plugin)
    return manager


def test_in_test_plugin_target_is_found_by_name():
    cls = _make_target("scaled")
    registry = get_registry(_manager_with(_plugin("scaled_plugin", cls)))
    assert registry.get("target", "scaled") is cls
    assert "scaled" in registry.names("target")


def test_builtin_models_register_through_the_same_hooks():
    registry = get_registry(get_plugin_manager(load_entry_points=False))
    assert {"linear", "nonlinear"} <= set(registry.names("model"))


def test_unknown_name_lists_known_names_and_guesses():
    cls = _make_target("scaled")
    registry = get_registry(_manager_with(_plugin("scaled_plugin", cls)))
    with pytest.raises(PluginError) as error:
        registry.get("target", "scalde")
    message = str(error.value)
    assert "unknown target 'scalde'" in message
    assert "Known targets: scaled" in message
    assert "Did you mean 'scaled'?" in message


def test_unknown_known_provider_name_gives_pip_hint():
    registry = get_registry(get_plugin_manager(load_entry_points=False))
    with pytest.raises(PluginError, match="pip install rhocore-aims"):
        registry.get("backend", "aims")


def test_two_plugins_with_one_name_are_an_error_naming_both():
    first = _plugin("first_plugin", _make_target("twin"))
    second = _plugin("second_plugin", _make_target("twin"))
    with pytest.raises(PluginError) as error:
        get_registry(_manager_with(first, second))
    message = str(error.value)
    assert "two target plugins are named 'twin'" in message
    assert "first_plugin" in message and "second_plugin" in message


def test_each_manager_is_fresh():
    cls = _make_target("only_here")
    get_registry(_manager_with(_plugin("p", cls)))
    assert "only_here" not in get_registry(get_plugin_manager()).names("target")
