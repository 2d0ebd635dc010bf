"""``rhocore dataset merge``: datasets of one backend, target and metric into one file.

Entries keep their indices, and two inputs holding one index are refused, unless the
entries are renumbered: then the entries of the first input come first, in index order,
then those of the second, and so on, so that the numbering is the same on every run.
The output is written through :class:`rhocore.data.dataset.writer.DatasetWriter`
(crash-safe), and a rerun of the same merge adds only the entries the output lacks. Failed
entries are kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import rhocore
from rhocore.data.dataset import Dataset, DatasetError, DatasetMetadata, DatasetWriter
from rhocore.parallel.progress import progress_bar


@dataclass(frozen=True)
class Copy:
    """One entry to copy: its index in the output, and where it comes from."""

    index: int
    source: Dataset
    source_index: int


@dataclass
class MergeSummary:
    """What a merge did: entries added now, entries the output already held."""

    output: Path
    added: int
    already_there: int
    failed: int
    ranges: list[tuple[str, int, int]]

    def table(self) -> str:
        """Totals, and the output indices each input went to."""
        lines = [
            f"{self.output}: added {self.added} entries ({self.failed} of them failed ones), "
            f"{self.already_there} were already there"
        ]
        for path, first, last in self.ranges:
            lines.append(f"  {path} -> indices {first}..{last}")
        return "\n".join(lines)


def merge_datasets(
    output: Path, inputs: list[Path], *, renumber: bool = False, progress: bool = True
) -> MergeSummary:
    """Copy every entry of ``inputs`` into ``output`` (created, or resumed if it exists)."""
    output = Path(output)
    if not inputs:
        raise DatasetError("give at least one input dataset to merge")
    if any(output.resolve() == Path(path).resolve() for path in inputs):
        raise DatasetError(f"the output {output} is one of the inputs; write to a new file")
    sources = [Dataset(path) for path in inputs]
    try:
        metadata = merged_metadata(sources)
        copies = plan_copies(sources, renumber)
        present = _existing_structures(output, copies)
        summary = MergeSummary(output, 0, len(present), 0, _ranges(copies))
        todo = [copy for copy in copies if copy.index not in present]
        with DatasetWriter(output, metadata) as writer:
            for copy in progress_bar(todo, desc="merge", unit="entry", disable=not progress):
                entry = copy.source.entry(copy.source_index)
                entry.index = copy.index
                try:
                    writer.write(entry)
                except DatasetError as error:
                    raise DatasetError(
                        f"entry {copy.source_index} of {copy.source.path} cannot be copied: "
                        f"{error}. `rhocore dataset check {copy.source.path}` lists what is "
                        "wrong with it"
                    ) from None
                summary.added += 1
                summary.failed += entry.status == "failed"
        return summary
    finally:
        for source in sources:
            source.close()


def merged_metadata(sources: list[Dataset]) -> DatasetMetadata:
    """The metadata all ``sources`` share, with the union of their basis layouts.

    Any other difference (backend, its options, target, metric) is an error listing them.
    """
    first = sources[0]
    reference = first.metadata
    layout = reference.layout
    for source in sources[1:]:
        other = source.metadata
        differing = [name for name in reference.differences(other) if name != "basis_layout"]
        if differing:
            mine, theirs = reference.to_attrs(), other.to_attrs()
            details = "; ".join(
                f"{name}: {first.path} has {mine[name]}, {source.path} has {theirs[name]}"
                for name in differing
            )
            raise DatasetError(
                f"{source.path} and {first.path} differ in {', '.join(differing)} ({details}); "
                "only datasets of one backend, target and metric merge"
            )
        if other.layout is not None:
            try:
                layout = other.layout if layout is None else layout.merged(other.layout)
            except ValueError as error:
                raise DatasetError(f"{source.path} and {first.path}: {error}") from None
    return dataclasses.replace(reference, layout=layout, rhocore_version=rhocore.__version__)


def plan_copies(sources: list[Dataset], renumber: bool) -> list[Copy]:
    """Every entry of every source with its output index; collisions are an error."""
    copies: list[Copy] = []
    owner: dict[int, Dataset] = {}
    for source in sources:
        for index in source.indices("all"):
            new = len(copies) if renumber else index
            if new in owner:
                raise DatasetError(
                    f"structure {index} is in both {owner[new].path} and {source.path}; pass "
                    "--renumber to number the entries of the inputs one after another"
                )
            owner[new] = source
            copies.append(Copy(new, source, index))
    return copies


def _existing_structures(output: Path, copies: list[Copy]) -> set[int]:
    """Output indices that already hold their entry; an entry that differs is an error."""
    if not output.exists():
        return set()
    existing = Dataset(output)
    try:
        held = set(existing.indices("all"))
        present = set()
        for copy in copies:
            if copy.index not in held:
                continue
            mine, theirs = existing.entry(copy.index), copy.source.entry(copy.source_index)
            same = (
                mine.status == theirs.status
                and np.array_equal(mine.atoms.numbers, theirs.atoms.numbers)
                and np.array_equal(mine.atoms.positions, theirs.atoms.positions)
            )
            if not same:
                raise DatasetError(
                    f"{output} already holds a different structure {copy.index} than entry "
                    f"{copy.source_index} of {copy.source.path}; merge into a new file"
                )
            present.add(copy.index)
        return present
    finally:
        existing.close()


def _ranges(copies: list[Copy]) -> list[tuple[str, int, int]]:
    """(input, lowest, highest output index) of each input, in input order."""
    spans: dict[int, tuple[str, int, int]] = {}
    for copy in copies:
        _, first, last = spans.get(id(copy.source), ("", copy.index, copy.index))
        spans[id(copy.source)] = (str(copy.source.path), first, max(last, copy.index))
    return list(spans.values())
