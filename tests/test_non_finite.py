"""NaN and infinity: refused in structures where they are read, and in predictions before
they are written, with the structure named in one line."""

from __future__ import annotations

import types

import ase
import ase.io
import numpy as np
import pytest
from click.testing import CliRunner

import rhocore.workflows.evaluate as evaluate_workflow
import rhocore.workflows.predict as predict_workflow
from rhocore.cli import cli
from rhocore.data.dataset import DatasetWriter
from rhocore.data.structure_files import StructureError, read_structure_file
from rhocore.models.file import PredictionError
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata
from rhocore.workflows.config import ConfigError, resolve_config
from rhocore.workflows.evaluate import evaluate
from rhocore.workflows.stm import load_source


def water(**changes) -> ase.Atoms:
    atoms = ase.Atoms(
        "OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=np.eye(3) * 6, pbc=True
    )
    if "position" in changes:
        atoms.positions[1, 2] = changes["position"]
    if "cell" in changes:
        atoms.cell[2, 2] = changes["cell"]
    return atoms


@pytest.mark.parametrize(
    ("change", "name"),
    [({"position": np.nan}, "positions"), ({"position": -np.inf}, "positions"),
     ({"cell": np.inf}, "cell")],
)  # fmt: skip
def test_a_non_finite_structure_is_refused_naming_file_and_frame(tmp_path, change, name):
    path = tmp_path / "frames.extxyz"
    ase.io.write(path, [water(), water(), water(**change)])
    with pytest.raises(StructureError) as error:
        read_structure_file(path)
    assert str(error.value) == (
        f"frame 2 of '{path}' (H2O) has NaN or infinite {name}; fix or remove that structure"
    )
    with pytest.raises(StructureError, match=rf"structure 1 of index '1:' of '{path}'"):
        read_structure_file(path, index="1:")
    config = resolve_config({"structures": {"file": path.name}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=rf"^structures.file: frame 2 of '{path}'"):
        config.read_structures()


def test_an_unreadable_or_empty_structure_file_is_named(tmp_path):
    path = tmp_path / "broken.xyz"
    path.write_text("3\ncomment\nO 0 0\n")
    with pytest.raises(StructureError, match=rf"ASE cannot read structures from '{path}'"):
        read_structure_file(path)
    ase.io.write(tmp_path / "one.xyz", water())
    with pytest.raises(StructureError, match="holds no structures"):
        read_structure_file(tmp_path / "one.xyz", index="5:")


def stub_model(value: float = 0.0):
    """A model that predicts ``value`` for every coefficient of the synthetic layout."""
    metadata = synthetic_metadata()
    return types.SimpleNamespace(
        dataset_metadata=metadata,
        predict=lambda frames: [
            np.full(metadata.layout.size(atoms.numbers), value) for atoms in frames
        ],
    )


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_predictions_are_errors_naming_the_structure(tmp_path, monkeypatch, value):
    ase.io.write(tmp_path / "frames.extxyz", [water(), water()])
    (tmp_path / "model.pt").write_bytes(b"stub")
    monkeypatch.setattr(predict_workflow, "load_model_file", lambda path: stub_model(value))
    result = CliRunner().invoke(
        cli,
        ["predict", str(tmp_path / "model.pt"), str(tmp_path / "frames.extxyz")]
        + ["-o", str(tmp_path / "predicted.h5")],
    )
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert f"predicted 51 NaN or infinite coefficients for frame 0 of '{tmp_path}" in result.output
    assert not (tmp_path / "predicted.h5").exists()

    with DatasetWriter(tmp_path / "data.h5", synthetic_metadata()) as writer:
        writer.write(synthetic_entry(7))
    monkeypatch.setattr(evaluate_workflow, "load_model_file", lambda path: stub_model(value))
    with pytest.raises(PredictionError, match=r"for entry 7 of .*data\.h5 \(H2O\)"):
        evaluate(tmp_path / "model.pt", tmp_path / "data.h5", grid=False, progress=False)
    with pytest.raises(PredictionError, match=r"for frame 1 of '.*frames\.extxyz'"):
        load_source(stub_model(value), tmp_path / "frames.extxyz", frame=1)


def test_predict_refuses_a_non_finite_structure_in_one_line(tmp_path, monkeypatch):
    ase.io.write(tmp_path / "frames.extxyz", [water(), water(position=np.nan)])
    (tmp_path / "model.pt").write_bytes(b"stub")
    monkeypatch.setattr(predict_workflow, "load_model_file", lambda path: stub_model())
    result = CliRunner().invoke(
        cli,
        ["predict", str(tmp_path / "model.pt"), str(tmp_path / "frames.extxyz")]
        + ["-o", str(tmp_path / "predicted.h5")],
    )
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "frame 1 of" in result.output and "has NaN or infinite positions" in result.output
