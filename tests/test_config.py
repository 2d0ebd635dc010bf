"""Two-stage configuration validation and the restart file."""

from __future__ import annotations

import types

import pytest
import yaml

from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.target import Target
from rhocore.workflows.config import ConfigError, load_config, resolve_config


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


# ----- random configurations: a usable config or one ConfigError, nothing else -----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rhocore.descriptors.features import DescriptorOptions  # noqa: E402
from rhocore.training.options import TrainingOptions  # noqa: E402

INSTALLED = get_registry()
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def keys_of(*models) -> st.SearchStrategy[str]:
    """Field names of ``models`` (mostly) and random text (an unknown key)."""
    known = sorted({name for model in models for name in model.model_fields})
    return st.sampled_from(known) | st.text(max_size=8)


def plugin_section(kind: str) -> st.SearchStrategy:
    classes = [INSTALLED.get(kind, name) for name in INSTALLED.names(kind)]
    names = st.sampled_from(INSTALLED.names(kind)) if classes else st.nothing()
    options = st.dictionaries(keys_of(*(cls.Options for cls in classes)), VALUES, max_size=3)
    return (
        st.fixed_dictionaries(
            {"name": names | st.text(max_size=8)}, optional={"options": options | VALUES}
        )
        | VALUES
    )


SECTIONS = {
    "structures": st.fixed_dictionaries(
        {"file": st.text(min_size=1, max_size=8)},
        optional={"index": st.just(":") | VALUES, "format": VALUES, "x": VALUES},
    )
    | VALUES,
    "backend": plugin_section("backend"),
    "target": plugin_section("target"),
    "model": plugin_section("model"),
    "descriptor": st.dictionaries(keys_of(DescriptorOptions), VALUES, max_size=3) | VALUES,
    "training": st.dictionaries(keys_of(TrainingOptions), VALUES, max_size=3) | VALUES,
    "split": st.dictionaries(
        st.sampled_from(["test_fraction", "validation_fraction", "seed", "x"]),
        st.floats(0, 1) | VALUES,
    ),
    "sections": st.text(max_size=8).flatmap(lambda name: st.just({name: {}})),
}
CONFIGS = st.fixed_dictionaries({}, optional={k: v for k, v in SECTIONS.items() if k != "sections"})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=CONFIGS, extra=SECTIONS["sections"] | st.just({}))
def test_random_configs_resolve_or_give_one_config_error(data, extra):
    try:
        resolve_config(data | extra, source="run.yaml", registry=INSTALLED)
    except ConfigError as error:
        message = str(error)
        assert message.startswith("run.yaml: ") and "\n" not in message, message


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=80))
def test_random_yaml_text_is_a_config_or_one_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "run.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, registry=INSTALLED)
    except ConfigError as error:
        assert str(path) in str(error) and "\n" not in str(error), str(error)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize(
    ("section", "path"),
    [
        ("descriptor: {cutoff: %s}", "descriptor.cutoff"),
        ("split: {seed: 1, test_fraction: %s}", "split.test_fraction"),
    ],
)
def test_nan_and_infinite_numbers_are_refused_with_their_path(value, section, path):
    with pytest.raises(ConfigError, match=rf"{path}: Input should be a finite number \(got"):
        resolve_config(yaml.safe_load(section % value), source="run.yaml")


def test_a_file_name_alone_is_short_for_the_structures_file(registry, tmp_path):
    path = tmp_path / "short.yaml"
    path.write_text("structures: water.xyz\n")
    short = load_config(path, registry=registry)
    long = resolve_config(
        {"structures": {"file": "water.xyz"}}, base_dir=tmp_path, registry=registry
    )
    assert short.raw.structures == long.raw.structures
    assert short.to_dict()["structures"] == {"file": "water.xyz", "index": ":", "format": None}
    with pytest.raises(ConfigError, match="structures"):
        resolve_config({"structures": 3}, registry=registry)
