"""``rhocore export``: the copied model file, run without rhocore, predicts what rhocore does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ase
import ase.io
import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from metatensor.torch import Labels
from metatomic.torch import ModelEvaluationOptions, ModelOutput, System, load_atomistic_model
from vesin.metatomic import neighbor_lists_for_model

from rhocore.cli import cli
from rhocore.descriptors.tensormaps import tensormap_to_coefficients
from rhocore.models.file import ModelFile, load_model_file, save_model_file
from rhocore.models.linear import LinearModel
from rhocore.models.nonlinear import NonlinearModel
from rhocore.testing.datasets import synthetic_metadata
from rhocore.testing.models import random_waters
from rhocore.training.options import TrainingOptions
from rhocore.training.trainer import train
from rhocore.workflows.export import export_model
from tests.training_data import DESCRIPTOR_OPTIONS, LAYOUT, linear_samples, make_descriptor

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "use_exported_model.py"
#: Runs a script with every ``rhocore*`` and ``featomic*`` import refused, and checks none
#: slipped in: the model's compiled code comes from its ``extensions/`` folder.
BLOCKED_RUNNER = """
import runpy, sys
BLOCKED = ("rhocore", "featomic")
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith(BLOCKED):
            raise ImportError(f"{name} is blocked in this process")
        return None
sys.meta_path.insert(0, Refuse())
for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the import blocker did not block {name}")
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
loaded = sorted(name for name in sys.modules if name.startswith(BLOCKED))
if loaded:
    raise SystemExit(f"rhocore modules were loaded: {loaded}")
print("no rhocore module loaded")
"""


def metadata():
    return synthetic_metadata(layout=LAYOUT, backend_name="pyscf", target_name="homo")


def structures() -> list[ase.Atoms]:
    """Molecules (two water clusters), a periodic box and a slab periodic along a and b."""
    rng = np.random.default_rng(11)
    box = ase.Atoms(
        "OH2OH2",
        positions=rng.uniform(0.0, 5.0, size=(6, 3)),
        cell=np.diag([5.0, 5.5, 6.0]),
        pbc=True,
    )
    slab = box.copy()
    slab.pbc = [True, True, False]
    return random_waters(2, seed=5, molecules=2) + [box, slab]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory with a linear model trained by ridge on synthetic coefficients."""
    run = tmp_path_factory.mktemp("run")
    samples = linear_samples(5, seed=2)
    descriptor = make_descriptor()
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    options = TrainingOptions(optimizer="ridge")
    train(model, descriptor, samples[:4], samples[4:], options, run, progress=False)
    split = {"train": [0, 1, 2, 3], "validation": [4], "test": []}
    save_model_file(run / "model.pt", model, DESCRIPTOR_OPTIONS, [1, 8], metadata(), split)
    return run


@pytest.mark.slow
def test_exported_file_runs_without_rhocore_and_equals_rhocore_predict(run_dir, tmp_path):
    frames = structures()
    ase.io.write(tmp_path / "frames.extxyz", frames)
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(run_dir), "-o", str(tmp_path / "exported.pt")])
    assert result.exit_code == 0, result.output
    assert "rhocore::homo" in result.output
    assert f"extensions  {tmp_path / 'extensions'}" in result.output
    assert list((tmp_path / "extensions").rglob("libfeatomic_torch.*"))
    result = runner.invoke(
        cli,
        ["predict", str(run_dir), str(tmp_path / "frames.extxyz")]
        + ["-o", str(tmp_path / "predicted.h5")],
    )
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "predicted.h5") as handle:
        predicted = [handle[f"structures/{i}/coefficients"][()] for i in range(len(frames))]
    # the structures as written (extxyz rounds positions), one at a time as `rhocore
    # predict` and an engine take them
    frames = ase.io.read(tmp_path / "frames.extxyz", ":")
    model = load_model_file(run_dir)
    in_memory = [model.predict([atoms])[0] for atoms in frames]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", BLOCKED_RUNNER, str(EXAMPLE)]
    command += [str(tmp_path / "exported.pt"), str(tmp_path / "frames.extxyz")]
    command += [str(tmp_path / "out.npz")]
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "no rhocore module loaded" in process.stdout

    out = np.load(tmp_path / "out.npz")
    for index, (expected, memory) in enumerate(zip(predicted, in_memory, strict=True)):
        assert np.abs(memory - expected).max() == 0.0
        scale = max(1.0, np.abs(expected).max())
        for way in ("calculator", "torch"):
            got = out[f"{way}_{index}"]
            assert got.shape == expected.shape, (way, index)
            assert np.abs(got - expected).max() <= 1e-10 * scale, (way, index)
    info = json.loads(str(out["metadata"]))
    assert info["output"] == "rhocore::homo"
    assert info["target"]["name"] == "homo" and info["backend"]["name"] == "pyscf"
    assert {int(z): tuple(c) for z, c in info["basis_layout"].items()} == LAYOUT.nmax
    assert info["units"]["positions"] == "angstrom"
    assert info["units"]["coefficients"].startswith("bohr^-3")


def test_exported_nonlinear_model_gives_the_in_memory_coefficients(tmp_path):
    descriptor = make_descriptor()
    model = NonlinearModel({"hidden_sizes": [6], "heads": 2}, LAYOUT, descriptor.feature_sizes())
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    model.eval()
    save_model_file(tmp_path / "model.pt", model, DESCRIPTOR_OPTIONS, [1, 8], metadata(), {})
    export_model(tmp_path, tmp_path / "exported.pt")

    frames = structures()
    model_file = load_model_file(tmp_path)
    expected = [model_file.predict([atoms])[0] for atoms in frames]
    exported = load_atomistic_model(str(tmp_path / "exported.pt"))
    neighbor_lists = neighbor_lists_for_model("angstrom", exported)
    options = ModelEvaluationOptions(
        length_unit="angstrom", outputs={"rhocore::homo": ModelOutput(sample_kind="atom")}
    )
    systems = [
        System(
            types=torch.tensor(atoms.numbers, dtype=torch.int32),
            positions=torch.tensor(atoms.positions),
            cell=torch.tensor(atoms.cell.array * atoms.pbc[:, None]),
            pbc=torch.tensor(atoms.pbc),
        )
        for atoms in frames
    ]
    for neighbor_list in neighbor_lists:
        neighbor_list.add_neighbor_list(systems)
    output = exported(systems, options, check_consistency=True)["rhocore::homo"]
    vectors = tensormap_to_coefficients(output, [atoms.numbers for atoms in frames], LAYOUT)
    for index, (vector, reference) in enumerate(zip(vectors, expected, strict=True)):
        assert np.abs(reference).max() > 1e-3, "prediction too small to prove anything"
        assert np.abs(vector.numpy() - reference).max() <= 1e-10 * np.abs(reference).max(), index

    # without a neighbour list, featomic cannot handle the slab: a message, not a panic
    bare_slab = System(
        types=systems[3].types,
        positions=systems[3].positions,
        cell=systems[3].cell,
        pbc=systems[3].pbc,
    )
    with pytest.raises(torch.jit.Error, match="system 0 is periodic along some directions only"):
        exported([bare_slab], options, check_consistency=False)

    # selected atoms: exactly their rows of the full prediction
    chosen = torch.tensor([[0, 0], [0, 4], [2, 1], [3, 5]], dtype=torch.int32)
    selected = ModelEvaluationOptions(
        length_unit="angstrom",
        outputs={"rhocore::homo": ModelOutput(sample_kind="atom")},
        selected_atoms=Labels(["system", "atom"], chosen),
    )
    partial = exported(systems, selected, check_consistency=True)["rhocore::homo"]
    for key, block in partial.items():
        full = output.block(key)
        assert len(block.samples) == sum(
            int(frames[s].numbers[a] == int(key["center_type"])) for s, a in chosen.tolist()
        )
        for row, sample in enumerate(block.samples.values.tolist()):
            position = full.samples.position(sample)
            assert torch.allclose(block.values[row], full.values[position], rtol=1e-12, atol=0)


def test_export_accepts_the_checkpoint_of_a_run(run_dir, tmp_path):
    result = CliRunner().invoke(
        cli, ["export", str(run_dir / "checkpoint.ckpt"), "-o", str(tmp_path / "e.pt")]
    )
    assert result.exit_code == 0, result.output
    assert f"exported {run_dir / 'model.pt'}" in result.output
    assert (tmp_path / "e.pt").exists()


def test_export_errors_name_the_problem(run_dir, tmp_path):
    runner = CliRunner()

    result = runner.invoke(cli, ["export", str(tmp_path / "missing"), "-o", "x.pt"])
    assert result.exit_code != 0
    assert f"no run directory or model file at '{tmp_path / 'missing'}'" in result.output

    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / "checkpoint.ckpt").write_bytes((run_dir / "checkpoint.ckpt").read_bytes())
    result = runner.invoke(cli, ["export", str(interrupted), "-o", str(tmp_path / "x.pt")])
    assert result.exit_code != 0
    assert "has a checkpoint (checkpoint.ckpt) but no model.pt: training did not finish" in (
        result.output
    )

    result = runner.invoke(cli, ["export", str(run_dir), "-o", str(run_dir / "model.pt")])
    assert result.exit_code != 0
    assert "is the model file being exported" in result.output

    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(plain))
    result = runner.invoke(cli, ["export", str(plain), "-o", str(tmp_path / "x.pt")])
    assert result.exit_code != 0
    assert f"'{plain}' is a TorchScript file without rhocore metadata" in result.output
    assert not (tmp_path / "x.pt").exists()


def test_an_export_that_disagrees_with_the_trained_model_is_not_written(
    run_dir, tmp_path, monkeypatch
):
    # the trained model as rhocore predicts it, made to differ by 1e-8 (relative)
    original = ModelFile.predict
    monkeypatch.setattr(
        ModelFile, "predict", lambda self, frames: [v * (1 + 1e-8) for v in original(self, frames)]
    )
    result = CliRunner().invoke(cli, ["export", str(run_dir), "-o", str(tmp_path / "e.pt")])
    assert result.exit_code != 0
    assert "the exported model predicts coefficients that differ from the trained model" in (
        result.output
    )
    assert sorted(tmp_path.iterdir()) == []
