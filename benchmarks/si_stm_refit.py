"""Refit the Si STM benchmark's stored ILDOS fields with other RI settings, without SCF.

Each entry of ``--source``'s dataset of one bias holds its field as density matrices; this
script fits them again with the source's backend options updated by ``--backend`` (for
example another floor of the relative metric) into ``--out``, next to a copy of the
slabs and of the SCF timings, so that ``benchmarks/si_stm.py --out OUT`` with the same
options trains and images on the new fits at once. Resumable: a rerun fits only the
entries ``--out`` lacks. The first entry is also fitted with the source's own options
and must reproduce its stored coefficients (a check that the refit is the same fit).
Usage: ``python benchmarks/si_stm_refit.py --source DIR --out DIR2 --bias 1.5
--backend '{"relative_metric_floor": 3e-6}'``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
from rhocore_pyscf.options import PySCFOptions
from rhocore_pyscf.periodic import cells as periodic
from tqdm.auto import tqdm

from rhocore.data.dataset import Dataset, DatasetEntry, DatasetWriter


def bias_folder(root: Path, bias: float) -> Path:
    return root / f"bias{bias:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a si_stm.py --out folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bias", type=float, required=True)
    parser.add_argument("--backend", type=json.loads, required=True, help="JSON overrides")
    args = parser.parse_args()
    source = Dataset(bias_folder(args.source, args.bias) / "dataset.h5")
    options = PySCFOptions(**{**source.metadata.backend_options, **args.backend})
    metadata = dataclasses.replace(source.metadata, backend_options=options.model_dump(mode="json"))
    bias_folder(args.out, args.bias).mkdir(parents=True, exist_ok=True)
    for name in ("slabs.xyz", "timings.json"):
        if not (args.out / name).exists():
            shutil.copy(args.source / name, args.out / name)

    first = source.indices()[0]
    entry = source.entry(first)
    same = periodic.refit(
        entry.atoms, entry.fit.field_state, PySCFOptions(**source.metadata.backend_options)
    )
    scale = np.abs(entry.fit.coefficients).max()
    reproduced = float(np.abs(same.coefficients - entry.fit.coefficients).max() / scale)
    if reproduced > 1e-6:
        raise SystemExit(
            f"the refit of entry {first} with the source's options is {reproduced:.1e} off"
        )

    seconds = []
    with DatasetWriter(bias_folder(args.out, args.bias) / "dataset.h5", metadata) as writer:
        todo = [i for i in source.indices("all") if i not in writer.finished_indices()]
        for index in tqdm(todo, desc="refit"):
            entry = source.entry(index)
            if entry.fit is None:
                writer.write(DatasetEntry.failed(index, entry.atoms, entry.reason or "failed"))
                continue
            start = time.perf_counter()
            fit = periodic.refit(entry.atoms, entry.fit.field_state, options)
            seconds.append(time.perf_counter() - start)
            writer.write(dataclasses.replace(entry, fit=fit))
    print(
        json.dumps(
            {
                "source": str(source.path),
                "backend_overrides": args.backend,
                "refitted": len(seconds),
                "seconds_per_entry": float(np.mean(seconds)) if seconds else None,
                "source_options_reproduce_coefficients_to": reproduced,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
