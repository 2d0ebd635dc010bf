"""Structure files: every frame ASE reads, checked before any work is spent on it.

A structure with NaN or infinite positions or cell would run through an SCF or a model
and come out as NaN fields; it is refused at reading, with the file and frame named.
"""

from __future__ import annotations

import glob
from pathlib import Path

import ase
import ase.io
import numpy as np

from rhocore.errors import RhocoreError


class StructureError(RhocoreError, ValueError):
    """A structure file that cannot be read, or a structure in it that cannot be used."""


#: ``atoms.info`` key of the file a structure was read from (absolute path).
SOURCE_KEY = "source_file"
#: Characters that make a structure path a glob pattern.
GLOB_CHARACTERS = "*?["


def is_glob(pattern: Path | str) -> bool:
    """Whether ``pattern`` holds glob wildcards (``*``, ``?``, ``[...]``)."""
    return any(character in str(pattern) for character in GLOB_CHARACTERS)


def expand_structure_paths(pattern: Path | str, base_dir: Path | str = ".") -> list[Path]:
    """The files that ``pattern`` names, relative to ``base_dir`` unless absolute.

    A glob (``outputs/*.log``, ``runs/**/out.txt``) gives its matching files in sorted
    order, so that structure indices stay the same when a run resumes; a plain path
    gives itself. Raises :class:`StructureError` when nothing exists.
    """
    path = Path(pattern)
    path = path if path.is_absolute() else Path(base_dir) / path
    if not is_glob(pattern):
        if not path.exists():
            raise StructureError(f"'{path}' does not exist")
        return [path]
    matches = sorted(Path(match) for match in glob.glob(str(path), recursive=True))
    files = [match for match in matches if match.is_file()]
    if not files:
        raise StructureError(f"no file matches the pattern '{path}'")
    return files


def read_structure_file(
    path: Path | str, index: str = ":", format: str | None = None
) -> list[ase.Atoms]:
    """The frames of ``path`` that the ASE ``index`` selects, each checked to be finite."""
    try:
        frames = ase.io.read(path, index=index, format=format)
    except Exception as error:  # ASE raises every kind of exception on a file it cannot parse
        problem = " ".join(f"{type(error).__name__}: {error}".split())
        raise StructureError(f"ASE cannot read structures from '{path}': {problem}") from error
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise StructureError(f"'{path}' holds no structures (ASE index '{index}')")
    for number, atoms in enumerate(frames):
        where = f"frame {number}" if index == ":" else f"structure {number} of index '{index}'"
        check_finite_structure(atoms, f"{where} of '{path}'")
        atoms.info.setdefault(SOURCE_KEY, str(Path(path).resolve()))
    return frames


def check_finite_structure(atoms: ase.Atoms, label: str) -> None:
    """Refuse NaN or infinite positions or cell, naming the structure by ``label``."""
    for name, values in (("positions", atoms.positions), ("cell", atoms.cell.array)):
        if not np.all(np.isfinite(values)):
            raise StructureError(
                f"{label} ({atoms.get_chemical_formula()}) has NaN or infinite {name}; fix or "
                "remove that structure"
            )
