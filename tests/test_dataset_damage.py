"""Damaged dataset files, and entries the writer must refuse: always a DatasetError that
names the file (and the entry and field where there is one), never an h5py exception.

Hypothesis truncates and overwrites bytes of a small real dataset file, and removes or
reshapes the fields of its entries; the writer is handed entries with NaN, infinity or
wrong shapes in one field.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rhocore.data.dataset import Dataset, DatasetError, DatasetWriter
from rhocore.testing.datasets import failed_entry, synthetic_entry, synthetic_metadata
from rhocore.workflows.dataset_check import check_dataset
from rhocore.workflows.dataset_info import dataset_info

FAST = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELDS = (
    "numbers",
    "positions",
    "cell",
    "pbc",
    "coefficients",
    "overlap_pairs",
    "overlap_distances",
    "overlap_blocks",
    "projections",
    "integrals",
    "orbital_energies",
    "orbital_occupations",
    "k_weights",
    "weights",
    "field_state",
)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """Entries 0 (done), 1 (failed) and 2 (done), written by the writer."""
    path = tmp_path_factory.mktemp("damage") / "original.h5"
    with DatasetWriter(path, synthetic_metadata()) as writer:
        for entry in (synthetic_entry(0), failed_entry(1), synthetic_entry(2)):
            writer.write(entry)
    return path


def read_everything(path: Path) -> None:
    """Every reader of a dataset, on every entry: the ways rhocore meets a file."""
    dataset = Dataset(path)
    try:
        _ = dataset.metadata, dataset.units
        for index in dataset.indices("all"):
            dataset.entry(index)
        for index in dataset.indices():
            dataset.coefficients(index), dataset.overlap(index), dataset.atoms(index)
    finally:
        dataset.close()
    check_dataset(path)
    dataset_info(path)
    DatasetWriter(path, synthetic_metadata()).open()


def assert_reads_or_names_the_file(path: Path) -> None:
    try:
        read_everything(path)
    except DatasetError as error:
        assert str(path) in str(error), str(error)


@FAST
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_a_truncated_file_is_a_dataset_error_naming_it(original, tmp_path, fraction):
    data = original.read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: int(fraction * len(data))])
    with pytest.raises(DatasetError, match=str(path)):
        read_everything(path)


@FAST
@given(
    edits=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_overwritten_bytes_read_or_give_a_dataset_error_naming_the_file(original, tmp_path, edits):
    data = bytearray(original.read_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    path = tmp_path / "corrupted.h5"
    path.write_bytes(bytes(data))
    assert_reads_or_names_the_file(path)


def reshape_or_remove(group: h5py.Group, name: str, action: str, shape: tuple[int, ...]) -> None:
    if name in group:
        del group[name]
    if action == "wrong shape":
        group[name] = np.ones(shape)
    elif action == "text":
        group[name] = "not numbers"
    elif action == "group":
        group.create_group(name)


@FAST
@given(
    index=st.sampled_from([0, 2]),
    name=st.sampled_from(FIELDS),
    action=st.sampled_from(["removed", "wrong shape", "text", "group"]),
    shape=st.lists(st.integers(0, 4), max_size=3).map(tuple),
)
def test_a_missing_or_misshapen_field_names_file_entry_and_field(
    original, tmp_path, index, name, action, shape
):
    path = tmp_path / "fields.h5"
    shutil.copy(original, path)
    with h5py.File(path, "a") as handle:
        group = handle[f"structures/{index}"]
        stored = group.get(name)
        # the stored shape itself is no damage
        assume(action != "wrong shape" or getattr(stored, "shape", None) != shape)
        reshape_or_remove(group, name, action, shape)
    dataset = Dataset(path)
    try:
        dataset.entry(index)
    except DatasetError as error:
        assert str(path) in str(error) and f"structure {index}" in str(error), str(error)
        assert error.field == name, str(error)
        problems = check_dataset(path).problems
        assert [(p.entry, p.field) for p in problems] == [(str(index), name)]
    else:  # only a change that keeps a valid entry reads: field_state may hold anything
        assert (name, action) in {("field_state", "group")}
    finally:
        dataset.close()


@FAST
@given(
    name=st.sampled_from(["coefficients", "metric", "projections", "integrals", "positions"]),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.floats(0.0, 1.0, exclude_max=True),
)
def test_the_writer_refuses_nan_or_infinity_in_any_field(tmp_path, name, value, where):
    entry = synthetic_entry(4)
    array = entry.atoms.positions if name == "positions" else getattr(entry.fit, name)
    array.flat[int(where * array.size)] = value
    path = tmp_path / f"nan-{name}.h5"
    with DatasetWriter(path, synthetic_metadata()) as writer:
        with pytest.raises(DatasetError, match=rf"structure 4 for {path}: .*NaN or infinity"):
            writer.write(entry)
    assert Dataset(path).indices("all") == []


@pytest.mark.parametrize("name", ["projections", "integrals"])
def test_the_writer_refuses_a_vector_of_the_wrong_length(tmp_path, name):
    entry = synthetic_entry(0)
    setattr(entry.fit, name, getattr(entry.fit, name)[:-2])
    path = tmp_path / "short.h5"
    with DatasetWriter(path, synthetic_metadata()) as writer:
        with pytest.raises(DatasetError, match=rf"structure 0 for .*: {name} have shape \(49,\)"):
            writer.write(entry)
    assert Dataset(path).indices("all") == []


def test_unknown_integrals_may_be_all_nan_but_not_partly(tmp_path):
    path = tmp_path / "integrals.h5"
    unknown, partly = synthetic_entry(0), synthetic_entry(1)
    unknown.fit.integrals = np.full_like(unknown.fit.integrals, np.nan)
    partly.fit.integrals[0] = np.nan
    with DatasetWriter(path, synthetic_metadata()) as writer:
        writer.write(unknown)
        with pytest.raises(DatasetError, match="integrals hold NaN"):
            writer.write(partly)
    assert check_dataset(path).ok


@pytest.mark.parametrize("numbers", [[8, 999, 1], [8, 0, 1], [8, -1, 1]])
def test_an_atomic_number_that_is_no_element_is_named(original, tmp_path, numbers):
    path = tmp_path / "numbers.h5"
    shutil.copy(original, path)
    with h5py.File(path, "a") as handle:
        handle["structures/2/numbers"][...] = numbers
    with pytest.raises(DatasetError, match=r"structure 2: field 'numbers' must hold atomic") as e:
        dataset_info(path)
    assert e.value.field == "numbers"
    assert [(p.entry, p.field) for p in check_dataset(path).problems] == [("2", "numbers")]
