"""Scoring a model by the STM images of validation structures, to choose its ridge strength.

With the squared relative metric, the validation loss of an ILDOS model is dominated by
the far vacuum below the metric's floor, which no image sees: choosing the ridge
strength on it picks models whose images are not the best. With
``training.ridge_selection: stm-images``, :class:`StmImageScore` images every strength's
model on the validation structures in constant-current mode and compares each image with
the one of the structure's RI reference at the same isovalue, the reference's mean field
``ridge_selection_options.height`` above the topmost atom. The score is
max(height RMSE / height scale, NMAE / NMAE scale), means over the structures, so that
neither the tip heights nor the field are improved at the other's expense.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from rhocore.data.dataset import Dataset
from rhocore.descriptors.features import LambdaSoap
from rhocore.errors import InputError
from rhocore.models.base import Model
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import Registry
from rhocore.stm.images import (
    CellGrid,
    constant_current,
    height_rmse_pm,
    nmae_percent_above,
    pearson_r,
    topmost_z,
)
from rhocore.stm.settings import CONSTANT_CURRENT, StmSettings, data_bias, resolve_isovalue
from rhocore.stm.sources import FieldSource, dataset_source, field_grid
from rhocore.training.trainer import predict

log = logging.getLogger(__name__)


class StmSelectionOptions(PluginOptions):
    """The validation images that choose the ridge strength
    (``training.ridge_selection_options`` of ``ridge_selection: stm-images``)."""

    height: float = Field(
        3.0,
        gt=0,
        description="Set point of the constant-current images: the reference's mean field "
        "this far above the topmost atom (angstrom) is the isovalue of both images.",
    )
    height_scale_pm: float = Field(
        10.0,
        gt=0,
        description="Tip-height RMSE (pm) that counts as much as nmae_scale_percent of field "
        "NMAE in the score max(height RMSE / height_scale_pm, NMAE / nmae_scale_percent).",
    )
    nmae_scale_percent: float = Field(
        10.0, gt=0, description="Field NMAE above the topmost atom (%) that counts as one."
    )
    spacing: float = Field(0.15, gt=0, description="In-plane grid spacing (angstrom).")


def image_comparison(
    field: CellGrid, reference: CellGrid, settings: StmSettings, z_top: float
) -> dict[str, float]:
    """Height RMSE (pm), Pearson r and NMAE (%) above the top of two fields' images.

    Both images are taken at the isovalue of ``reference`` at the set-point height.
    """
    isovalue = resolve_isovalue(reference, settings, z_top)
    with warnings.catch_warnings(record=True) as caught:  # columns without a tip height
        warnings.simplefilter("always")
        heights = constant_current(field, isovalue)
        reference_heights = constant_current(reference, isovalue)
    for warning in caught:
        log.info("%s", warning.message)
    return {
        "height_rmse_pm": height_rmse_pm(heights, reference_heights),
        "pearson_r": pearson_r(heights, reference_heights),
        "nmae_percent": nmae_percent_above(field.values, reference.values, field, z_top),
    }


class StmImageScore:
    """Image metrics of a model on some entries of an ILDOS dataset, and their score.

    The reference fields are evaluated once, when the score is built; each call predicts
    the entries' coefficients and images them (about a second per slab of 32 atoms).
    A validation scorer (:class:`rhocore.training.scorers.ValidationScorer`).
    """

    name: ClassVar[str] = "stm-images"
    Options: ClassVar[type[PluginOptions]] = StmSelectionOptions

    def __init__(
        self,
        dataset_path: Path,
        indices: list[int],
        options: StmSelectionOptions,
        registry: Registry | None = None,
    ):
        if not indices:
            raise InputError(
                "training.ridge_selection 'stm-images' images the validation structures: set "
                "split.validation_fraction > 0"
            )
        dataset = Dataset(dataset_path)
        self.metadata = dataset.metadata
        try:
            bias = data_bias(self.metadata, registry)
        except InputError as error:
            raise InputError(
                f"training.ridge_selection 'stm-images' needs STM images of the data in "
                f"{dataset_path}: {error}"
            ) from None
        self.options = options
        self.settings = StmSettings(
            bias=bias, mode=CONSTANT_CURRENT, height=options.height, spacing=options.spacing
        )
        self.registry = registry
        self.atoms = [dataset.atoms(index) for index in indices]
        self.z_tops = [topmost_z(atoms) for atoms in self.atoms]
        log.info("evaluating the RI references of %d validation images", len(indices))
        self.references = [
            field_grid(dataset_source(dataset_path, index), self.settings, self.registry, False)
            for index in indices
        ]

    def __call__(self, model: Model, descriptor: LambdaSoap) -> dict[str, float]:
        """Mean height RMSE, Pearson r and NMAE of the model's images, and their score."""
        rows = []
        predictions = predict(model, descriptor, self.atoms)
        for atoms, coefficients, reference, z_top in zip(
            self.atoms, predictions, self.references, self.z_tops, strict=True
        ):
            source = FieldSource(atoms, self.metadata, "prediction", coefficients=coefficients)
            field = field_grid(source, self.settings, self.registry, False)
            rows.append(image_comparison(field, reference, self.settings, z_top))
        means = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
        means["score"] = max(
            means["height_rmse_pm"] / self.options.height_scale_pm,
            means["nmae_percent"] / self.options.nmae_scale_percent,
        )
        return means
