"""``rhocore evaluate``: accuracy of a trained model on the structures of a dataset.

The metric error needs only the dataset. The grid metrics (NMAE vs the RI reference and
vs the exact field, the RI floor) need the backend that made the data, to evaluate basis
functions; when it is not installed or cannot evaluate this basis, they are reported as
unavailable with the reason. Derived quantities of a total density (electron count,
dipole, Hartree, electrostatic and XC energies) are compared, on request, with the same
quantities of the exact Kohn-Sham density, through the same backend.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rhocore.data.dataset import Dataset, DatasetMetadata
from rhocore.data.provenance import backend_with, data_target
from rhocore.fields.grids import StructureMetrics, grid_metrics, metric_error_percent
from rhocore.models.file import ModelFile, checked_prediction, load_model_file
from rhocore.parallel.progress import progress_bar
from rhocore.plugins.registry import PluginError, Registry, get_registry
from rhocore.qc.backend import QCBackend
from rhocore.qc.properties import parse_property_names, property_errors
from rhocore.workflows.derived import density_backend

log = logging.getLogger(__name__)

MEAN_KEYS = (
    "metric_error_percent",
    "nmae_percent_vs_ri",
    "nmae_percent_vs_dft",
    "ri_floor_nmae_percent",
    "electron_count_error_percent",
)


@dataclass
class EvaluationReport:
    """Per-structure metrics, their means, and why grid metrics may be missing."""

    structures: list[StructureMetrics]
    grid_metrics_unavailable: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    parity: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def means(self) -> dict[str, float | None]:
        """Mean of each metric over the structures that have it."""
        out: dict[str, float | None] = {}
        for key in MEAN_KEYS:
            values = [getattr(s, key) for s in self.structures if getattr(s, key) is not None]
            out[key] = float(np.mean(values)) if values else None
        return out

    def property_means(self) -> dict[str, float]:
        """Mean of each derived-quantity error over the structures that have it."""
        collected: dict[str, list[float]] = {}
        for structure in self.structures:
            for key, value in (structure.properties or {}).items():
                collected.setdefault(key, []).append(value)
        return {key: float(np.mean(values)) for key, values in collected.items()}

    def as_dict(self) -> dict[str, object]:
        """The JSON document written by ``rhocore evaluate --json``."""
        return {
            **self.means(),
            "properties": self.property_means() or None,
            "n_structures": len(self.structures),
            "grid_metrics_unavailable": self.grid_metrics_unavailable,
            "structures": [s.as_dict() for s in self.structures],
            **self.extra,
        }

    def table(self) -> str:
        """Means as an aligned text table for the terminal."""
        rows = [(key, value) for key, value in self.means().items() if value is not None]
        width = max(len(key) for key in [*dict(rows), *self.property_means()])
        lines = [f"held-out metrics over {len(self.structures)} structures"]
        for key, value in rows:
            lines.append(f"  {key:<{width}}  {value:.4f}")
        for key, value in self.property_means().items():
            lines.append(f"  {key:<{width}}  {value:.4f}")
        if self.grid_metrics_unavailable:
            lines.append(f"  grid metrics unavailable: {self.grid_metrics_unavailable}")
        return "\n".join(lines)


def backend_for_dataset(
    dataset: Dataset, registry: Registry | None = None
) -> tuple[QCBackend | None, str | None]:
    """The backend that generated ``dataset``, or None and the reason it is unavailable."""
    try:
        return backend_with(dataset.metadata, "evaluates_fields", "grid metrics", registry), None
    except (PluginError, ValueError) as error:
        return None, str(error)


def evaluate(
    model: ModelFile | Path,
    dataset_path: Path,
    *,
    indices: list[int] | None = None,
    grid: bool = True,
    progress: bool = True,
    registry: Registry | None = None,
    properties: str | list[str] | None = None,
) -> EvaluationReport:
    """Predict every structure of ``indices`` (default: all done) and compare.

    ``properties`` (names of :data:`rhocore.qc.properties.PROPERTIES` or 'all') adds their
    errors vs the exact density (and those of the RI reference, the floor).
    """
    model_file = model if isinstance(model, ModelFile) else load_model_file(Path(model))
    dataset = Dataset(Path(dataset_path))
    indices = dataset.indices() if indices is None else indices
    registry = registry or get_registry()
    backend, unavailable = (
        backend_for_dataset(dataset, registry) if grid else (None, "not requested")
    )
    is_density = _is_total_density(dataset.metadata, registry)
    names = parse_property_names(properties) if properties else []
    property_backend = (
        density_backend(dataset.metadata, "computes_properties", "derived quantities", registry)
        if names
        else None
    )
    report = EvaluationReport(structures=[], grid_metrics_unavailable=unavailable)
    for index in progress_bar(indices, desc="evaluate", unit="structure", disable=not progress):
        entry = dataset.entry(index)
        assert entry.fit is not None
        predicted = checked_prediction(model_file, entry.atoms, f"entry {index} of {dataset_path}")
        reference = entry.fit.coefficients
        metrics = StructureMetrics(
            index=index,
            metric_error_percent=metric_error_percent(predicted, reference, entry.fit.metric),
        )
        if np.all(np.isfinite(entry.fit.integrals)):  # some codes do not write them
            metrics.predicted_integral = float(entry.fit.integrals @ predicted)
            metrics.reference_integral = float(entry.fit.integrals @ reference)
        expected = entry.expected_integral
        if is_density and expected and metrics.predicted_integral is not None:
            metrics.electron_count_error_percent = (
                100.0 * abs(metrics.predicted_integral - expected) / expected
            )
        if backend is not None:
            values = grid_metrics(backend, entry.atoms, predicted, reference, entry.fit.field_state)
            for key, value in values.items():
                setattr(metrics, key, value)
        if property_backend is not None:
            metrics.properties = derived_errors(
                property_backend, entry.atoms, predicted, reference, entry.fit.field_state, names
            )
        report.structures.append(metrics)
        angular = model_file.layout.function_table(entry.atoms.numbers)[:, 2]
        report.parity.append((reference, predicted, angular))
    return report


def derived_errors(
    backend: QCBackend,
    atoms,
    predicted: np.ndarray,
    reference: np.ndarray,
    field_state: dict[str, np.ndarray],
    names: list[str],
) -> dict[str, float]:
    """Errors of the predicted density's quantities vs DFT, plus the RI floor
    (``ri_floor_``: RI reference vs DFT) and ``vs_ri_`` (prediction vs RI reference)."""
    n_atoms = len(atoms)
    exact = backend.exact_properties(atoms, field_state, names)
    from_prediction = backend.properties(atoms, predicted, names)
    from_reference = backend.properties(atoms, reference, names)
    errors = property_errors(from_prediction, exact, n_atoms)
    for key, value in property_errors(from_reference, exact, n_atoms).items():
        errors[f"ri_floor_{key}"] = value
    for key, value in property_errors(from_prediction, from_reference, n_atoms).items():
        errors[f"vs_ri_{key}"] = value
    return errors


def _is_total_density(metadata: DatasetMetadata, registry: Registry) -> bool:
    """Whether the data's field integrates to the electron count; False, with a log line,
    when the target's plugin is not installed here."""
    try:
        return data_target(metadata, registry).is_total_density
    except PluginError as error:
        log.info("no electron-count error: %s", error)
        return False


def write_report(report: EvaluationReport, json_path: Path, plot_path: Path | None) -> None:
    """Write the JSON report and, if asked, the parity plot of the coefficients."""
    Path(json_path).write_text(json.dumps(report.as_dict(), indent=1))
    if plot_path is not None:
        from rhocore.fields.plots import coefficient_parity_plot

        coefficient_parity_plot(report.parity, Path(plot_path))
