"""The command line: listing plugins, schemas, and user errors without tracebacks."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rhocore.cli import cli


def test_plugins_lists_the_builtin_models_with_their_distribution():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "linear" in result.output and "nonlinear" in result.output
    assert "rhocore" in result.output


def test_schema_prints_the_options_of_a_model():
    result = CliRunner().invoke(cli, ["schema", "model", "linear"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["type"] == "object"


def test_schema_of_the_training_section_documents_its_fields():
    result = CliRunner().invoke(cli, ["schema", "training"])
    properties = json.loads(result.output)["properties"]
    assert all("description" in field for field in properties.values())


def test_unknown_plugin_name_is_a_message_not_a_traceback():
    result = CliRunner().invoke(cli, ["schema", "model", "linaer"])
    assert result.exit_code == 1
    assert "Did you mean 'linear'?" in result.output
    assert "Traceback" not in result.output


def test_invalid_config_names_the_yaml_path(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model: {name: linear}\ntraining: {epochs: many}\n")
    dataset = tmp_path / "d.h5"
    dataset.write_bytes(b"")
    result = CliRunner().invoke(cli, ["train", str(config), "--dataset", str(dataset)])
    assert result.exit_code == 1
    assert "training.epochs" in result.output
