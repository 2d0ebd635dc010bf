"""``rhocore aims import``: folders of existing FHI-aims RI fits -> one rhocore dataset.

Three kinds of folder are recognised:

``aims``
    A finished FHI-aims RI run: ``aims.out`` plus the RI output files of either keyword
    generation (:mod:`rhocore_aims.keywords`).
``rho_learn`` / ``rholearn``
    Processed folders of the two earlier FHI-aims learning tools (``ri_coeffs.npz``,
    ``ri_ovlp.npz`` [, ``ri_projs.npz``], ``calc_info.json``). They hold no structure:
    it comes from an xyz file, frame = the folder's integer name.

A folder that is incomplete or failed is skipped and reported; the others become dataset
entries (written crash-safely, so an interrupted import resumes where it stopped).
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import ase
import ase.io
import numpy as np

from rhocore.api import (
    DatasetEntry,
    DatasetMetadata,
    DatasetWriter,
    MissingFileError,
    OrbitalData,
    RIFit,
    progress_bar,
)
from rhocore.api import __version__ as rhocore_version
from rhocore_aims import keywords, legacy
from rhocore_aims.errors import AimsFileError
from rhocore_aims.fit import grid_field_state, overlap_fit
from rhocore_aims.parsers.aims_out import check_finished, parse_aims_out
from rhocore_aims.parsers.eigenvalues import parse_ks_orbital_info
from rhocore_aims.parsers.ri_files import read_ri_outputs

log = logging.getLogger(__name__)

FolderKind = Literal["aims", "rho_learn", "rholearn"]


@dataclass
class ImportSummary:
    """Folders imported now, already in the dataset, and skipped with their reason."""

    imported: list[Path] = field(default_factory=list)
    already_present: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)

    def table(self) -> str:
        """One line of counts, then one line per skipped folder."""
        lines = [
            f"imported {len(self.imported)}, already in the dataset "
            f"{len(self.already_present)}, skipped {len(self.skipped)}"
        ]
        for path, reason in sorted(self.skipped.items()):
            lines.append(
                f"  skipped {reason}" if str(path) in reason else f"  skipped {path}: {reason}"
            )
        return "\n".join(lines)


@dataclass
class ImportedFolder:
    """One folder read into rhocore's terms, before it becomes a dataset entry."""

    folder: Path
    kind: FolderKind
    atoms: ase.Atoms
    fit: RIFit
    orbitals: OrbitalData | None
    weights: np.ndarray | None
    total_energy: float | None
    converged: bool
    version: str
    expected_integral: float | None


def folder_kind(folder: Path) -> FolderKind | None:
    """What a folder holds, or None when it is none of the three kinds."""
    if (folder / "aims.out").is_file() and any(
        (folder / names[1]).is_file() for names in keywords.RI_OUTPUT_FILES.values()
    ):
        return "aims"
    if (folder / "ri_coeffs.npz").is_file():
        return legacy.detect_layout(folder)
    return None


def find_folders(paths: Iterable[Path]) -> list[Path]:
    """The recognised folders among ``paths`` and (recursively) below them, sorted."""
    found: set[Path] = set()
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise MissingFileError(f"{path}: no such file or folder")
        candidates = [path] if path.is_dir() else []
        if path.is_dir():
            candidates += [sub for sub in path.rglob("*") if sub.is_dir()]
        found.update(folder for folder in candidates if folder_kind(folder) is not None)
    return sorted(found, key=_sort_key)


def frame_index(folder: Path) -> int | None:
    """The integer in a folder's name ('12', 'qm7_3'), or its parent's (rholearn's 'N/run')."""
    for name in (folder.name, folder.parent.name):
        match = re.fullmatch(r"(?:.*\D)?(\d+)", name)
        if match:
            return int(match.group(1))
    return None


def read_folder(
    folder: Path, xyz: Path | None, target: str, *, allow_pickle: bool = False
) -> ImportedFolder:
    """Read one recognised folder; AimsFileError names what is missing or broken."""
    kind = folder_kind(folder)
    if kind is None:
        raise AimsFileError(folder, "is not an FHI-aims run or processed RI folder")
    if kind == "aims":
        return _read_aims_run(folder, target)
    return _read_processed(folder, kind, xyz, target, allow_pickle)


def import_folders(
    paths: Iterable[Path],
    output: Path,
    *,
    xyz: Path | None = None,
    target: str = "density",
    allow_pickle: bool = False,
    progress: bool = True,
) -> ImportSummary:
    """Import every recognised folder under ``paths`` into the dataset ``output``."""
    paths = [Path(path) for path in paths]
    folders = find_folders(paths)
    if not folders:
        raise AimsFileError(
            ", ".join(str(path) for path in paths),
            "holds no FHI-aims run folder (aims.out + RI files) and no processed RI folder "
            "(ri_coeffs.npz)",
        )
    indices = _indices(folders)
    summary = ImportSummary()
    writer: DatasetWriter | None = None
    try:
        for folder in progress_bar(folders, desc="import", unit="folder", disable=not progress):
            index = indices[folder]
            if writer is not None and index in writer.finished_indices():
                summary.already_present.append(folder)
                continue
            try:
                imported = read_folder(folder, xyz, target, allow_pickle=allow_pickle)
            except (AimsFileError, ValueError, OSError) as error:
                summary.skipped[folder] = str(error)
                log.warning("skipped %s: %s", folder, error)
                continue
            if writer is None:
                writer = DatasetWriter(output, _metadata(imported, target))
                writer.open()
                if index in writer.finished_indices():
                    summary.already_present.append(folder)
                    continue
            writer.write(_entry(index, imported))
            summary.imported.append(folder)
    finally:
        if writer is not None:
            writer.close()
    return summary


def _read_aims_run(folder: Path, target: str) -> ImportedFolder:
    output_path = folder / "aims.out"
    output = parse_aims_out(output_path)
    check_finished(output, output_path, require_converged=False)  # RI steps skip the SCF
    generation = next(
        name for name, files in keywords.RI_OUTPUT_FILES.items() if (folder / files[1]).is_file()
    )
    atoms = _structure_of_run(folder)
    outputs = read_ri_outputs(folder, atoms.numbers, generation)
    orbitals = weights = None
    info_path = folder / keywords.ORBITAL_INFO_FILE
    if info_path.is_file():
        info = parse_ks_orbital_info(info_path)
        orbitals = info.orbitals
        weights = _weights_of_run(folder, info, orbitals, target)
    expected = output.n_electrons if target == "density" else None
    if weights is not None:
        expected = float(weights.sum())
    fit = overlap_fit(
        outputs.coefficients,
        outputs.overlap,
        outputs.projections,
        outputs.layout,
        grid_field_state(folder, generation, expected),
    )
    return ImportedFolder(
        folder=folder,
        kind="aims",
        atoms=atoms,
        fit=fit,
        orbitals=orbitals,
        weights=weights if orbitals is not None else None,
        total_energy=output.total_energy_ev,
        converged=output.converged,
        version=output.version,
        expected_integral=expected,
    )


def _read_processed(
    folder: Path, kind: FolderKind, xyz: Path | None, target: str, allow_pickle: bool
) -> ImportedFolder:
    atoms = _structure_from_xyz(folder, xyz)
    processed = legacy.read_processed_folder(folder, atoms, allow_pickle=allow_pickle)
    info = processed.calc_info
    orbitals = legacy.orbital_info(info)
    weights = None
    if orbitals is not None:
        weights = _target_weights(target, orbitals, folder)
    fit = overlap_fit(
        processed.coefficients, processed.overlap, processed.projections, processed.layout
    )
    scf = info.get("scf", {})
    energy = info.get("tot_energy_eV")
    return ImportedFolder(
        folder=folder,
        kind=kind,
        atoms=atoms,
        fit=fit,
        orbitals=orbitals if weights is not None else None,
        weights=weights,
        total_energy=None if energy is None else float(energy),
        converged=bool(scf.get("converged", True)),
        version=str(info.get("aims", {}).get("version", "unknown")),
        expected_integral=_electron_count(folder, orbitals) if target == "density" else None,
    )


def _electron_count(folder: Path, orbitals: OrbitalData | None) -> float | None:
    """Electrons of a processed folder: from its orbitals, else its fitting-error record."""
    if orbitals is not None:
        return orbitals.n_electrons
    record = folder / "df_error.json"
    if record.is_file():
        norm = json.loads(record.read_text()).get("norm")
        if norm is not None:
            return float(round(float(norm)))
    return None


def _structure_of_run(folder: Path) -> ase.Atoms:
    geometry = folder / "geometry.in"
    source = geometry if geometry.is_file() else folder / "aims.out"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # ASE's notice that aims IO moves
            if source == geometry:
                return ase.io.read(source, format="aims")
            return ase.io.read(source, format="aims-output", index=0)
    except Exception as error:  # ASE raises many kinds on a bad file
        raise AimsFileError(source, f"could not read the structure ({error})") from None


def _structure_from_xyz(folder: Path, xyz: Path | None) -> ase.Atoms:
    index = frame_index(folder)
    if index is None:
        raise AimsFileError(folder, "has no integer name, so its frame in the xyz is unknown")
    if xyz is None:
        local = sorted(folder.glob("*.xyz"))
        if len(local) != 1:
            raise AimsFileError(
                folder, "processed folders need --xyz FILE: the structures they were made from"
            )
        xyz = local[0]
    try:
        return ase.io.read(xyz, index=index)
    except (IndexError, StopIteration):
        raise AimsFileError(xyz, f"has no frame {index} (needed by folder {folder})") from None


def _weights_of_run(folder: Path, info, orbitals: OrbitalData, target: str) -> np.ndarray | None:
    path = folder / keywords.ORBITAL_WEIGHTS_FILE
    if not path.is_file():
        return _target_weights(target, orbitals, folder)
    values = np.loadtxt(path, ndmin=1)
    if values.size != info.row_index.size:
        raise AimsFileError(
            path, f"has {values.size} weights, ks_orbital_info.out lists {info.row_index.size}"
        )
    return values[info.row_index]


def _target_weights(target: str, orbitals: OrbitalData, folder: Path) -> np.ndarray | None:
    """W(a) of the imported field when the target is one rhocore can rebuild from orbitals."""
    from rhocore.api import Registry, get_plugin_manager

    registry = Registry(get_plugin_manager())
    try:
        return registry.get("target", target)().weights(orbitals)
    except (ValueError, KeyError) as error:
        log.info("no orbital weights for %s: %s", folder, error)
        return None


def _metadata(first: ImportedFolder, target: str) -> DatasetMetadata:
    return DatasetMetadata(
        backend_name="aims",
        backend_version=first.version,
        backend_options={"imported_from": first.kind},
        target_name=target,
        target_options={},
        layout=None,
        metric_kind="overlap",
        rhocore_version=rhocore_version,
    )


def _entry(index: int, imported: ImportedFolder) -> DatasetEntry:
    return DatasetEntry(
        index=index,
        atoms=imported.atoms,
        fit=imported.fit,
        orbitals=imported.orbitals,
        weights=imported.weights,
        total_energy=imported.total_energy,
        scf_converged=imported.converged,
        status="done",
        expected_integral=imported.expected_integral,
    )


def _indices(folders: list[Path]) -> dict[Path, int]:
    """Frame numbers from folder names where all have one and they are unique; else 0..N-1."""
    frames = [frame_index(folder) for folder in folders]
    if None not in frames and len(set(frames)) == len(frames):
        return dict(zip(folders, frames, strict=True))  # type: ignore[arg-type]
    return {folder: position for position, folder in enumerate(folders)}


def _sort_key(folder: Path) -> tuple:
    index = frame_index(folder)
    return (str(folder.parent), index if index is not None else -1, folder.name)
