"""A rollback journal that lets a file updated in place survive its writer being killed.

HDF5 changes a file in place, and a flush writes several metadata blocks one after the
other: a writer killed in the middle of one leaves a file whose metadata points past its
end or at half-written blocks, and HDF5 can no longer open it. :class:`JournaledFile` is a
binary file object for h5py's file-object driver that makes every change undoable: before
it first overwrites (or truncates away) a page of the file as it stood at the last
:meth:`JournaledFile.commit`, it appends the page's old bytes to ``<file>.journal``. A
commit empties the journal, so the file as it is then becomes the state to return to.
:func:`roll_back` undoes everything after the last commit of a killed writer, restoring
the saved pages and the committed size: the file is again exactly what it was at that
commit. Appends past the committed size need no journal; the roll-back truncates them.

The writer holds an exclusive ``flock`` on the file while it is open, the lock HDF5's own
readers and writers take, so no other process reads the file mid-update or rolls back a
journal whose writer is alive (on file systems without locks, as HDF5 does with
``HDF5_USE_FILE_LOCKING=FALSE``, that is left to the user). The journal guards against
the process dying at any moment (SIGKILL, out-of-memory, a batch system's time limit); it
does not ``fsync``, so a power failure of the machine is outside what it promises.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import zlib
from pathlib import Path

from rhocore.errors import InputError, RhocoreError

#: First bytes of a journal; followed by the committed size of the file (8 bytes).
MAGIC = b"rhocore-journal-1"
_HEADER = struct.Struct(f"<{len(MAGIC)}sQ")
#: Each record: offset (8 bytes), length (4 bytes), CRC-32 of the old bytes (4 bytes).
_RECORD = struct.Struct("<QII")
#: Granularity of the saved old bytes; each page is saved once per commit.
PAGE_SIZE = 4096


def journal_path(path: Path | str) -> Path:
    """Where the journal of ``path`` lives: next to it, with ``.journal`` appended."""
    path = Path(path)
    return path.with_name(path.name + ".journal")


class FileLockedError(RhocoreError, OSError):
    """Another process has the file open (an HDF5 reader, or a writer)."""


class JournaledFile:
    """``path`` opened for reading and writing, every change journaled until :meth:`commit`.

    Opening takes the file's exclusive lock (:class:`FileLockedError` if another process
    has it) and first rolls back what a killed writer left in the journal.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR)
        try:
            _lock(self._fd, self.path)
            roll_back_locked(self._fd, self.path)
            self._journal = os.open(journal_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        except BaseException:
            os.close(self._fd)
            raise
        self._position = 0
        self._saved_pages: set[int] = set()
        self._committed_size = 0
        self._journal_size = 0
        self.commit()

    # -- the file-object interface h5py's driver calls --------------------------------

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position; ``whence`` as for :func:`os.lseek`."""
        if whence == os.SEEK_SET:
            self._position = offset
        elif whence == os.SEEK_CUR:
            self._position += offset
        elif whence == os.SEEK_END:
            self._position = os.fstat(self._fd).st_size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence}")
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Read at the position into ``buffer``; returns the bytes read (fewer at the end)."""
        view = memoryview(buffer).cast("B")
        data = os.pread(self._fd, len(view), self._position)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = max(os.fstat(self._fd).st_size - self._position, 0)
        data = os.pread(self._fd, size, self._position)
        self._position += len(data)
        return data

    def write(self, data: bytes | memoryview) -> int:
        """Write at the position, saving first the committed bytes it overwrites."""
        view = memoryview(data).cast("B")
        self._save(self._position, self._position + len(view))
        written = 0
        while written < len(view):
            written += os.pwrite(self._fd, view[written:], self._position + written)
        self._position += written
        return written

    def truncate(self, size: int | None = None) -> int:
        """Resize the file to ``size`` (the position by default), saving what it cuts off."""
        size = self._position if size is None else size
        self._save(size, self._committed_size)
        os.ftruncate(self._fd, size)
        return size

    def flush(self) -> None:
        """Nothing to do: writes go straight to the operating system."""

    # -- journal ----------------------------------------------------------------------

    def commit(self) -> None:
        """Make the file's current contents the state a roll-back returns to.

        The journal is emptied before its new header is written, so a kill in between
        leaves an empty journal, which rolls back nothing.
        """
        os.ftruncate(self._journal, 0)
        self._committed_size = os.fstat(self._fd).st_size
        os.pwrite(self._journal, _HEADER.pack(MAGIC, self._committed_size), 0)
        self._journal_size = _HEADER.size
        self._saved_pages.clear()

    def close(self) -> None:
        """Commit, delete the journal and release the lock (the HDF5 file is closed first)."""
        if self._fd < 0:
            return
        try:
            self.commit()
            os.unlink(journal_path(self.path))
        finally:
            os.close(self._journal)
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = -1

    def abandon(self) -> None:
        """Release the file without a commit, after a failed change: the journal stays, and
        the next writer or reader rolls the file back to the last commit."""
        if self._fd < 0:
            return
        os.close(self._journal)
        os.close(self._fd)
        self._fd = -1

    def _save(self, start: int, end: int) -> None:
        """Append to the journal each committed page in [start, end) not saved yet."""
        end = min(end, self._committed_size)
        for page in range(start // PAGE_SIZE, -(-end // PAGE_SIZE)):
            if page in self._saved_pages:
                continue
            offset = page * PAGE_SIZE
            old = os.pread(self._fd, min(PAGE_SIZE, self._committed_size - offset), offset)
            record = _RECORD.pack(offset, len(old), zlib.crc32(old)) + old
            os.pwrite(self._journal, record, self._journal_size)
            self._journal_size += len(record)
            self._saved_pages.add(page)


def _lock(fd: int, path: Path) -> None:
    """Take the exclusive lock of ``fd``; on file systems without locks, go on without."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FileLockedError(f"{path} is open in another process") from None
    except OSError as error:
        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
            raise


def roll_back(path: Path | str) -> bool:
    """Undo what a killed writer of ``path`` did after its last commit.

    True when a journal was found and applied (or was empty) and is now gone; False when
    there is none, or when another process has the file open, so that its journal may
    belong to a live writer.
    """
    path = Path(path)
    if not journal_path(path).exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            _lock(fd, path)
        except FileLockedError:
            return False
        return roll_back_locked(fd, path)
    finally:
        os.close(fd)


def roll_back_locked(fd: int, path: Path) -> bool:
    """:func:`roll_back` for a file already open as ``fd`` under its exclusive lock."""
    journal = journal_path(path)
    try:
        content = journal.read_bytes()
    except FileNotFoundError:
        return False
    if len(content) >= _HEADER.size:
        magic, committed_size = _HEADER.unpack_from(content)
        if magic != MAGIC:
            raise InputError(
                f"{journal} is not a rhocore journal; move it away if {path} is intact"
            )
        for offset, old in reversed(_records(content)):
            os.pwrite(fd, old, offset)
        os.ftruncate(fd, committed_size)
    journal.unlink()
    return True


def _records(content: bytes) -> list[tuple[int, bytes]]:
    """The complete records of a journal; a record cut short by the kill ends the list."""
    records = []
    position = _HEADER.size
    while position + _RECORD.size <= len(content):
        offset, length, checksum = _RECORD.unpack_from(content, position)
        old = content[position + _RECORD.size : position + _RECORD.size + length]
        if len(old) < length or zlib.crc32(old) != checksum:
            break
        records.append((offset, old))
        position += _RECORD.size + length
    return records
