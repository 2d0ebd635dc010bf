"""dataset.h5: round trips, resuming, crash safety and the errors users see."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import rhocore.data.dataset.format as dataset_format
from rhocore.data.dataset import (
    FORMAT_VERSION,
    Dataset,
    DatasetError,
    DatasetMetadata,
    DatasetWriter,
)
from rhocore.testing.datasets import (
    assert_entries_equal,
    failed_entry,
    synthetic_entry,
    synthetic_metadata,
)


def _write(path: Path, *entries, metadata: DatasetMetadata | None = None) -> None:
    with DatasetWriter(path, metadata or synthetic_metadata()) as writer:
        for entry in entries:
            writer.write(entry)


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path):
    path = tmp_path / "dataset.h5"
    entries = [synthetic_entry(index) for index in (0, 3, 11)]
    _write(path, *entries)
    dataset = Dataset(path)
    assert dataset.indices() == [0, 3, 11] and len(dataset) == 3
    assert dataset.metadata == synthetic_metadata()
    assert dataset.units["orbital_energies"] == "eV"
    for expected in entries:
        assert_entries_equal(dataset.entry(expected.index), expected)
        assert np.array_equal(dataset.coefficients(expected.index), expected.fit.coefficients)
        assert np.array_equal(dataset.overlap(expected.index), expected.fit.metric)
    with h5py.File(path, "r") as handle:
        group = handle["structures/3"]
        assert group.attrs["expected_integral"] == 1.0
        assert group.attrs["fitted_integral"] == pytest.approx(entries[1].fit.fitted_integral)
        assert group.attrs["total_energy_eV"] == -2083.0


def test_failed_entry_keeps_its_reason_and_counts_as_finished(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0), failed_entry(1, "SCF did not converge in 50 cycles"))
    with DatasetWriter(path, synthetic_metadata()) as writer:
        assert writer.done_indices() == {0}
        assert writer.failed_indices() == {1}
        assert writer.finished_indices() == {0, 1}
    dataset = Dataset(path)
    assert dataset.indices() == [0] and dataset.indices("failed") == [1]
    assert dataset.indices("all") == [0, 1]
    assert dataset.summary() == {"done": 1, "failed": 1}
    assert_entries_equal(dataset.entry(1), failed_entry(1, "SCF did not converge in 50 cycles"))
    with pytest.raises(DatasetError, match="structure 1 of .* failed: SCF did not converge"):
        dataset.coefficients(1)
    with pytest.raises(DatasetError, match="structure 7 is not in"):
        dataset.entry(7)


def test_retry_failed_recomputes_only_failed_entries(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0), failed_entry(1))
    with DatasetWriter(path, synthetic_metadata(), retry_failed=True) as writer:
        assert writer.finished_indices() == {0}
        writer.write(synthetic_entry(1))
        with pytest.raises(DatasetError, match="structure 0 is already in .* never overwritten"):
            writer.write(synthetic_entry(0))
    assert Dataset(path).summary() == {"done": 2, "failed": 0}
    assert_entries_equal(Dataset(path).entry(1), synthetic_entry(1))


def test_an_existing_entry_is_never_overwritten(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, failed_entry(2))
    with DatasetWriter(path, synthetic_metadata()) as writer:
        with pytest.raises(DatasetError, match="structure 2 is already in .*status failed"):
            writer.write(synthetic_entry(2))
    assert Dataset(path).indices("failed") == [2]


def test_reopening_with_different_metadata_names_the_field_and_the_file(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0))
    changed = synthetic_metadata(target_name="lumo", backend_options={"xc": "b3lyp"})
    with pytest.raises(DatasetError) as error:
        DatasetWriter(path, changed).open()
    message = str(error.value)
    assert str(path) in message and "new output path" in message
    assert "backend_options, target_name" in message and "this run has lumo" in message
    # A newer rhocore may resume a file an older one started.
    _write(path, synthetic_entry(1), metadata=synthetic_metadata(rhocore_version="0.2.0"))
    assert Dataset(path).indices() == [0, 1]
    assert Dataset(path).metadata.rhocore_version == "0.1.0"


def test_a_done_entry_that_does_not_match_the_layout_is_refused(tmp_path):
    entry = synthetic_entry(0)
    entry.fit.coefficients = entry.fit.coefficients[:-1]
    with pytest.raises(DatasetError, match="do not match the .* basis functions"):
        _write(tmp_path / "dataset.h5", entry)
    assert Dataset(tmp_path / "dataset.h5").summary() == {"done": 0, "failed": 0}


def test_leftover_tmp_group_from_a_crash_is_ignored_and_cleaned(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0))
    with h5py.File(path, "a") as handle:  # a crash between building an entry and its move
        handle.create_group("tmp/1")["coefficients"] = np.zeros(3)
    dataset = Dataset(path)
    assert dataset.indices("all") == [0]
    dataset.close()
    with DatasetWriter(path, synthetic_metadata()) as writer:
        assert writer.finished_indices() == {0}
        assert len(writer.file["tmp"]) == 0
        writer.write(synthetic_entry(1))
    assert_entries_equal(Dataset(path).entry(1), synthetic_entry(1))


_KILL_INSIDE_AN_ENTRY = textwrap.dedent(
    """
    import os, signal, sys
    from rhocore.data import journal
    from rhocore.data.dataset import DatasetWriter
    from rhocore.testing.datasets import synthetic_entry, synthetic_metadata

    write = journal.JournaledFile.write
    calls = 0
    kill_at = None

    def counting_write(self, data):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return write(self, data)

    journal.JournaledFile.write = counting_write
    with DatasetWriter(sys.argv[1], synthetic_metadata()) as writer:
        writer.write(synthetic_entry(0, n_molecules=2))
        calls = 0
        writer.write(synthetic_entry(1, n_molecules=2))
        kill_at, calls = max(1, round(float(sys.argv[2]) * calls)), 0
        writer.write(synthetic_entry(2, n_molecules=2))  # same size: as many writes
    """
)


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.6, 0.8, 0.9, 0.95, 1.0])
def test_writer_killed_inside_an_entry_or_its_flush_leaves_the_previous_entries(tmp_path, fraction):
    # The last writes of an entry are HDF5's flush of its metadata: killed among them, a
    # file without the rollback journal is one HDF5 cannot open ("addr overflow").
    path = tmp_path / "dataset.h5"
    child = subprocess.run([sys.executable, "-c", _KILL_INSIDE_AN_ENTRY, str(path), str(fraction)])
    assert child.returncode == -signal.SIGKILL, "the writer was not killed inside entry 2"
    assert (tmp_path / "dataset.h5.journal").exists()
    dataset = Dataset(path)
    assert dataset.indices("all") == [0, 1]
    for index in (0, 1):
        assert_entries_equal(dataset.entry(index), synthetic_entry(index, n_molecules=2))
    dataset.close()
    assert not (tmp_path / "dataset.h5.journal").exists(), "reading applies the journal"
    _write(path, synthetic_entry(2, n_molecules=2))
    assert Dataset(path).indices("all") == [0, 1, 2]


_WRITE_FOREVER = textwrap.dedent(
    """
    import sys
    from rhocore.data.dataset import DatasetWriter
    from rhocore.testing.datasets import synthetic_entry, synthetic_metadata

    with DatasetWriter(sys.argv[1], synthetic_metadata()) as writer:
        index = max(writer.finished_indices(), default=-1) + 1
        print("writing", flush=True)
        while True:
            writer.write(synthetic_entry(index, n_molecules=2))
            index += 1
    """
)


def _kill_while_writing(path: Path, seconds: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITE_FOREVER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "writing\n"
        time.sleep(seconds)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_writer_killed_mid_write_leaves_only_complete_entries(tmp_path):
    path = tmp_path / "dataset.h5"
    previous = 0
    for seconds in (0.35, 0.55):
        _kill_while_writing(path, seconds)
        dataset = Dataset(path)
        indices = dataset.indices("all")
        assert indices == list(range(len(indices))), "entries must be written in order"
        assert len(indices) > previous, "the killed writer wrote nothing"
        for index in indices:
            assert_entries_equal(dataset.entry(index), synthetic_entry(index, n_molecules=2))
        dataset.close()
        previous = len(indices)
    with DatasetWriter(path, synthetic_metadata()) as writer:  # resuming still works
        writer.write(synthetic_entry(previous, n_molecules=2))
    assert Dataset(path).indices()[-1] == previous


def test_a_file_that_is_not_a_rhocore_dataset_says_what_it_lacks(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match=rf"{other} is not a rhocore dataset: .*no 'format'"):
        Dataset(other).indices()
    with pytest.raises(DatasetError, match="is not a rhocore dataset"):
        DatasetWriter(other, synthetic_metadata()).open()
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(DatasetError, match=rf"{text} is not a readable HDF5 file"):
        _ = Dataset(text).metadata
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset(tmp_path / "missing.h5")
    incomplete = tmp_path / "incomplete.h5"
    with h5py.File(incomplete, "w") as handle:
        handle.attrs["format"] = "rhocore-dataset"
        handle.attrs["format_version"] = 1
    with pytest.raises(DatasetError, match=r"without the root attributes \['backend_name'"):
        _ = Dataset(incomplete).metadata


def test_a_newer_format_version_asks_for_the_rhocore_release_that_reads_it(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0))
    with h5py.File(path, "a") as handle:
        handle.attrs["format_version"] = FORMAT_VERSION + 1
        handle.attrs["rhocore_version"] = "0.7.0"
    newer = FORMAT_VERSION + 1
    with pytest.raises(
        DatasetError, match=rf"format version {newer}; .*Upgrade to rhocore >= 0.7.0 to read it"
    ):
        Dataset(path).indices()
    with pytest.raises(DatasetError, match=f"format version {newer}"):
        DatasetWriter(path, synthetic_metadata()).open()


def test_an_older_format_version_goes_through_the_update_chain(tmp_path, monkeypatch):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0))

    def update_to_next(attrs: dict) -> dict:
        return attrs | {"metric_kind": "coulomb"}

    updates = dataset_format.UPDATES | {FORMAT_VERSION: update_to_next}
    monkeypatch.setattr(dataset_format, "FORMAT_VERSION", FORMAT_VERSION + 1)
    monkeypatch.setattr(dataset_format, "UPDATES", updates)
    assert Dataset(path).metadata.metric_kind == "coulomb"
    monkeypatch.setattr(dataset_format, "UPDATES", {})
    with pytest.raises(
        DatasetError, match=f"version {FORMAT_VERSION}, which this rhocore no longer reads"
    ):
        Dataset(path).indices()


def test_a_pickled_dataset_reopens_its_own_file_handle(tmp_path):
    path = tmp_path / "dataset.h5"
    _write(path, synthetic_entry(0), synthetic_entry(1))
    dataset = Dataset(path)
    assert len(dataset) == 2  # the handle is open now
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._file is None
    assert np.array_equal(copy.coefficients(1), dataset.coefficients(1))


def test_a_stored_format_1_file_still_loads():
    dataset = Dataset(Path(__file__).parent / "data" / "dataset_v1.h5")
    assert dataset.metadata == synthetic_metadata()
    assert dataset.summary() == {"done": 1, "failed": 1}
    # written on another machine: its BLAS rounds the synthetic fit's products differently
    assert_entries_equal(dataset.entry(0), synthetic_entry(0), fit_rtol=1e-12)
    assert dataset.entry(1).reason == "SCF did not converge"
