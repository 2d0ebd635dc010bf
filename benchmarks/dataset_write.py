"""Cost of the rollback journal: entries per second written with and without it.

The same synthetic entries (distorted waters with a dense SPD metric) are written twice,
one after the other, repeated ``--repeats`` times with the best time of each counting:
through :class:`rhocore.data.dataset.writer.DatasetWriter` (HDF5 on the journaled file
object, a commit after each entry) and, as the reference, with the same entry layout into a file
HDF5 opens itself, flushed after each entry (the writer's cost before the journal, which
was not safe against a kill inside the flush). The file sizes must agree.
Usage: ``python benchmarks/dataset_write.py [--entries 20] [--molecules 16] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py

from rhocore.data.dataset import DatasetEntry, DatasetWriter
from rhocore.data.dataset.format import STRUCTURES_GROUP
from rhocore.data.dataset.writer import LIBVER, write_group
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata


def journaled_seconds(path: Path, entries: list[DatasetEntry]) -> float:
    """Wall time of writing ``entries`` through DatasetWriter."""
    start = time.perf_counter()
    with DatasetWriter(path, synthetic_metadata()) as writer:
        for entry in entries:
            writer.write(entry)
    return time.perf_counter() - start


def unjournaled_seconds(path: Path, entries: list[DatasetEntry]) -> float:
    """Wall time of writing the same groups with HDF5's own file driver, one flush each."""
    start = time.perf_counter()
    with h5py.File(path, "w", libver=LIBVER) as handle:
        structures = handle.create_group(STRUCTURES_GROUP)
        for entry in entries:
            write_group(structures.create_group(str(entry.index)), entry)
            handle.flush()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--molecules", type=int, default=16, help="waters per entry")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    entries = [synthetic_entry(i, n_molecules=args.molecules) for i in range(args.entries)]
    timings: dict[str, list[float]] = {"journaled": [], "unjournaled": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as root:
        for repeat in range(args.repeats):
            for name, write in (
                ("journaled", journaled_seconds),
                ("unjournaled", unjournaled_seconds),
            ):
                path = Path(root) / f"{name}-{repeat}.h5"
                timings[name].append(write(path, entries))
                sizes[name] = path.stat().st_size
    best = {name: min(values) for name, values in timings.items()}
    megabytes = sizes["journaled"] / 1e6
    print(
        json.dumps(
            {
                "entries": args.entries,
                "waters_per_entry": args.molecules,
                "file_MB": {name: round(size / 1e6, 2) for name, size in sizes.items()},
                "seconds_best": {name: round(value, 3) for name, value in best.items()},
                "seconds_all": {k: [round(v, 3) for v in vs] for k, vs in timings.items()},
                "MB_per_s_journaled": round(megabytes / best["journaled"], 1),
                "journaled_over_unjournaled": round(best["journaled"] / best["unjournaled"], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
