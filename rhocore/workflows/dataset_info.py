"""``rhocore dataset info``: what a dataset file holds, also while it is being written.

The file is read without HDF5's file lock, so a dataset that a running ``rhocore
generate`` extends can be inspected; such a read may meet a half-updated file, and is
then retried.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from rhocore.data.dataset import FORMAT_VERSION, Dataset, DatasetError, is_being_written
from rhocore.qc.basis import BasisLayout

#: Reads of a file that another process is writing, before giving up.
ATTEMPTS = 5
RETRY_SECONDS = 0.2


@dataclass
class DatasetInfo:
    """Summary of one dataset file; ``state`` says whether it is complete or in progress."""

    path: Path
    size_bytes: int
    metadata: dict[str, Any]
    units: dict[str, str]
    done: int
    failed: dict[int, str]
    layout: dict[str, dict[str, Any]]
    atoms_per_element: dict[str, int] = field(default_factory=dict)
    structures_per_element: dict[str, int] = field(default_factory=dict)
    atoms_range: tuple[int, int] | None = None
    n_coefficients: int = 0
    state: str = "complete"
    format_version: int = FORMAT_VERSION
    metric_cutoff: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values, for ``rhocore dataset info --json``."""
        return {
            "path": str(self.path),
            "state": self.state,
            "size_bytes": self.size_bytes,
            "format_version": self.format_version,
            **self.metadata,
            "done": self.done,
            "failed": len(self.failed),
            "failed_reasons": {str(index): reason for index, reason in self.failed.items()},
            "basis_layout": self.layout,
            "atoms_per_element": self.atoms_per_element,
            "structures_per_element": self.structures_per_element,
            "atoms_per_structure": list(self.atoms_range) if self.atoms_range else None,
            "n_coefficients": self.n_coefficients,
            "units": self.units,
            **({"metric_cutoff": self.metric_cutoff} if self.metric_cutoff else {}),
        }

    def table(self) -> str:
        """The summary as aligned text for the terminal."""
        meta = self.metadata
        lines = [
            f"{self.path}: format {self.format_version}, {self.size_bytes / 1e6:.2f} MB, "
            f"{self.state}",
            f"  backend   {meta['backend_name']} {meta['backend_version']} "
            f"{json.dumps(meta['backend_options'], sort_keys=True)}",
            f"  target    {meta['target_name']} "
            f"{json.dumps(meta['target_options'], sort_keys=True)}",
            f"  metric    {meta['metric_kind']}; written by rhocore {meta['rhocore_version']}",
            f"  entries   {self.done} done, {len(self.failed)} failed",
        ]
        if self.atoms_range:
            elements = ", ".join(
                f"{symbol} {count} atoms in {self.structures_per_element[symbol]} structures"
                for symbol, count in self.atoms_per_element.items()
            )
            low, high = self.atoms_range
            lines.append(f"  atoms     {low}-{high} per structure; {elements}")
        lines.append(f"  RI coefficients of the done entries: {self.n_coefficients}")
        if self.metric_cutoff:
            cut = self.metric_cutoff
            lines.append(
                f"  metric cutoff {cut['cutoff_angstrom']:g} angstrom keeps "
                f"{100 * cut['pairs_kept_fraction']:.1f} % of the atom pairs; d^T S d changes "
                f"by {cut['mean_error']:.2e} on average, {cut['max_error']:.2e} at most (relative)"
            )
        lines.append("  basis layout (radial functions per l):")
        if not self.layout:
            lines.append("    not known yet (fixed by the first fit)")
        for symbol, element in self.layout.items():
            lines.append(
                f"    {symbol:<3} l <= {element['lmax']}  {tuple(element['radial_per_l'])}  "
                f"{element['functions_per_atom']} functions per atom"
            )
        if self.failed:
            lines.append("  failed entries:")
            lines += [f"    {index}: {reason}" for index, reason in sorted(self.failed.items())]
        lines.append("  units:")
        lines += [f"    {name}: {unit}" for name, unit in self.units.items()]
        return "\n".join(lines)


def dataset_info(path: Path, metric_cutoff: float | None = None) -> DatasetInfo:
    """Read the summary of ``path``; retried a few times while another process writes it.

    With ``metric_cutoff`` (angstrom), the summary says what training with that
    ``training.metric_cutoff`` keeps of the metric, and the error it makes in d^T S d.
    """
    attempt = 1
    while True:
        writing = is_being_written(path)
        try:
            info = _read_info(Path(path), writing)
            if metric_cutoff is not None:
                info.metric_cutoff = _cutoff_summary(Path(path), metric_cutoff, writing)
            return info
        except DatasetError:
            if not writing or attempt == ATTEMPTS:
                raise
        attempt += 1
        time.sleep(RETRY_SECONDS)


def _read_info(path: Path, writing: bool) -> DatasetInfo:
    dataset = Dataset(path, locking=False)
    try:
        metadata = dataset.metadata
        info = DatasetInfo(
            path=path,
            size_bytes=path.stat().st_size,
            metadata={name: value for name, value in vars(metadata).items() if name != "layout"},
            units=dataset.units,
            done=len(dataset.indices("done")),
            failed={index: dataset.entry(index).reason for index in dataset.indices("failed")},
            layout=_layout_summary(metadata.layout),
            state=_state(dataset, writing),
            format_version=dataset.format_version,
        )
        atoms_per_element: Counter[str] = Counter()
        structures_per_element: Counter[str] = Counter()
        sizes = []
        for index in dataset.indices("all"):
            numbers = dataset.atoms(index).numbers
            sizes.append(len(numbers))
            symbols = Counter(chemical_symbols[z] for z in numbers)
            atoms_per_element.update(symbols)
            structures_per_element.update(symbols.keys())
            if index not in info.failed and metadata.layout is not None:
                try:
                    info.n_coefficients += metadata.layout.size(numbers)
                except ValueError as error:
                    raise DatasetError(f"{path}: structure {index}: {error}") from None
        order = sorted(atoms_per_element, key=chemical_symbols.index)
        info.atoms_per_element = {symbol: atoms_per_element[symbol] for symbol in order}
        info.structures_per_element = {symbol: structures_per_element[symbol] for symbol in order}
        info.atoms_range = (min(sizes), max(sizes)) if sizes else None
        return info
    finally:
        dataset.close()


def _cutoff_summary(path: Path, cutoff: float, writing: bool) -> dict[str, float]:
    """Pairs kept and relative error of d^T S d over the done entries, for ``cutoff``."""
    dataset = Dataset(path, locking=not writing)
    try:
        kept, total, errors = 0, 0, []
        for index in dataset.indices():
            metric = dataset.metric_blocks(index, cutoff)
            n_atoms = len(metric.offsets) - 1
            kept += len(metric.pairs)
            total += n_atoms * (n_atoms + 1) // 2
            errors.append(metric.cutoff_error(dataset.coefficients(index)))
    finally:
        dataset.close()
    return {
        "cutoff_angstrom": cutoff,
        "pairs_kept_fraction": kept / total if total else 1.0,
        "mean_error": float(np.mean(errors)) if errors else 0.0,
        "max_error": float(np.max(errors)) if errors else 0.0,
    }


def _layout_summary(layout: BasisLayout | None) -> dict[str, dict[str, Any]]:
    if layout is None:
        return {}
    return {
        chemical_symbols[z]: {
            "lmax": layout.lmax(z),
            "radial_per_l": list(layout.nmax[z]),
            "functions_per_atom": layout.atom_size(z),
        }
        for z in layout.species
    }


def _state(dataset: Dataset, writing: bool) -> str:
    """'complete', 'being written', or what a killed writer left behind."""
    if writing:
        return "being written by another process now: counts may grow"
    staging = dataset.staging_entries()
    if staging is None:
        return "complete"
    if staging:
        return (
            f"a writer was killed while writing structure(s) {', '.join(staging)}; rerun the "
            "command that wrote the file to resume it (partial entries are dropped)"
        )
    return (
        "no writer holds it, but the last one did not close it (killed?); rerun the command "
        "that wrote the file to resume it"
    )
