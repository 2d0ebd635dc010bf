"""Reading FHI-aims' text files: bytes that are not text are a damaged file, named."""

from __future__ import annotations

from pathlib import Path

from rhocore_aims.errors import AimsFileError


def read_text(path: Path) -> str:
    """The text of ``path``; a byte that is not UTF-8 (FHI-aims writes ASCII) is an error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise AimsFileError(
            path, f"is not a text file: byte {error.start} is not UTF-8 (damaged or truncated?)"
        ) from None
