"""The rollback journal: a writer killed after any mix of writes is undone to its last commit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rhocore.data.journal import PAGE_SIZE, FileLockedError, JournaledFile, journal_path, roll_back

_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from rhocore.data.journal import PAGE_SIZE, JournaledFile

    path, seed, commits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    journaled = JournaledFile(path)
    for step in range(commits + 1):
        for _ in range(40):
            size = os.path.getsize(path)
            if rng.random() < 0.1:
                journaled.truncate(int(rng.integers(0, size + 1)))
                continue
            offset = int(rng.integers(0, size + 3 * PAGE_SIZE))
            journaled.seek(offset)
            journaled.write(rng.bytes(int(rng.integers(1, 3 * PAGE_SIZE))))
        if step < commits:
            journaled.commit()
            with open(path + ".expected", "wb") as expected:
                expected.write(open(path, "rb").read())
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _killed_writer(path, seed: int, commits: int) -> None:
    child = subprocess.run([sys.executable, "-c", _WRITER, str(path), str(seed), str(commits)])
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roll_back_restores_the_file_as_it_was_at_the_last_commit(tmp_path, seed):
    path = tmp_path / "data.bin"
    original = np.random.default_rng(100 + seed).bytes(5 * PAGE_SIZE + 123)
    path.write_bytes(original)
    _killed_writer(path, seed, commits=2)
    expected = (tmp_path / "data.bin.expected").read_bytes()
    assert path.read_bytes() != expected, "the writer changed nothing after its last commit"
    assert roll_back(path)
    assert path.read_bytes() == expected
    assert not journal_path(path).exists()
    assert not roll_back(path), "nothing left to roll back"


def test_a_killed_writer_without_a_commit_is_undone_to_the_file_it_opened(tmp_path):
    path = tmp_path / "data.bin"
    original = np.random.default_rng(7).bytes(3 * PAGE_SIZE)
    path.write_bytes(original)
    _killed_writer(path, seed=3, commits=0)
    JournaledFile(path).close()  # opening rolls back first
    assert path.read_bytes() == original


def test_a_record_cut_short_by_the_kill_is_ignored(tmp_path):
    # The kill can stop the journal's last record half-written; its page was not yet
    # overwritten (the record is written first), so the roll-back must skip it.
    path = tmp_path / "data.bin"
    path.write_bytes(np.random.default_rng(8).bytes(4 * PAGE_SIZE))
    _killed_writer(path, seed=4, commits=1)
    with open(journal_path(path), "ab") as journal:
        journal.write(b"\x00" * 10 + b"cut")
    assert roll_back(path)
    assert path.read_bytes() == (tmp_path / "data.bin.expected").read_bytes()


def test_a_clean_close_leaves_the_writes_and_no_journal(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"a" * 10)
    journaled = JournaledFile(path)
    journaled.seek(5)
    journaled.write(b"bbbbbbbbbb")
    journaled.close()
    assert path.read_bytes() == b"aaaaabbbbbbbbbb"
    assert not journal_path(path).exists()


_HOLD_OPEN = textwrap.dedent(
    """
    import sys
    from rhocore.data.journal import JournaledFile
    journaled = JournaledFile(sys.argv[1])
    print("open", flush=True)
    sys.stdin.read()
    journaled.close()
    """
)


def test_a_live_writer_locks_out_other_writers_and_its_journal_is_left_alone(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)
    writer = subprocess.Popen(
        [sys.executable, "-c", _HOLD_OPEN, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        with pytest.raises(FileLockedError, match=f"{path} is open in another process"):
            JournaledFile(path)
        assert not roll_back(path), "the journal of a live writer must not be rolled back"
        assert journal_path(path).exists()
    finally:
        writer.communicate("")
    assert not journal_path(path).exists()
