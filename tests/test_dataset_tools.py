"""`rhocore dataset info|check|merge` on synthetic datasets, damaged copies and live writers.

Expected counts come from the construction of the synthetic entries (one water per
structure, the layout {H: (3, 2, 1), O: (4, 3, 2)}: 14 functions per H, 23 per O), never
from the code under test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from rhocore.cli import cli
from rhocore.data.dataset import Dataset, DatasetError, DatasetWriter
from rhocore.testing.datasets import (
    assert_entries_equal,
    failed_entry,
    synthetic_entry,
    synthetic_metadata,
)
from rhocore.workflows.dataset_check import check_dataset
from rhocore.workflows.dataset_info import dataset_info
from rhocore.workflows.dataset_merge import merge_datasets

WATER_FUNCTIONS = 23 + 2 * 14


def write(path: Path, *entries, metadata=None) -> Path:
    with DatasetWriter(path, metadata or synthetic_metadata()) as writer:
        for entry in entries:
            writer.write(entry)
    return path


def invoke(*arguments: str):
    return CliRunner().invoke(cli, ["dataset", *map(str, arguments)])


@pytest.fixture
def small(tmp_path) -> Path:
    """Entries 0, 2 (done) and 1 (failed)."""
    return write(
        tmp_path / "small.h5",
        synthetic_entry(0),
        failed_entry(1, "SCF stalled"),
        synthetic_entry(2),
    )


# ----- info -----


def test_info_counts_entries_elements_and_coefficients(small):
    info = dataset_info(small)
    assert (info.done, info.failed, info.state) == (2, {1: "SCF stalled"}, "complete")
    assert info.atoms_per_element == {"H": 6, "O": 3}
    assert info.structures_per_element == {"H": 3, "O": 3}
    assert info.atoms_range == (3, 3)
    assert info.n_coefficients == 2 * WATER_FUNCTIONS
    assert info.layout["O"] == {"lmax": 2, "radial_per_l": [4, 3, 2], "functions_per_atom": 23}
    result = invoke("info", small, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["backend_name"] == "synthetic" and document["target_name"] == "homo"
    assert document["failed_reasons"] == {"1": "SCF stalled"}
    assert document["units"]["orbital_energies"] == "eV"
    table = invoke("info", small).output
    assert "2 done, 1 failed" in table and "1: SCF stalled" in table
    assert "H 6 atoms in 3 structures" in table


_WRITER = textwrap.dedent(
    """
    import sys, time
    from rhocore.data.dataset import DatasetWriter
    from rhocore.testing.datasets import synthetic_entry, synthetic_metadata

    with DatasetWriter(sys.argv[1], synthetic_metadata()) as writer:
        writer.write(synthetic_entry(0))
        writer.write(synthetic_entry(1))
        print("written", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.slow
def test_info_reads_a_file_another_process_is_writing_and_says_so(tmp_path):
    path = tmp_path / "live.h5"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
        result = invoke("info", path)
        assert result.exit_code == 0, result.output
        assert "being written by another process" in result.output
        assert "2 done, 0 failed" in result.output
        refused = invoke("check", path)  # a check waits for a finished file
        assert refused.exit_code == 1 and "being written by another process" in refused.output
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed = dataset_info(path)
    assert killed.done == 2 and "did not close it (killed?)" in killed.state


# ----- check -----


def test_check_passes_a_sound_file(small):
    report = check_dataset(small)
    assert report.ok and (report.entries, report.done, report.failed) == (3, 2, 1)
    result = invoke("check", small)
    assert result.exit_code == 0 and "no problems" in result.output


def damage(path: Path) -> None:
    """One distinct fault per entry 0..7 of a dataset holding entries 0..7 (6 failed)."""
    with h5py.File(path, "a") as handle:
        group = handle["structures"]
        group["0/coefficients"][3] = np.nan
        group["1/overlap_blocks"][1] += 0.5  # S[0, 1], in the block of atom 0 with itself
        group["2/overlap_blocks"][...] = -group["2/overlap_blocks"][()]
        size = len(group["0/coefficients"])
        group["3/projections"][0] += 1.0
        del group["4/integrals"]
        del group["5/coefficients"]
        group["5/coefficients"] = np.zeros(size + 1)
        group["6"].attrs["reason"] = ""
        group["7/positions"][0, 0] = np.inf
        handle.create_group("tmp/9")["numbers"] = np.zeros(3)


def test_check_names_each_broken_entry_and_field(tmp_path):
    entries = [synthetic_entry(index) for index in range(8)]
    entries[6] = failed_entry(6)
    path = write(tmp_path / "damaged.h5", *entries)
    damage(path)
    report = check_dataset(path)
    found = {(problem.entry, problem.field) for problem in report.problems}
    assert found == {
        ("0", "coefficients"),
        ("1", "overlap"),
        ("2", "overlap"),
        ("3", "projections"),
        ("4", "integrals"),
        ("5", "coefficients"),
        ("6", "reason"),
        ("7", "positions"),
        ("tmp/9", "entry"),
    }
    messages = {problem.entry: problem.message for problem in report.problems}
    assert "1 NaN or infinite values" in messages["0"]
    assert "not symmetric" in messages["1"] and "not positive definite" in messages["2"]
    assert "differ from overlap @ coefficients by up to" in messages["3"]
    assert "field 'integrals' is missing" in messages["4"] and str(path) in messages["4"]
    assert f"has shape ({WATER_FUNCTIONS + 1},), expected ({WATER_FUNCTIONS},)" in messages["5"]
    result = invoke("check", path)
    assert result.exit_code == 1
    assert (
        "checked 8 entries" in result.output and "(5 done, 1 failed, 2 unreadable)" in result.output
    )
    assert "9 problems" in result.output and "Traceback" not in result.output


# ----- merge -----


def test_merge_copies_every_entry_field_by_field_and_resumes(tmp_path):
    first = write(tmp_path / "a.h5", synthetic_entry(0), failed_entry(1))
    second = write(tmp_path / "b.h5", synthetic_entry(2), synthetic_entry(5))
    output = tmp_path / "merged.h5"
    summary = merge_datasets(output, [first], progress=False)
    assert (summary.added, summary.already_there) == (2, 0)
    result = invoke("merge", output, first, second)  # a rerun adds only what is missing
    assert result.exit_code == 0, result.output
    assert "added 2 entries (0 of them failed ones), 2 were already there" in result.output
    merged = Dataset(output)
    assert merged.indices("all") == [0, 1, 2, 5]
    for expected in (synthetic_entry(0), failed_entry(1), synthetic_entry(2), synthetic_entry(5)):
        assert_entries_equal(merged.entry(expected.index), expected)
    assert merged.metadata.differences(synthetic_metadata()) == []
    assert check_dataset(output).ok


def test_merge_refuses_colliding_indices_unless_renumbered(tmp_path):
    first = write(tmp_path / "a.h5", synthetic_entry(0), synthetic_entry(1))
    second = write(tmp_path / "b.h5", synthetic_entry(1), failed_entry(4))
    output = tmp_path / "merged.h5"
    result = invoke("merge", output, first, second)
    assert result.exit_code == 1 and not output.exists()
    assert f"structure 1 is in both {first} and {second}; pass --renumber" in result.output
    result = invoke("merge", output, first, second, "--renumber")
    assert result.exit_code == 0, result.output
    assert f"{second} -> indices 2..3" in result.output
    merged = Dataset(output)
    assert merged.indices() == [0, 1, 2] and merged.indices("failed") == [3]
    copied = merged.entry(2)
    copied.index = 1
    assert_entries_equal(copied, synthetic_entry(1))
    assert merged.entry(3).reason == "SCF did not converge"


def test_merge_lists_metadata_differences(tmp_path):
    first = write(tmp_path / "a.h5", synthetic_entry(0))
    other = synthetic_metadata(target_name="lumo", backend_options={"xc": "b3lyp"})
    second = write(tmp_path / "b.h5", synthetic_entry(1, other), metadata=other)
    result = invoke("merge", tmp_path / "out.h5", first, second)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "differ in backend_options, target_name" in result.output
    assert f"target_name: {first} has homo, {second} has lumo" in result.output
    with pytest.raises(DatasetError, match="is one of the inputs"):
        merge_datasets(first, [first, second])


def test_merge_does_not_copy_a_damaged_entry(tmp_path):
    source = write(tmp_path / "a.h5", synthetic_entry(0), synthetic_entry(1))
    with h5py.File(source, "a") as handle:
        handle["structures/1/overlap_blocks"][0] = np.inf
    with pytest.raises(DatasetError, match=r"entry 1 of .*a\.h5 cannot be copied: .*overlap hold"):
        merge_datasets(tmp_path / "out.h5", [source], progress=False)
    assert Dataset(tmp_path / "out.h5").indices() == [0]


def test_commands_on_a_truncated_file_print_one_line_naming_it(small, tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(small.read_bytes()[:3000])
    for command in ("info", "check"):
        result = invoke(command, truncated)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1 and str(truncated) in result.output
    result = invoke("merge", tmp_path / "out.h5", small, truncated, "--renumber")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert str(truncated) in result.output and not (tmp_path / "out.h5").exists()
