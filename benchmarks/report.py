"""Docs from data: the docs' benchmark tables, regenerated from ``benchmarks/results/*.json``.

Each result file with a table below becomes ``docs/generated/<name>.rst``, which the docs
pull in with ``.. include::``. A table prints only values its result file holds (rounded),
so ``tests/test_benchmark_numbers.py`` can trace every number back to the file.

    python -m benchmarks.report        # or: make benchmarks-report
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GENERATED = ROOT / "docs" / "generated"

Document = dict[str, Any]


def figure(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits; tiny values in scientific notation."""
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.{digits - 1}e}".replace("e-0", "e-")
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def seconds_or_failure(value: float | str) -> str:
    """A time in seconds, or the failure a benchmark recorded instead of it."""
    return figure(value) if isinstance(value, int | float) else value


def list_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An rst list-table."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def provenance_line(document: Document) -> str:
    """When, where and how a result was measured, in one sentence."""
    provenance = document["provenance"]
    machine = provenance["machine"]
    commit = (provenance["commit"] or "unknown")[:10]
    tree = "clean tree" if provenance["clean"] else "modified tree"
    load = ""
    if "load_average_at_start" in machine:
        start, end = machine["load_average_at_start"][0], machine["load_average_at_end"][0]
        load = f", load average {figure(start, 2)} at the start, {figure(end, 2)} at the end"
    return (
        f"Measured on {provenance['date'][:10]} (commit ``{commit}``, {tree}) on "
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB{load}, "
        f"with ``{provenance['command']}``.\n"
    )


def ridge_cholesky(document: Document) -> str:
    """Factorisation times of PyTorch's and scipy's LAPACK, per matrix size."""
    rows = [
        [
            str(size["size"]),
            seconds_or_failure(size["torch_seconds"]),
            seconds_or_failure(size["scipy_seconds"]),
            f"{figure(size['scipy_over_torch'])}×" if "scipy_over_torch" in size else "—",
            figure(size["solution_difference"], 2) if "solution_difference" in size else "—",
        ]
        for size in document["sizes"]
    ]
    header = ["matrix size", "PyTorch (MKL) s", "scipy (OpenBLAS) s", "scipy / PyTorch"]
    return list_table([*header, "largest solution difference"], rows)


def export_speed(document: Document) -> str:
    """Export cost, then exported model against ``ModelFile.predict`` per cluster."""
    text = (
        f"``rhocore export`` took {figure(document['export_s'])} s and wrote a "
        f"{figure(document['file_mb'])} MB file, which metatomic's ASE calculator loaded in "
        f"{figure(document['load_s'])} s ({document['torch_threads']} torch thread, best of "
        f"{document['repeats']} calls):\n\n"
    )
    clusters = [
        value for value in document.values() if isinstance(value, dict) and "atoms" in value
    ]
    rows = [
        [
            str(cluster["atoms"]),
            figure(cluster["exported_ms"]),
            figure(cluster["rhocore_predict_ms"]),
            f"{figure(cluster['rhocore_predict_over_exported'])}×",
            figure(cluster["max_relative_difference"], 1),
        ]
        for cluster in clusters
    ]
    header = ["atoms", "exported ms", "``ModelFile.predict`` ms", "predict / exported"]
    return text + list_table([*header, "largest relative difference"], rows)


def generate_throughput(document: Document) -> str:
    """Structures per minute on one and on two Dask workers."""
    workers = {"dask_1_worker": "one", "dask_2_workers": "two"}
    rows = [
        [
            workers[name],
            ", ".join(figure(value) for value in run["seconds"]),
            figure(run["structures_per_minute"]),
        ]
        for name, run in document["results"].items()
    ]
    table = list_table(["workers", "runs (s)", "structures per minute (best run)"], rows)
    return (
        f"{document['structures']} structures ({document['method']}), "
        f"{document['repeats']} runs of each executor, alternating:\n\n{table}\n"
        f"Two workers against one: {figure(document['speedup_2_vs_1_workers'])}× the "
        "throughput.\n"
    )


def ddp_training(document: Document) -> str:
    """One process against torchrun: seconds per epoch and loss agreement."""
    one, several = document["one_process"], document["torchrun"]
    differences = document["max_relative_difference"]
    header = ["quantity", "one process", f"{document['processes']} processes (torchrun)"]
    rows = [
        ["s per epoch", figure(one["s_per_epoch"]), figure(several["s_per_epoch"])],
        ["command wall time, s", figure(one["wall_s"]), figure(several["wall_s"])],
    ]
    return (
        f"{document['structures']} structures of {document['atoms_per_structure']} atoms, "
        f"batch {document['batch_size']}, {document['epochs']} epochs, "
        f"{document['optimizer']}:\n\n{list_table(header, rows)}\n"
        f"Epoch time ratio (one process / torchrun): {figure(document['epoch_speedup'])}. "
        "Largest relative difference of the per-epoch losses: training "
        f"{figure(differences['train_loss'], 2)}, validation "
        f"{figure(differences['validation_loss'], 2)}.\n"
    )


def train_memory(document: Document) -> str:
    """Peak and step memory of one training step, dense metric against blocks."""
    rows = [
        [
            str(point["atoms"]),
            str(point["functions"]),
            f"{figure(point['dense']['peak_rss_mib'])} / {figure(point['dense']['step_mib'])}",
            f"{figure(point['blocks']['peak_rss_mib'])} / {figure(point['blocks']['step_mib'])}",
            f"{point['blocks']['pairs_kept']} of {point['blocks']['pairs_total']}",
        ]
        for point in document["points"]
    ]
    header = ["atoms", "functions", "dense peak / step MiB", "blocks peak / step MiB"]
    exponents = document["step_memory_exponent"]
    largest = document["largest"]
    errors = ", ".join(
        f"{cutoff} Å {figure(error, 2)}"
        for cutoff, error in document["points"][-1]["cutoff_errors"].items()
    )
    return (
        f"Auxiliary basis: {document['aux_basis']}; blocks within "
        f"{document['metric_cutoff_angstrom']} Å.\n\n"
        f"{list_table([*header, 'pairs kept'], rows)}\n"
        f"Step memory grows as atoms^{figure(exponents['dense'])} dense and "
        f"atoms^{figure(exponents['blocks'])} with blocks (atoms^"
        f"{figure(document['blocks_step_memory_exponent_vs_pairs_kept'])} against the pairs "
        f"kept). At {largest['atoms']} atoms the blocks need "
        f"{figure(largest['dense_over_blocks_step'])}× less step memory and "
        f"{figure(largest['dense_over_blocks_peak_rss'])}× less peak memory; the two losses "
        f"differ by {figure(largest['loss_relative_difference'], 2)} (relative). Relative "
        f"change of d^T S d when the pairs beyond a cutoff are dropped: {errors}.\n"
    )


def aims_water(document: Document) -> str:
    """Held-out metric error of the linear model on imported FHI-aims data."""
    names = {"homo": "water HOMO", "density": "water density"}
    rows = [
        [
            names[target],
            f"{case['structures']}, {case['folds']} folds",
            str(case["train_per_fold"]),
            f"{figure(case['metric_error_percent_mean'])} % "
            f"({figure(case['metric_error_percent_max'])} %)",
            f"{figure(case['squared_metric_error_percent_mean'])} %",
            f"{case['ri_floor_percent_readme']} %",
            f"{figure(case['import_seconds'], 2)} s",
        ]
        for target, case in document.items()
        if target in names
    ]
    header = ["data", "structures", "training per fold (and one to validate)", "mean (worst) error"]
    header += ["squared form", "RI floor (data README)", "import"]
    return list_table(header, rows)


def water(document: Document) -> str:
    """Descriptor chosen on validation, then the test scored once, next to SALTED's figures."""
    columns = ("nmae_percent_vs_ri", "nmae_percent_vs_dft", "ri_floor_nmae_percent")
    columns += ("salted_metric_percent",)
    header = ["case, model", "vs RI fit %", "vs exact KS %", "RI floor %", "SALTED metric %"]
    header += ["metric error %", "ms per molecule (batched)"]
    text, rows = "", []
    for case, results in document["cases"].items():
        selection = results["descriptor_selection"]
        choices = [
            [
                str(score["descriptor"]["cutoff"]),
                str(score["descriptor"]["max_angular"]),
                str(score["descriptor"]["density_width"]),
                figure(score["validation_metric_error_percent"]),
                "chosen" if score["descriptor"] == selection["chosen"] else "",
            ]
            for score in selection["grid"]
        ]
        choice_header = [
            "cutoff Å",
            "max_angular",
            "width Å",
            "validation metric error %",
            "choice",
        ]
        text += (
            f"Descriptor of ``{case}``, chosen on the {len(selection['validation_indices'])} "
            f"validation molecules ({selection['chosen_on']}):\n\n"
            f"{list_table(choice_header, choices)}\n"
        )
        for model in ("linear", "nonlinear"):
            if model in results:
                metrics = results[model]
                cells = [figure(metrics[column]) for column in (*columns, "metric_error_percent")]
                cells.append(figure(metrics["predict_ms_per_structure_batched"]))
                rows.append([f"{case}, ``{model}``", *cells])
    salted = document["salted"]
    cells = [f"{salted[column]:g}" for column in columns]  # quoted as given
    rows.append([f"SALTED, {salted['label']}", *cells, "—", "—"])
    return (
        f"{text}The {document['test']} test molecules, scored once with the chosen "
        f"descriptor ({document['fitted']} fitted, {document['validation']} for "
        f"validation; means):\n\n{list_table(header, rows)}"
    )


TABLES: dict[str, Callable[[Document], str]] = {
    "aims_water": aims_water,
    "ddp_training": ddp_training,
    "export_speed": export_speed,
    "generate_throughput": generate_throughput,
    "ridge_cholesky": ridge_cholesky,
    "train_memory": train_memory,
    "water": water,
}


def render(name: str, document: Document) -> str:
    """The generated page of one result: a do-not-edit note, the table, the provenance."""
    note = f".. Generated from benchmarks/results/{name}.json by benchmarks/report.py.\n\n"
    return f"{note}{TABLES[name](document)}\n{provenance_line(document)}"


def render_all(results: Path = RESULTS) -> dict[str, str]:
    """The generated page of every result file that has a table."""
    pages = {}
    for path in sorted(results.glob("*.json")):
        if path.stem in TABLES:
            pages[path.stem] = render(path.stem, json.loads(path.read_text()))
    return pages


def main() -> None:
    GENERATED.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (GENERATED / f"{name}.rst").write_text(text)
        print(f"wrote docs/generated/{name}.rst")


if __name__ == "__main__":
    main()
