"""Every figure the README's "Measured" section and the generated benchmark tables print is
held by a committed result file (``benchmarks/results/*.json``), rounded as printed.

A README paragraph is checked against the result files it names (``results/<name>.json``);
a generated table ``docs/generated/<name>.rst`` against ``results/<name>.json``. Text
between history markers (``.. history-start``/``.. history-end`` in rst,
``<!-- history-start -->``/``<!-- history-end -->`` in Markdown) is old figures that no
result file holds, and is left out. Inline code (commands, paths) is left out too.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GENERATED = ROOT / "docs" / "generated"

#: A printed number: not part of a name (def2, STO-3G), optionally in scientific notation.
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)(\d+(?:\.\d+)?)(?:e([-+−]?\d+))?")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
HISTORY = re.compile(r"(?:<!--|\.\.) history-start.*?(?:<!--|\.\.) history-end", re.DOTALL)
CODE = re.compile(r"```.*?```|``[^`]*``|`[^`]*`", re.DOTALL)
CITED = re.compile(r"results/(\w+)\.json")


def load_report() -> Any:
    """``benchmarks/report.py`` (benchmarks/ is not a package on the test path)."""
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_values(document: Any) -> tuple[list[float], set[str]]:
    """The numbers of a result document (values, numeric keys, its command line) and dates."""
    values: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if re.fullmatch(r"\d+(?:\.\d+)?", key):
                    values.append(float(key))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            values.append(float(node))

    walk(document)
    provenance = document.get("provenance", {})
    values += [printed(match)[0] for match in NUMBER.finditer(provenance.get("command", ""))]
    return values, {provenance.get("date", "")[:10]}


def printed(match: re.Match) -> tuple[float, float]:
    """The value of a printed number and half a unit of its last printed digit."""
    mantissa, exponent = match.group(1), match.group(2)
    decimals = len(mantissa.partition(".")[2])
    scale = 10.0 ** int(exponent.replace("−", "-")) if exponent else 1.0
    return float(mantissa) * scale, 0.5 * 10.0**-decimals * scale


def unheld_numbers(text: str, documents: list[Any]) -> list[str]:
    """The numbers of ``text`` that none of ``documents`` holds, rounded as printed."""
    values: list[float] = []
    dates: set[str] = set()
    for document in documents:
        more_values, more_dates = held_values(document)
        values += more_values
        dates |= more_dates
    text = CODE.sub(" ", HISTORY.sub(" ", text))
    missing = [date for date in DATE.findall(text) if date not in dates]
    for match in NUMBER.finditer(DATE.sub(" ", text)):
        value, half = printed(match)
        if not any(abs(abs(held) - value) <= half * (1 + 1e-9) for held in values):
            missing.append(match.group(0))
    return missing


def result(name: str) -> Any:
    path = RESULTS / f"{name}.json"
    assert path.exists(), f"{path.relative_to(ROOT)} is cited but not committed"
    return json.loads(path.read_text())


def measured_paragraphs() -> list[str]:
    """The paragraphs of the README's "## Measured" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n## Measured\n")[2].partition("\n## ")[0]
    assert section.strip(), "README.md has no '## Measured' section"
    return [paragraph for paragraph in HISTORY.sub(" ", section).split("\n\n") if paragraph.strip()]


@pytest.mark.parametrize("paragraph", measured_paragraphs(), ids=lambda text: text[:40])
def test_readme_figures_are_in_their_result_files(paragraph):
    names = CITED.findall(paragraph)
    text = CODE.sub(" ", paragraph)
    if not NUMBER.search(DATE.sub(" ", text)):
        return
    assert names, f"a paragraph with figures names no result file:\n{paragraph}"
    missing = unheld_numbers(paragraph, [result(name) for name in names])
    assert not missing, f"not in {names}: {missing}\n{paragraph}"


@pytest.mark.parametrize("path", sorted(GENERATED.glob("*.rst")), ids=lambda path: path.stem)
def test_generated_figures_are_in_their_result_file(path):
    missing = unheld_numbers(path.read_text(), [result(path.stem)])
    assert not missing, f"{path.name}: not in results/{path.stem}.json: {missing}"


def test_generated_tables_are_up_to_date():
    pages = load_report().render_all(RESULTS)
    on_disk = {path.stem: path.read_text() for path in GENERATED.glob("*.rst")}
    assert on_disk == pages, "docs/generated is stale: run `make benchmarks-report`"


def test_a_number_the_data_does_not_hold_fails():
    document = {"provenance": {"date": "2026-12-07T10:00:00", "command": "python x.py --n 16"}}
    document |= {"error_percent": 0.01384, "ratio": 51.2, "tiny": 2.83e-16, "per": {"92": 1.0}}
    good = "0.014 % (0.0138), 51×, 2.8e-16, 16 runs, structure 92 on 2026-12-07 with def2-TZVP"
    assert unheld_numbers(good, [document]) == []
    bad = "0.015 %, 52×, 4e-16, 2026-12-08"
    assert unheld_numbers(bad, [document]) == ["2026-12-08", "0.015", "52", "4e-16"]
    history = "x\n.. history-start\n\nold 9.7 pm\n\n.. history-end\n``--bias 1.5``"
    assert unheld_numbers(history, [document]) == []
