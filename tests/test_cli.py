"""The command line: listing plugins, schemas, and user errors without tracebacks."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import rhocore.workflows.config as config_module
from rhocore.cli import cli
from rhocore.data.dataset import DatasetError
from rhocore.data.structure_files import StructureError
from rhocore.errors import InputError, MissingFileError, RhocoreError
from rhocore.models.file import PredictionError
from rhocore.parallel.executor import ExecutorError
from rhocore.plugins.registry import PluginError
from rhocore.qc.backend import BackendSetupError
from rhocore.qc.properties import PropertiesNotAvailableError
from rhocore.qc.rifit import IllConditionedMetricError
from rhocore.workflows.config import ConfigError
from rhocore.workflows.export import ExportError


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


@pytest.mark.parametrize(
    ("error", "also"),
    [
        (BackendSetupError, Exception),
        (ConfigError, ValueError),
        (DatasetError, ValueError),
        (ExecutorError, RuntimeError),
        (ExportError, ValueError),
        (IllConditionedMetricError, ValueError),
        (InputError, ValueError),
        (MissingFileError, FileNotFoundError),
        (PluginError, LookupError),
        (PredictionError, ValueError),
        (PropertiesNotAvailableError, NotImplementedError),
        (StructureError, ValueError),
    ],
)
def test_user_errors_are_rhocore_errors_and_keep_their_builtin_base(error, also):
    assert issubclass(error, RhocoreError) and issubclass(error, also)


def test_a_user_error_is_one_line_without_traceback(tmp_path):
    source = tmp_path / "model.pt"
    source.write_bytes(b"")
    arguments = ["stm", str(source), "slab.xyz", "--bias=-1", "--mode=constant-height"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [
        "Error: a constant-height image takes --height (angstrom above the topmost atom) "
        "and no --isovalue"
    ]


def test_a_missing_run_directory_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "missing")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1
    assert f"no run directory or model file at '{tmp_path / 'missing'}'" in result.output


def test_a_bug_deep_inside_a_command_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(text):
        raise ValueError("operands could not be broadcast together")

    config = tmp_path / "run.yaml"
    config.write_text("structures: water.xyz\n")
    monkeypatch.setattr(config_module.yaml, "safe_load", broken)
    with pytest.raises(ValueError, match="broadcast") as raised:
        CliRunner().invoke(cli, ["generate", str(config)], catch_exceptions=False)
    assert not isinstance(raised.value, RhocoreError)
    assert "load_yaml" in [entry.name for entry in raised.traceback]
