"""Predicted coefficients written as FHI-aims' RI density restart (ri_restart_coeffs.out).

Round trips on the values FHI-aims wrote (shared data, re-blocked into npz by two earlier
tools): the vector files are rebuilt here in FHI-aims' order from the raw blocks (test-side
code, not the parser), read to canonical with the plugin's parser, written back with the
restart writer, and compared with the rebuilt file:

* FHI-aims 240925 (mainline, ``rholearn_aims``): rholearn saved ``ri_restart_coeffs.out``
  unchanged, in atom -> l -> n -> m order; the basis is ``basis_set.json``;
* FHI-aims 230905 (legacy ``ri_fit_*``, ``rho_learn_water_homo``): the real function table
  ``product_basis_idxs.out`` is ``calc_info.json``'s ``basis_set.idxs``; rho_learn flipped
  the odd m > 0 functions on saving, so the file values are the blocks with that flip undone.

FHI-aims 230629 (``rho_learn_water_density``) kept no function table, so its file order
cannot be rebuilt; it is used for the prediction path only.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from rhocore_aims.backend import AimsBackend
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.ri_files import basis_conversion, parse_ri_vector
from rhocore_aims.restart import (
    KEYWORDS_FILE,
    RESTART_FILE,
    restart_conversion,
    restart_values,
    write_ri_restart,
)
from test_aims_parse_ri_files import write_basis_info

from rhocore.qc.basis import BasisLayout
from rhocore.qc.properties import PropertiesNotAvailableError
from rhocore.workflows.config import resolve_config
from rhocore.workflows.predict import predict
from rhocore.workflows.train import Split, train_run

SYMBOLS = {"H": 1, "C": 6, "O": 8}


# ----- the FHI-aims files, rebuilt from the shared npz blocks (test-side only) -----


def raw_blocks(path: Path, atom_field: str) -> dict[tuple[int, int], np.ndarray]:
    """(atom, l) -> values[m + l, n] of a coefficient npz, whatever its key names."""
    data = np.load(path)
    blocks = {}
    for i, key in enumerate(data["keys"].tolist()):
        l = key[0]
        for atom, values in zip(
            data[f"blocks/{i}/samples"][atom_field], data[f"blocks/{i}/values"], strict=True
        ):
            blocks[(int(atom), int(l))] = values
    return blocks


def nmax_layout(nmax: dict[str, int]) -> BasisLayout:
    """{'C,0': 11, ...} as a layout."""
    counts: dict[int, dict[int, int]] = {}
    for key, count in nmax.items():
        symbol, l = key.split(",")
        counts.setdefault(SYMBOLS[symbol], {})[int(l)] = count
    return BasisLayout({z: tuple(c[l] for l in range(len(c))) for z, c in counts.items()})


def mainline_run(shared: Path, name: str, xyz: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """An FHI-aims 240925 RI folder: ri_restart_coeffs.out + basis_info.out; (numbers, values)."""
    source = shared / "rholearn_aims" / name
    numbers = ase.io.read(source / xyz, index=0).numbers
    layout = nmax_layout(json.loads((source / "basis_set.json").read_text())["nmax"])
    blocks = raw_blocks(source / "ri_coeffs.npz", "atom")
    values = np.array(
        [
            blocks[(atom, l)][m + l, n]
            for atom, z in enumerate(numbers)
            for l, count in enumerate(layout.nmax[int(z)])
            for n in range(count)
            for m in range(-l, l + 1)
        ]
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_basis_info(folder / "basis_info.out", layout, numbers)
    np.savetxt(folder / RESTART_FILE, values, fmt="%.17e")
    return numbers, values


def legacy_run(shared: Path, frame: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """An FHI-aims 230905 RI folder: ri_coeffs.out + the real product_basis_idxs.out."""
    root = shared / "rho_learn_water_homo"
    numbers = ase.io.read(root / "water_monomers_1k.xyz", index=frame).numbers
    source = root / "structures" / str(frame)
    rows = np.array(json.loads((source / "calc_info.json").read_text())["basis_set"]["idxs"])
    blocks = raw_blocks(source / "ri_coeffs.npz", "center")
    values = np.empty(len(rows))
    for position, atom, l, radial, m in rows.tolist():
        same = (rows[:, 1] == atom) & (rows[:, 2] == l)
        n = int(np.searchsorted(np.unique(rows[same, 3]), radial))
        flip = -1.0 if m > 0 and m % 2 == 1 else 1.0
        values[position - 1] = flip * blocks[(atom - 1, l)][m + l, n]
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "product_basis_idxs.out", rows, fmt="%6d")
    np.savetxt(folder / "ri_coeffs.out", values, fmt="%.17e")
    return numbers, values


def assert_same_file_values(written: Path, original: np.ndarray) -> None:
    text = written.read_text()
    values = np.array([float(line) for line in text.splitlines()])
    assert len(values) == len(original)
    np.testing.assert_allclose(values, original, rtol=1e-12, atol=0)
    assert text.endswith("\n") and all("e" in line for line in text.splitlines())


# ----- round trips -----


@pytest.mark.parametrize(
    ("name", "xyz", "size"), [("qm7_0", "qm7.xyz", 798), ("isolated_c_0", "isolated.xyz", None)]
)
def test_mainline_restart_round_trip(shared_data, tmp_path, name, xyz, size):
    run = tmp_path / "ri"
    numbers, original = mainline_run(shared_data, name, xyz, run)
    assert size is None or len(original) == size
    conversion = basis_conversion(run, numbers, "mainline")
    canonical = conversion.to_canonical(parse_ri_vector(run / RESTART_FILE, len(original)))
    # the order of a mainline restart follows from the layout alone, or from the run's table
    for restart in (
        restart_conversion(numbers, layout=conversion.layout),
        restart_conversion(numbers, layout=conversion.layout, run_folder=run),
    ):
        written = write_ri_restart(tmp_path / "out" / RESTART_FILE, canonical, restart)
        assert_same_file_values(written, original)


@pytest.mark.parametrize("frame", [89, 322, 458])
def test_legacy_restart_round_trip(shared_data, tmp_path, frame):
    run = tmp_path / "ri"
    numbers, original = legacy_run(shared_data, frame, run)
    assert len(original) == 517  # README: 517 auxiliary functions per water
    conversion = basis_conversion(run, numbers, "legacy")
    canonical = conversion.to_canonical(parse_ri_vector(run / "ri_coeffs.out", 517))
    restart = restart_conversion(numbers, run_folder=run, generation="legacy")
    written = write_ri_restart(tmp_path / RESTART_FILE, canonical, restart)
    assert_same_file_values(written, original)
    # the legacy order really is a permutation with signs: the naive layout order is wrong
    naive = restart_values(canonical, restart_conversion(numbers, layout=conversion.layout))
    assert not np.allclose(naive, original)


# ----- errors -----


@pytest.fixture(scope="module")
def methane_run(shared_data, tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    run = tmp_path_factory.mktemp("methane")
    numbers, values = mainline_run(shared_data, "qm7_0", "qm7.xyz", run)
    return run, numbers, values


def test_wrong_length_is_refused(methane_run, tmp_path):
    run, numbers, values = methane_run
    conversion = restart_conversion(numbers, run_folder=run)
    with pytest.raises(ValueError, match=r"797 coefficients .* RI basis of 798 functions"):
        write_ri_restart(tmp_path / RESTART_FILE, values[:-1], conversion)
    bad = values.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="coefficient 5 is nan"):
        write_ri_restart(tmp_path / RESTART_FILE, bad, conversion)
    assert not (tmp_path / RESTART_FILE).exists()


def test_wrong_species_is_refused(methane_run):
    run, numbers, _ = methane_run
    layout = basis_conversion(run, numbers, "mainline").layout
    with pytest.raises(ValueError, match="no functions for element Z=7"):
        restart_conversion([7, 1, 1, 1], layout=layout)
    other = BasisLayout({**layout.nmax, 6: (3, 2)})
    with pytest.raises(ValueError, match=r"radial counts per l .* training data"):
        restart_conversion(numbers, layout=other, run_folder=run)
    with pytest.raises(ValueError, match="no functions for Z=6"):
        restart_conversion(numbers, layout=BasisLayout({1: layout.nmax[1]}), run_folder=run)


def test_missing_table_is_named(methane_run, tmp_path):
    run, numbers, _ = methane_run
    with pytest.raises(AimsFileError, match=r"basis_info\.out: missing"):
        restart_conversion(numbers, run_folder=tmp_path)
    with pytest.raises(AimsFileError, match=r"product_basis_idxs\.out: missing"):
        restart_conversion(numbers, run_folder=tmp_path, generation="legacy")
    layout = basis_conversion(run, numbers, "mainline").layout
    with pytest.raises(ValueError, match="give run_folder"):
        restart_conversion(numbers, layout=layout, generation="legacy")
    with pytest.raises(ValueError, match="give layout or run_folder"):
        restart_conversion(numbers)


# ----- the backend hook and the predict path -----


def test_backend_writes_a_restart_folder(methane_run, shared_data, tmp_path):
    run, numbers, values = methane_run
    atoms = ase.io.read(shared_data / "rholearn_aims/qm7_0/qm7.xyz", index=0)
    conversion = basis_conversion(run, numbers, "mainline")
    canonical = conversion.to_canonical(values)
    backend = AimsBackend({"xc": "pbe0", "prodbas_acc": 1e-5, "max_l_prodbas": 8})
    paths = backend.write_scf_guess(atoms, canonical, tmp_path, "structure_0", conversion.layout)
    folder = tmp_path / "structure_0"
    assert {path.name for path in paths} == {
        RESTART_FILE,
        "geometry.in",
        KEYWORDS_FILE,
        "README.txt",
    }
    assert_same_file_values(folder / RESTART_FILE, values)
    geometry = ase.io.read(folder / "geometry.in", format="aims")
    assert list(geometry.numbers) == list(atoms.numbers)
    np.testing.assert_allclose(geometry.positions, atoms.positions, atol=1e-8)
    keywords = dict(
        line.split(None, 1) for line in (folder / KEYWORDS_FILE).read_text().splitlines()
    )
    assert keywords["ri_density_restart"] == "read 0"
    assert keywords["ri_full_output"] == ".true."
    assert float(keywords["default_prodbas_acc"]) == 1e-5
    assert keywords["default_max_l_prodbas"] == "8" and keywords["xc"] == "pbe0"


def test_backend_refuses_legacy_builds_and_missing_layout(methane_run, shared_data, tmp_path):
    run, numbers, values = methane_run
    atoms = ase.io.read(shared_data / "rholearn_aims/qm7_0/qm7.xyz", index=0)
    layout = basis_conversion(run, numbers, "mainline").layout
    with pytest.raises(PropertiesNotAvailableError, match="product_basis_idxs.out"):
        AimsBackend({"keywords": "legacy"}).write_scf_guess(atoms, values, tmp_path, "s", layout)
    with pytest.raises(PropertiesNotAvailableError, match="layout"):
        AimsBackend({}).write_scf_guess(atoms, values, tmp_path, "s")


@pytest.mark.slow
def test_predict_writes_aims_restarts_for_a_model_of_imported_densities(
    shared_data, water_density_h5, tmp_path
):
    """Imported FHI-aims water densities (the session's shared import), train ridge,
    predict --scf-guess: one restart folder per structure whose file, read back with the
    parser, is the model's prediction."""
    root = shared_data / "rho_learn_water_density"
    dataset = water_density_h5
    config = resolve_config(
        {
            "descriptor": {"cutoff": 3.5, "max_radial": 4, "max_angular": 5},
            "model": {"name": "linear"},
            "training": {"optimizer": "ridge"},
        }
    )
    split = Split(train=[100, 101, 102, 103, 104, 105], validation=[106], test=[107])
    train_run(config, dataset, tmp_path / "run", split=split, progress=False)
    frames = ase.io.read(root / "water_monomers_1k.xyz", index="110:112")
    ase.io.write(tmp_path / "new.xyz", frames)
    guesses = tmp_path / "guesses"
    predicted = predict(
        tmp_path / "run", tmp_path / "new.xyz", tmp_path / "p.h5", scf_guess=guesses, progress=False
    )
    # the basis of the training data, as FHI-aims' basis_info.out of a water would list it
    layout = nmax_layout(json.loads((root / "structures/100/calc_info.json").read_text())["nmax"])
    for index, (atoms, vector) in enumerate(zip(frames, predicted, strict=True)):
        folder = guesses / f"structure_{index}"
        run = tmp_path / f"ri_{index}"
        run.mkdir()
        write_basis_info(run / "basis_info.out", layout, atoms.numbers)
        conversion = basis_conversion(run, atoms.numbers, "mainline")
        read_back = conversion.to_canonical(parse_ri_vector(folder / RESTART_FILE, 418))
        np.testing.assert_allclose(read_back, vector, rtol=1e-15, atol=0)
        assert "ri_density_restart" in (folder / KEYWORDS_FILE).read_text()
