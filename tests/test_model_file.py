"""``model.pt``: one metatomic model file that engines load without rhocore or featomic,
read by every rhocore command through one prediction path; version-1 files still work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import h5py
import metatensor.torch
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from metatomic.torch import AtomisticModel, ModelMetadata, load_atomistic_model

from rhocore.cli import cli
from rhocore.data.dataset import Dataset, DatasetWriter
from rhocore.descriptors.tensormaps import tensormap_to_coefficients
from rhocore.errors import InputError
from rhocore.models.file import load_model_file, model_file_of, save_model_file
from rhocore.models.linear import LinearModel
from rhocore.testing.datasets import SYNTHETIC_LAYOUT, synthetic_entry, synthetic_metadata
from rhocore.testing.models import random_waters
from rhocore.training.trainer import predict
from tests.legacy_model_file import save_version_1_model_file
from tests.training_data import DESCRIPTOR_OPTIONS, LAYOUT, make_descriptor

#: A metatomic engine in a process where rhocore and featomic cannot be imported: it
#: loads the model file with its extensions folder and writes each structure's output.
BLOCKED_ENGINE = """
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith(("rhocore", "featomic")):
            raise ImportError(f"{name} is blocked in this process")
        return None

sys.meta_path.insert(0, Refuse())
for blocked in ("rhocore", "featomic"):
    try:
        __import__(blocked)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the import blocker did not block {blocked}")

import json
import ase.io
import metatensor.torch
from metatomic.torch import ModelOutput, load_atomistic_model
from metatomic_ase import MetatomicCalculator

model_path, extensions, structures, output = sys.argv[1:5]
model = load_atomistic_model(model_path, extensions_directory=extensions)
name = json.loads(model.metadata().extra["rhocore"])["output"]
calculator = MetatomicCalculator(
    model_path, extensions_directory=extensions, check_consistency=True
)
for index, atoms in enumerate(ase.io.read(structures, ":")):
    tensor = calculator.run_model(atoms, {name: ModelOutput(sample_kind="atom")})[name]
    metatensor.torch.save(f"{output}/{index}.mts", tensor)
loaded = sorted(n for n in sys.modules if n.split(".")[0].startswith(("rhocore", "featomic")))
if loaded:
    raise SystemExit(f"modules that should be blocked were loaded: {loaded}")
with open("/proc/self/maps") as maps:
    libraries = sorted({line.split()[-1] for line in maps if "featomic" in line})
print(json.dumps({"output": name, "featomic_libraries": libraries}))
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """`rhocore train` (ridge, linear) on a synthetic dataset of slabs and periodic cells."""
    root = tmp_path_factory.mktemp("trained")
    with DatasetWriter(root / "data.h5", synthetic_metadata()) as writer:
        for index in range(8):
            writer.write(synthetic_entry(index))
    config = {
        "model": {"name": "linear"},
        "descriptor": {"cutoff": 3.5, "max_radial": 2, "max_angular": 2},
        "training": {"optimizer": "ridge"},
        "split": {"test_fraction": 0.25, "validation_fraction": 0.2, "seed": 3},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(
        cli,
        ["train", str(root / "config.yaml"), "--dataset", str(root / "data.h5")]
        + ["-o", str(root / "run")],
    )
    assert result.exit_code == 0, result.output
    return root


def test_train_writes_a_checkpoint_and_one_metatomic_model_file_with_rhocore_metadata(
    trained_run,
):
    run = trained_run / "run"
    assert (run / "checkpoint.ckpt").exists() and (run / "model.pt").exists()
    assert list((run / "extensions").rglob("libfeatomic_torch.*"))

    info = json.loads(load_atomistic_model(run / "model.pt").metadata().extra["rhocore"])
    split = json.loads((run / "split.json").read_text())
    assert info["split"] == split and len(split["test"]) == 2
    assert info["output"] == "rhocore::homo" and info["model"]["name"] == "linear"
    assert info["descriptor"]["cutoff"] == 3.5 and info["species"] == [1, 8]
    model = load_model_file(run)
    assert model.test_indices == split["test"]
    assert model.dataset_metadata == Dataset(trained_run / "data.h5").metadata
    assert model.layout.nmax == SYNTHETIC_LAYOUT.nmax


def test_model_file_runs_in_a_process_without_rhocore_and_featomic_as_rhocore_predict(
    trained_run, tmp_path
):
    frames = [synthetic_entry(index).atoms for index in range(20, 24)]  # not trained on
    assert {tuple(atoms.pbc) for atoms in frames} == {(True, False, True), (True, False, False)}
    ase.io.write(tmp_path / "frames.extxyz", frames)
    run = trained_run / "run"
    result = CliRunner().invoke(
        cli,
        ["predict", str(run), str(tmp_path / "frames.extxyz"), "-o", str(tmp_path / "p.h5")],
    )
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "p.h5") as handle:
        predicted = [handle[f"structures/{i}/coefficients"][()] for i in range(len(frames))]

    (tmp_path / "engine").mkdir()
    command = [sys.executable, "-c", BLOCKED_ENGINE, str(run / "model.pt")]
    command += [str(run / "extensions"), str(tmp_path / "frames.extxyz"), str(tmp_path / "engine")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["output"] == "rhocore::homo"
    # featomic's libraries (its TorchScript extension among them) came from the folder
    # next to the model file
    featomic = report["featomic_libraries"]
    assert any("libfeatomic_torch" in path for path in featomic), featomic
    extensions = (run / "extensions").resolve()
    assert all(Path(path).resolve().is_relative_to(extensions) for path in featomic), featomic

    for index, (atoms, expected) in enumerate(zip(frames, predicted, strict=True)):
        tensor = metatensor.torch.load(str(tmp_path / "engine" / f"{index}.mts"))
        engine = tensormap_to_coefficients(tensor, [atoms.numbers], SYNTHETIC_LAYOUT)[0]
        assert np.abs(expected).max() > 1e-3, "prediction too small to prove anything"
        assert engine.shape == expected.shape
        assert np.abs(engine.numpy() - expected).max() <= 1e-10 * np.abs(expected).max(), index


def _random_linear_model() -> LinearModel:
    model = LinearModel(None, LAYOUT, make_descriptor().feature_sizes())
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model.eval()


def test_a_version_1_model_file_predicts_as_before_and_converts_with_export(tmp_path):
    model = _random_linear_model()
    metadata = synthetic_metadata(layout=LAYOUT)
    split = {"train": [0, 1], "validation": [2], "test": [3, 5]}
    save_version_1_model_file(
        tmp_path / "old.pt", model, DESCRIPTOR_OPTIONS, [1, 8], metadata, split
    )
    frames = random_waters(3, seed=9, molecules=2)
    # the descriptor and model computed apart from any model file
    expected = predict(model, make_descriptor(), frames)

    old = load_model_file(tmp_path / "old.pt")
    assert old.test_indices == [3, 5] and old.dataset_metadata == metadata
    for got, want in zip(old.predict(frames), expected, strict=True):
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())

    result = CliRunner().invoke(
        cli, ["export", str(tmp_path / "old.pt"), "-o", str(tmp_path / "new" / "model.pt")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "extensions").is_dir()
    new = load_model_file(tmp_path / "new")
    assert new.metadata["model_file_version"] == 2
    assert new.test_indices == [3, 5] and new.dataset_metadata == metadata
    assert new.metadata["model"] == {"name": "linear", "hypers": model.hypers()}
    for got, want in zip(new.predict(frames), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_model_files_rhocore_cannot_read_are_refused_naming_the_file(tmp_path):
    newer = model_file_of(
        _random_linear_model(), DESCRIPTOR_OPTIONS, [1, 8], synthetic_metadata(layout=LAYOUT), {}
    )
    newer.metadata["model_file_version"] = 3
    newer.save(tmp_path / "newer.pt")
    with pytest.raises(InputError, match=r"'.*newer\.pt' has model file version 3"):
        load_model_file(tmp_path / "newer.pt")

    ours = model_file_of(
        _random_linear_model(), DESCRIPTOR_OPTIONS, [1, 8], synthetic_metadata(layout=LAYOUT), {}
    )
    capabilities = ours.atomistic().capabilities()
    foreign = AtomisticModel(ours.module, ModelMetadata(name="someone else's"), capabilities)
    foreign.save(str(tmp_path / "foreign.pt"))
    with pytest.raises(InputError, match=r"'.*foreign\.pt' is a metatomic model without rhocore"):
        load_model_file(tmp_path / "foreign.pt")


def test_save_model_file_leaves_the_trained_model_as_it_was(tmp_path):
    model = _random_linear_model().train()
    save_model_file(
        tmp_path / "model.pt",
        model,
        DESCRIPTOR_OPTIONS,
        [1, 8],
        synthetic_metadata(layout=LAYOUT),
        {},
    )
    assert model.training
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_a_separate_validation_dataset_validates_and_the_training_set_is_not_split_for_it(
    trained_run, tmp_path
):
    with DatasetWriter(tmp_path / "validation.h5", synthetic_metadata()) as writer:
        for index in (40, 41, 42):
            writer.write(synthetic_entry(index))
    arguments = ["train", str(trained_run / "config.yaml"), "--dataset"]
    arguments += [str(trained_run / "data.h5"), "--validation-dataset"]
    arguments += [str(tmp_path / "validation.h5"), "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["validation"] == [40, 41, 42]
    assert split["validation_dataset"] == str(tmp_path / "validation.h5")
    assert len(split["test"]) == 2 and len(split["train"]) == 6
    assert load_model_file(tmp_path / "run").test_indices == split["test"]


def test_a_validation_dataset_of_another_calculation_is_refused_naming_both_files(
    trained_run, tmp_path
):
    other = synthetic_metadata(backend_options={"xc": "b3lyp", "grid": [3, 4]})
    with DatasetWriter(tmp_path / "validation.h5", other) as writer:
        writer.write(synthetic_entry(40, other))
    arguments = ["train", str(trained_run / "config.yaml"), "--dataset"]
    arguments += [str(trained_run / "data.h5"), "--validation-dataset"]
    arguments += [str(tmp_path / "validation.h5"), "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1
    assert "validation.h5" in result.output and "backend_options" in result.output


def test_an_explicit_split_that_names_a_validation_dataset_validates_on_it(trained_run, tmp_path):
    from rhocore.workflows.config import load_config
    from rhocore.workflows.train import Split, train_run

    with DatasetWriter(tmp_path / "validation.h5", synthetic_metadata()) as writer:
        for index in (50, 51):
            writer.write(synthetic_entry(index))
    split = Split([0, 1, 2, 3, 4], [50, 51], [], validation_dataset=tmp_path / "validation.h5")
    config = load_config(trained_run / "config.yaml")
    train_run(config, trained_run / "data.h5", tmp_path / "run", split=split, progress=False)
    written = json.loads((tmp_path / "run" / "split.json").read_text())
    assert written["validation"] == [50, 51] and written["train"] == [0, 1, 2, 3, 4]
