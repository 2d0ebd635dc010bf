"""JSON summaries of FHI-aims files for ``rhocore aims parse``, chosen by file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers import aims_out, cube, eigenvalues, grid, ri_files

VECTOR_FILES = {"ri_restart_coeffs.out", "ri_projections.out", "ri_coeffs.out", "ri_projs.out"}
EIGENVALUE_FILES = {"ks_orbital_info.out", "Final_KS_eigenvalues.dat"}


def summarize(path: Path) -> dict[str, Any]:
    """What a file holds, as JSON-ready values; the file kind is told by its name."""
    path = Path(path)
    name = path.name
    if name in EIGENVALUE_FILES:
        return {"file": str(path), "kind": name, **eigenvalues.summary_json(path)}
    if name in VECTOR_FILES:
        values = ri_files.parse_ri_vector(path)
        return {
            "file": str(path),
            "kind": "RI vector",
            "n_functions": int(values.size),
            "norm": float(np.linalg.norm(values)),
        }
    if name == "partition_tab.out":
        integration = grid.parse_partition_tab(path)
        return {
            "file": str(path),
            "kind": "integration grid",
            "n_points": int(len(integration.weights)),
            "volume_bohr3": float(integration.weights.sum()),
        }
    if name.endswith(".cube"):
        data = cube.parse_cube(path)
        return {
            "file": str(path),
            "kind": "cube",
            "shape": list(data.values.shape),
            "origin_angstrom": data.origin.tolist(),
            "n_atoms": len(data.atoms),
            "integral_if_per_angstrom3": cube.cube_integral(data, content_unit="angstrom"),
            "integral_if_per_bohr3": cube.cube_integral(data, content_unit="bohr"),
        }
    if name.endswith(".out"):
        return {"file": str(path), "kind": "aims.out", **aims_out.summary_json(path)}
    raise AimsFileError(
        path,
        "is not a file `rhocore aims parse` knows: give aims.out (any name ending in .out), "
        f"{', '.join(sorted(VECTOR_FILES | EIGENVALUE_FILES))}, partition_tab.out or a .cube",
    )
