"""An FHI-aims RI fit in rhocore's terms, however it was obtained (a run or an import)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rhocore.api import BasisLayout, RIFit
from rhocore_aims.convention import Generation
from rhocore_aims.gridcheck import check_integral, grid_check


def overlap_fit(
    coefficients: np.ndarray,
    overlap: np.ndarray,
    projections: np.ndarray | None,
    layout: BasisLayout,
    field_state: dict[str, np.ndarray] | None = None,
) -> RIFit:
    """An overlap-metric fit; missing projections are S d.

    FHI-aims writes no integrals of its product-basis functions: they are NaN, which
    rhocore reads as "not known" (no charge constraint, no fitted electron count).
    """
    return RIFit(
        coefficients=coefficients,
        projections=overlap @ coefficients if projections is None else projections,
        metric=overlap,
        metric_kind="overlap",
        layout=layout,
        integrals=np.full(len(coefficients), np.nan),
        field_state=field_state or {},
    )


def grid_field_state(
    folder: Path, generation: Generation, expected_integral: float | None
) -> dict[str, np.ndarray]:
    """The RI error on FHI-aims' grid, after checking the field's integral, if files exist."""
    check = grid_check(folder, generation)
    if check is None:
        return {}
    if expected_integral is not None:
        check_integral(check, expected_integral, folder, generation)
    return {"ri_grid_nmae_percent": np.array(check.ri_nmae_percent)}
