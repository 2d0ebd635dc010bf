"""``rhocore dataset check``: verify every entry of a dataset file, field by field.

Each entry must read (every array present, shapes that fit the basis layout and the
atoms), hold finite values, an overlap (metric) that is symmetric and positive definite,
and projections equal to overlap @ coefficients; a failed entry must say why. Partial
entries that a killed writer left in the staging group are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhocore.data.dataset import Dataset, DatasetEntry, DatasetError
from rhocore.data.dataset.format import STAGING_GROUP
from rhocore.data.dataset.writer import finite_or_unknown

#: Default relative tolerance of the symmetry of S and of projections = S @ coefficients.
DEFAULT_RTOL = 1e-8


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the entry (or staging path), the field, and what."""

    entry: str
    field: str
    message: str


@dataclass
class CheckReport:
    """The outcome of checking one file: what was checked and every problem found."""

    path: Path
    entries: int
    done: int
    failed: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def table(self) -> str:
        """One line of totals, then one row per problem (entry, field, what is wrong)."""
        unreadable = self.entries - self.done - self.failed
        head = (
            f"checked {self.entries} entries of {self.path} ({self.done} done, {self.failed} "
            f"failed{f', {unreadable} unreadable' if unreadable else ''}): "
        )
        if self.ok:
            return head + "no problems"
        rows = [("entry", "field", "problem")]
        rows += [(problem.entry, problem.field, problem.message) for problem in self.problems]
        entry_width = max(len(row[0]) for row in rows)
        field_width = max(len(row[1]) for row in rows)
        lines = [head + f"{len(self.problems)} problems"]
        lines += [f"  {e:<{entry_width}}  {f:<{field_width}}  {m}" for e, f, m in rows]
        return "\n".join(lines)


def check_dataset(path: Path, rtol: float = DEFAULT_RTOL) -> CheckReport:
    """Check every entry of the dataset at ``path`` (refused while a writer has it open)."""
    dataset = Dataset(path)
    try:
        names = dataset.entry_names()
        report = CheckReport(Path(path), len(names), 0, 0, [])
        for name in names:
            problems, status = _check_named(dataset, name, rtol)
            report.problems += problems
            report.done += status == "done"
            report.failed += status == "failed"
        for name in dataset.staging_entries() or []:
            report.problems.append(
                Problem(
                    f"{STAGING_GROUP}/{name}",
                    "entry",
                    "partial entry a killed writer left; resuming that writer drops it",
                )
            )
        return report
    finally:
        dataset.close()


def _check_named(dataset: Dataset, name: str, rtol: float) -> tuple[list[Problem], str | None]:
    """Problems of the entry stored as ``name``, and its status when it could be read."""
    if not name.isdigit():
        return [Problem(name, "name", "not a structure index; rhocore did not write it")], None
    try:
        entry = dataset.entry(int(name))
    except DatasetError as error:
        return [Problem(name, error.field or "entry", str(error))], None
    return entry_problems(entry, rtol), entry.status


def entry_problems(entry: DatasetEntry, rtol: float = DEFAULT_RTOL) -> list[Problem]:
    """What is wrong with the values of one entry that reads with the right shapes."""
    name = str(entry.index)
    problems = []
    atoms = entry.atoms
    for field, values in (("positions", atoms.positions), ("cell", atoms.cell.array)):
        if not np.all(np.isfinite(values)):
            problems.append(Problem(name, field, "holds NaN or infinity"))
    if entry.status == "failed":
        if not entry.reason.strip():
            problems.append(Problem(name, "reason", "a failed entry that does not say why"))
        return problems
    fit = entry.fit
    assert fit is not None
    arrays = {"coefficients": fit.coefficients, "overlap": fit.metric}
    arrays |= {"projections": fit.projections, "integrals": fit.integrals}
    if entry.orbitals is not None:
        arrays |= {"orbital_energies": entry.orbitals.energies, "weights": entry.weights}
        arrays |= {"orbital_occupations": entry.orbitals.occupations}
        arrays |= {"k_weights": entry.orbitals.k_weights}
    broken = set()
    for field, values in arrays.items():
        if not finite_or_unknown(field, values):
            count = int(np.sum(~np.isfinite(values)))
            problems.append(Problem(name, field, f"{count} NaN or infinite values"))
            broken.add(field)
    if "overlap" not in broken:
        metric_problems = _metric_problems(name, fit.metric, rtol)
        problems += metric_problems
        if not metric_problems and not broken & {"coefficients", "projections"}:
            problems += _projection_problems(
                name, fit.metric, fit.coefficients, fit.projections, rtol
            )
    return problems


def _metric_problems(name: str, metric: np.ndarray, rtol: float) -> list[Problem]:
    """S must be symmetric (to ``rtol`` of its largest element) and positive definite."""
    scale = float(np.max(np.abs(metric), initial=0.0))
    asymmetry = float(np.max(np.abs(metric - metric.T), initial=0.0))
    if asymmetry > rtol * scale:
        return [
            Problem(
                name,
                "overlap",
                f"not symmetric: max |S - S^T| = {asymmetry:.3e} for max |S| = {scale:.3e}",
            )
        ]
    try:
        np.linalg.cholesky(metric)
    except np.linalg.LinAlgError:
        return [Problem(name, "overlap", "not positive definite (its Cholesky factor fails)")]
    return []


def _projection_problems(
    name: str, metric: np.ndarray, coefficients: np.ndarray, projections: np.ndarray, rtol: float
) -> list[Problem]:
    """Projections w must equal S d to ``rtol`` of the size of the terms of S d."""
    residual = float(np.max(np.abs(metric @ coefficients - projections), initial=0.0))
    scale = float(np.max(np.abs(metric) @ np.abs(coefficients), initial=0.0))
    if residual <= rtol * scale:
        return []
    return [
        Problem(
            name,
            "projections",
            f"differ from overlap @ coefficients by up to {residual:.3e} (terms up to "
            f"{scale:.3e}; tolerance {rtol:g} relative)",
        )
    ]
