"""The one error type of the FHI-aims plugin: a file or folder that cannot be used, and why."""

from __future__ import annotations

from pathlib import Path

from rhocore.api import RhocoreError


class AimsFileError(RhocoreError, ValueError):
    """An FHI-aims file that is missing, truncated or inconsistent.

    The message always names the file and says what is wrong, in one line.
    """

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
