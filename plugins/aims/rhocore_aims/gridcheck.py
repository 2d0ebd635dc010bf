"""Check an RI step against the fields FHI-aims writes on its own integration grid.

With ``ri_full_output`` (``ri_fit_write_ref_field`` / ``ri_fit_write_rebuilt_field`` in
legacy builds) FHI-aims tabulates the reference field and the field rebuilt from the RI
coefficients on its grid, with the quadrature weights in ``partition_tab.out``. Their
integrals tell whether the files belong to the run (a total density integrates to the
electron count), and their difference is the RI fitting error on that grid:
the floor any model trained on these coefficients is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhocore_aims.convention import Generation
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.grid import (
    align_to_grid,
    field_integral,
    parse_field_on_grid,
    parse_partition_tab,
)

#: (reference field, RI-rebuilt field) file names per keyword generation.
GRID_FIELD_FILES: dict[Generation, tuple[str, str]] = {
    "mainline": ("rho_scf.out", "rho_rebuilt_ri.out"),
    "legacy": ("rho_ref.out", "rho_rebuilt.out"),
}

#: Largest relative difference between a field's grid integral and the expected one.
INTEGRAL_RTOL = 1e-3


@dataclass(frozen=True)
class GridCheck:
    """Integrals of the reference and RI-rebuilt fields, and their NMAE (percent)."""

    reference_integral: float
    fitted_integral: float
    ri_nmae_percent: float


def grid_check(folder: Path, generation: Generation) -> GridCheck | None:
    """The check of an RI step folder, or None when FHI-aims wrote no grid files there."""
    reference_name, fitted_name = GRID_FIELD_FILES[generation]
    paths = [folder / "partition_tab.out", folder / reference_name, folder / fitted_name]
    if not all(path.is_file() for path in paths):
        return None
    grid = parse_partition_tab(paths[0])
    reference = align_to_grid(grid, parse_field_on_grid(paths[1]))
    fitted = align_to_grid(grid, parse_field_on_grid(paths[2]))
    scale = float(grid.weights @ np.abs(reference))
    return GridCheck(
        reference_integral=field_integral(grid, reference),
        fitted_integral=field_integral(grid, fitted),
        ri_nmae_percent=100.0 * float(grid.weights @ np.abs(fitted - reference)) / scale,
    )


def check_integral(check: GridCheck, expected: float, folder: Path, generation: Generation) -> None:
    """The reference field must integrate to what the orbital weights say (the electron
    count for a total density, 1 for one orbital)."""
    reference_name = GRID_FIELD_FILES[generation][0]
    if abs(check.reference_integral - expected) > INTEGRAL_RTOL * abs(expected):
        raise AimsFileError(
            folder / reference_name,
            f"integrates to {check.reference_integral:.6f} on partition_tab.out, but the "
            f"orbital weights of this run give {expected:g}: the grid files do not belong "
            "to this run",
        )
