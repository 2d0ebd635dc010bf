"""``rhocore stm``: simulated STM images of a slab from an ILDOS model or dataset.

The source gives a field: a trained model's coefficients predicted for a structure, or
a dataset entry's stored RI reference (or, with ``exact``, its un-fitted field). The
backend that made the data evaluates it on the cell grid from just below the topmost
atom to the middle of the vacuum above it; :mod:`rhocore.stm.images` turns that into a
constant-height or constant-current image. Written to the output directory, named by
mode: the PNG, an npz of the arrays, and with a reference dataset entry the same image
of the reference, a predicted | reference | difference figure and the metrics as JSON.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ase
import h5py
import numpy as np

from rhocore.errors import InputError
from rhocore.models.file import ModelFile, checked_prediction, load_model_file
from rhocore.plugins.registry import Registry, get_registry
from rhocore.stm.images import (
    CellGrid,
    check_surface_cell,
    constant_current,
    constant_height,
    height_rmse_pm,
    nmae_percent_above,
    pearson_r,
    topmost_z,
    write_ase_stm_file,
)
from rhocore.stm.settings import (
    CONSTANT_CURRENT,
    CONSTANT_HEIGHT,
    StmSettings,
    check_bias,
    resolve_isovalue,
)
from rhocore.stm.sources import FieldSource, dataset_source, field_grid
from rhocore.workflows.predict import read_structures

log = logging.getLogger(__name__)

#: How figure titles show each metric.
METRIC_TEXT = {
    "pearson_r": "Pearson r {:.3f}",
    "nmae_percent_above_surface": "NMAE above surface {:.3g} %",
    "height_rmse_pm": "height RMSE {:.3g} pm",
}


def is_dataset(source: Path | ModelFile) -> bool:
    """True for a dataset file (HDF5); a model is a run directory or ``model.pt``."""
    return isinstance(source, str | Path) and Path(source).is_file() and h5py.is_hdf5(source)


def load_source(
    source: Path | ModelFile, structure: str | Path, *, frame: int = 0, exact: bool = False
) -> FieldSource:
    """The field of ``structure`` from a model (predicted) or a dataset (stored)."""
    if is_dataset(source):
        return dataset_source(Path(source), _entry_index(structure), exact)
    if exact:
        raise InputError("--exact images a dataset's stored field; the source is a model")
    model = _load_model(source)
    atoms = read_structures(Path(structure), index=str(frame))[0]
    return FieldSource(
        atoms=atoms,
        metadata=model.dataset_metadata,
        description=f"predicted for {Path(structure).name}",
        coefficients=checked_prediction(model, atoms, f"frame {frame} of '{structure}'"),
    )


def _load_model(source: Path | ModelFile) -> ModelFile:
    """The model file at a path; any other object is taken as a loaded model."""
    return load_model_file(Path(source)) if isinstance(source, str | Path) else source


def _entry_index(structure: str | Path | int) -> int:
    try:
        return int(str(structure))
    except ValueError:
        raise InputError(
            f"with a dataset as source, STRUCTURE is the index of an entry, not '{structure}'"
        ) from None


def load_reference(
    path: Path, index: int, source: FieldSource, bias: float, registry: Registry | None = None
) -> FieldSource:
    """The RI reference of entry ``index`` of a dataset, checked to image what ``source`` does."""
    reference = dataset_source(Path(path), index)
    check_bias(reference.metadata, bias, registry)
    mine, theirs = source.atoms, reference.atoms
    same = (
        np.array_equal(mine.numbers, theirs.numbers)
        and np.allclose(mine.positions, theirs.positions, atol=1e-3)
        and np.allclose(np.asarray(mine.cell), np.asarray(theirs.cell), atol=1e-3)
    )
    if not same:
        raise InputError(
            f"entry {index} of {path} is not the imaged structure "
            f"({theirs.get_chemical_formula()} vs {mine.get_chemical_formula()}, or other "
            "positions or cell); give the --index of the same structure"
        )
    return reference


def scan(grid: CellGrid, settings: StmSettings, z_top: float, isovalue: float | None) -> np.ndarray:
    """The raw image: field on the tip plane, or absolute tip heights (angstrom)."""
    if settings.mode == CONSTANT_HEIGHT:
        assert settings.height is not None
        return constant_height(grid, z_top + settings.height)
    assert isovalue is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        heights = constant_current(grid, isovalue)
    for warning in caught:
        log.warning("%s", warning.message)
    return heights


def image_metrics(
    predicted: CellGrid,
    reference: CellGrid,
    predicted_image: np.ndarray,
    reference_image: np.ndarray,
    settings: StmSettings,
    z_top: float,
) -> dict[str, float]:
    """Pearson r of the images, NMAE of the field above the topmost atom, height RMSE."""
    metrics = {
        "pearson_r": pearson_r(predicted_image, reference_image),
        "nmae_percent_above_surface": nmae_percent_above(
            predicted.values, reference.values, predicted, z_top
        ),
    }
    if settings.mode == CONSTANT_CURRENT:
        metrics["height_rmse_pm"] = height_rmse_pm(predicted_image, reference_image)
    return metrics


@dataclass
class StmResult:
    """The image(s) made, with their set point, metrics and the files written.

    ``image`` is what the figures show: the field on the tip plane (e/bohr^3), or the
    tip height above the topmost atom (angstrom); ``heights`` the absolute tip heights.
    """

    settings: StmSettings
    z_top: float
    isovalue: float | None
    x: np.ndarray
    y: np.ndarray
    image: np.ndarray
    heights: np.ndarray | None = None
    reference_image: np.ndarray | None = None
    reference_heights: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def missing_columns(self) -> int:
        """Columns without a tip height (no crossing of the isovalue)."""
        return 0 if self.heights is None else int(np.count_nonzero(np.isnan(self.heights)))

    def summary(self) -> str:
        """A few lines for the terminal: set point, metrics, files."""
        settings = self.settings
        lines = [
            f"{settings.mode}, {set_point_text(settings, self.isovalue)}, bias {settings.bias:+g} V"
        ]
        if self.missing_columns:
            lines.append(f"  {self.missing_columns} columns without a tip height (NaN)")
        lines += [f"  {key}  {value:.4g}" for key, value in self.metrics.items()]
        lines += [f"  wrote {path}" for path in self.files]
        return "\n".join(lines)

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz contents: grids, images and the set point."""
        optional = {
            "height": self.settings.height,
            "isovalue": self.isovalue,
            "heights": self.heights,
            "reference_image": self.reference_image,
            "reference_heights": self.reference_heights,
        }
        return {
            "x": self.x,
            "y": self.y,
            "image": self.image,
            "bias": np.float64(self.settings.bias),
            "mode": np.str_(self.settings.mode),
            "z_top": np.float64(self.z_top),
            **{key: np.asarray(value) for key, value in optional.items() if value is not None},
        }


def set_point_text(settings: StmSettings, isovalue: float | None) -> str:
    """E.g. 'isovalue 1e-05 e/bohr^3' or 'tip 3 Å above the topmost atom'."""
    if settings.mode == CONSTANT_HEIGHT:
        return f"tip {settings.height:g} Å above the topmost atom"
    return f"isovalue {isovalue:.3g} e/bohr^3"


def shown(raw: np.ndarray, settings: StmSettings, z_top: float) -> np.ndarray:
    """What a figure shows: tip heights relative to the topmost atom, or the field."""
    return raw - z_top if settings.mode == CONSTANT_CURRENT else raw


def colorbar_label(settings: StmSettings, target_name: str) -> str:
    """Colour-bar label with the unit of the image."""
    if settings.mode == CONSTANT_CURRENT:
        return "tip height above the topmost atom (Å)"
    return f"{target_name.upper()} at the tip (e/bohr³)"


def stm_images(
    source: Path | ModelFile,
    structure: str | Path,
    settings: StmSettings,
    output_dir: Path,
    *,
    frame: int = 0,
    exact: bool = False,
    reference: Path | None = None,
    reference_index: int | None = None,
    save_field: Path | None = None,
    registry: Registry | None = None,
    progress: bool = True,
) -> StmResult:
    """Make the STM image of ``structure`` from ``source`` and write its files."""
    registry = registry or get_registry()
    field_source = load_source(source, structure, frame=frame, exact=exact)
    check_bias(field_source.metadata, settings.bias, registry)
    check_surface_cell(field_source.atoms.cell)
    reference_source = None
    if reference is not None:
        index = _reference_index(source, structure, reference_index)
        reference_source = load_reference(reference, index, field_source, settings.bias, registry)
    atoms, z_top = field_source.atoms, topmost_z(field_source.atoms)
    grid = field_grid(field_source, settings, registry, progress)
    isovalue = resolve_isovalue(grid, settings, z_top)
    raw = scan(grid, settings, z_top, isovalue)
    x, y = grid.xy()
    result = StmResult(settings, z_top, isovalue, x, y, shown(raw, settings, z_top))
    if settings.mode == CONSTANT_CURRENT:
        result.heights = raw
    output_dir.mkdir(parents=True, exist_ok=True)
    if save_field is not None:
        write_ase_stm_file(save_field, grid, settings.bias)
        result.files.append(save_field)
    label = colorbar_label(settings, field_source.metadata.target_name)
    _write_image(result, atoms, label, output_dir)
    if reference_source is not None:
        reference_grid = field_grid(reference_source, settings, registry, progress)
        reference_raw = scan(reference_grid, settings, z_top, isovalue)
        result.reference_image = shown(reference_raw, settings, z_top)
        if settings.mode == CONSTANT_CURRENT:
            result.reference_heights = reference_raw
        result.metrics = image_metrics(grid, reference_grid, raw, reference_raw, settings, z_top)
        _write_comparison(result, atoms, label, output_dir)
    npz = output_dir / f"{settings.mode}.npz"
    np.savez(npz, **result.arrays())
    result.files.append(npz)
    return result


def _reference_index(
    source: Path | ModelFile, structure: str | Path, reference_index: int | None
) -> int:
    if reference_index is not None:
        return reference_index
    if is_dataset(source):
        return _entry_index(structure)
    raise InputError("--reference needs --index: the entry of the reference dataset to compare")


def _title(settings: StmSettings, isovalue: float | None) -> str:
    return f"STM {settings.mode}, bias {settings.bias:+g} V\n{set_point_text(settings, isovalue)}"


def _write_image(result: StmResult, atoms: ase.Atoms, label: str, output_dir: Path) -> None:
    from rhocore.stm.plots import stm_image_plot

    path = output_dir / f"{result.settings.mode}.png"
    stm_image_plot(
        path,
        result.image,
        atoms,
        colorbar_label=label,
        title=_title(result.settings, result.isovalue),
        repeat=result.settings.repeat,
        top_layer=result.settings.top_layer,
    )
    result.files.append(path)


def _write_comparison(result: StmResult, atoms: ase.Atoms, label: str, output_dir: Path) -> None:
    from rhocore.stm.plots import stm_comparison_plot

    assert result.reference_image is not None
    settings = result.settings
    metrics = ", ".join(METRIC_TEXT[key].format(value) for key, value in result.metrics.items())
    path = output_dir / f"{settings.mode}_comparison.png"
    stm_comparison_plot(
        path,
        result.image,
        result.reference_image,
        atoms,
        colorbar_label=label,
        title=f"{_title(settings, result.isovalue)}\n{metrics}",
        repeat=settings.repeat,
        top_layer=settings.top_layer,
    )
    metrics_path = output_dir / f"{settings.mode}_metrics.json"
    document = {
        "bias": settings.bias,
        "mode": settings.mode,
        "height": settings.height,
        "isovalue": result.isovalue,
        "missing_columns": result.missing_columns,
        **result.metrics,
    }
    metrics_path.write_text(json.dumps(document, indent=1))
    result.files += [path, metrics_path]
