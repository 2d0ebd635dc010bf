"""``structures.file`` as a glob, and backends that read finished QC outputs themselves."""

from __future__ import annotations

import types
from pathlib import Path

import ase
import ase.io
import pytest

from rhocore.data.structure_files import SOURCE_KEY, StructureError
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.backend import QCBackend
from rhocore.workflows.config import ConfigError, resolve_config


class OutputReadingBackend(QCBackend):
    """An in-test backend whose 'outputs' are lines 'symbol x y z' (angstrom).

    Only reading structures is under test: the abstract QC methods are never reached.
    """

    name = "output_reader"
    reads_outputs = True

    @classmethod
    def read_outputs(cls, path: Path) -> list[ase.Atoms]:
        rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
        if not rows or any(len(row) != 4 for row in rows):
            raise StructureError(f"{path}: not an output of this code")
        atoms = ase.Atoms(
            [row[0] for row in rows], positions=[[float(v) for v in row[1:]] for row in rows]
        )
        atoms.info[SOURCE_KEY] = str(Path(path).resolve())
        return [atoms]

    def run_scf(self, atoms):
        raise NotImplementedError

    def basis_layout(self, atoms):
        raise NotImplementedError

    def fit(self, scf, weights, n_electrons=None):
        raise NotImplementedError

    def evaluate_fitted(self, atoms, coefficients, points):
        raise NotImplementedError

    def evaluate_exact(self, atoms, field_state, points):
        raise NotImplementedError

    def integration_grid(self, atoms):
        raise NotImplementedError


@pytest.fixture
def registry():
    plugin = types.ModuleType("glob_test_plugin")

    @hookimpl
    def rhocore_register_backends():
        return [OutputReadingBackend]

    plugin.rhocore_register_backends = rhocore_register_backends
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    return get_registry(manager)


def test_glob_reads_every_matching_file_in_sorted_order_and_tags_its_source(registry, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, count in (("b.xyz", 2), ("a.xyz", 1), ("c.xyz", 3)):
        chain = ase.Atoms("H" * count, positions=[[0, 0, i] for i in range(count)])
        ase.io.write(folder / name, [chain, chain])
    (folder / "notes.txt").write_text("not a structure")
    data = {"structures": {"file": "frames/*.xyz", "index": "-1"}}
    config = resolve_config(data, base_dir=tmp_path, registry=registry)
    frames = config.read_structures()
    assert [len(atoms) for atoms in frames] == [1, 2, 3]
    assert [Path(atoms.info[SOURCE_KEY]).name for atoms in frames] == ["a.xyz", "b.xyz", "c.xyz"]


def test_glob_that_matches_nothing_names_the_pattern(registry, tmp_path):
    config = resolve_config(
        {"structures": {"file": "runs/*.out"}}, base_dir=tmp_path, registry=registry
    )
    with pytest.raises(ConfigError, match=r"structures.file: no file matches .*runs/\*.out"):
        config.read_structures()


def test_backend_that_reads_outputs_reads_the_matched_files_itself(registry, tmp_path):
    (tmp_path / "h2.out").write_text("H 0 0 0\nH 0 0 0.74\n")
    (tmp_path / "water.out").write_text("O 0 0 0\nH 0.76 0 0.59\nH -0.76 0 0.59\n")
    data = {"structures": {"file": "*.out"}, "backend": {"name": "output_reader"}}
    frames = resolve_config(data, base_dir=tmp_path, registry=registry).read_structures()
    assert [atoms.get_chemical_formula() for atoms in frames] == ["H2", "H2O"]
    assert frames[1].info[SOURCE_KEY] == str((tmp_path / "water.out").resolve())

    (tmp_path / "broken.out").write_text("garbage\n")
    with pytest.raises(ConfigError, match="broken.out: not an output of this code"):
        resolve_config(data, base_dir=tmp_path, registry=registry).read_structures()


def test_backend_that_reads_outputs_refuses_an_ase_index(registry, tmp_path):
    (tmp_path / "h2.out").write_text("H 0 0 0\nH 0 0 0.74\n")
    data = {"structures": {"file": "*.out", "index": "0:5"}, "backend": {"name": "output_reader"}}
    config = resolve_config(data, base_dir=tmp_path, registry=registry)
    with pytest.raises(ConfigError, match="reads QC outputs itself.*remove 'index'"):
        config.read_structures()
