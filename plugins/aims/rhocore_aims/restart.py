"""Canonical RI coefficients written as the density restart FHI-aims reads: ri_restart_coeffs.out.

FHI-aims with ``ri_density_restart write`` writes its RI fit of the density as
``ri_restart_coeffs.out``: one coefficient (bohr^-3 per product-basis function) per line,
in its own function order and phases. With ``ri_density_restart read 0`` (and the same
product basis: ``default_prodbas_acc``, ``default_max_l_prodbas``, species defaults) it
reads that file back and builds the density from it. This module writes predicted
canonical coefficients in that form: the exact inverse of
:func:`rhocore_aims.parsers.ri_files.read_ri_outputs`' conversion
(:meth:`rhocore.qc.basis.SignedPermutation.from_canonical`).

The order is known from the layout alone for mainline files (FHI-aims 240925: atom -> l
-> n -> m, featomic's phases); legacy ``ri_fit_*`` builds need the function table
``product_basis_idxs.out`` of an FHI-aims run of the same structure
(:func:`restart_conversion`). Numbers are written ``%.18e``, one per line, as
``numpy.savetxt`` writes them: the form the rholearn tool writes for FHI-aims 240925's
``ri_density_restart read`` (exact to the last bit of a double).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np

from rhocore.api import BasisLayout, InputError, SignedPermutation
from rhocore_aims.convention import Generation, from_layout
from rhocore_aims.parsers.ri_files import basis_conversion

RESTART_FILE = "ri_restart_coeffs.out"
NUMBER_FORMAT = "%.18e"
KEYWORDS_FILE = "control.in.keywords"

_README = """\
FHI-aims density restart from rhocore-predicted RI coefficients ({formula}).

  {restart}  predicted coefficients, FHI-aims' RI order and phases (bohr^-3)
  geometry.in            the structure, atoms in the order of the coefficients
  {keywords}    control.in keywords: append the species blocks of the species
                         defaults the training data used, then run FHI-aims here

The RI (product) basis of this run must be the one the model was trained on: same
species defaults, default_prodbas_acc and default_max_l_prodbas. FHI-aims writes the
basis it built to basis_info.out (ri_full_output); its radial counts per element and l
must be those of the model ({layout}).

'ri_density_restart read 0' makes FHI-aims build the density from {restart}. Public
workflows use it to rebuild a fitted density (rholearn) and, with 'sc_iter_limit 0', for
one Kohn-Sham diagonalisation on the predicted density (non-self-consistent). Whether a
run without 'sc_iter_limit 0' continues the SCF from this density depends on the FHI-aims
version; check the 'ri_density_restart' entry of your FHI-aims manual.
"""


def restart_conversion(
    numbers: Sequence[int],
    *,
    layout: BasisLayout | None = None,
    run_folder: Path | str | None = None,
    generation: Generation = "mainline",
) -> SignedPermutation:
    """FHI-aims <-> canonical order and phases of a structure's RI restart vector.

    ``run_folder`` is the RI step folder of an FHI-aims run of this structure (its
    ``basis_info.out``, or ``product_basis_idxs.out`` for legacy builds): the order is
    then read from FHI-aims' own tables, and ``layout`` (e.g. a model's), when given too,
    must be the same basis. Without it the order follows from ``layout`` alone, which
    holds for mainline files only.
    """
    numbers = np.asarray(numbers, dtype=int)
    if run_folder is not None:
        conversion = basis_conversion(Path(run_folder), numbers, generation)
        if layout is not None:
            _check_same_basis(Path(run_folder), layout, conversion.layout, numbers)
        return conversion
    if layout is None:
        raise InputError("an RI restart needs the basis: give layout or run_folder")
    if generation != "mainline":
        raise InputError(
            "legacy (ri_fit_*) FHI-aims builds order the RI functions per run: give "
            "run_folder, the RI step folder whose product_basis_idxs.out lists that order"
        )
    return from_layout(layout, numbers, generation="mainline")


def restart_values(coefficients: np.ndarray, conversion: SignedPermutation) -> np.ndarray:
    """Canonical ``coefficients`` in FHI-aims' order and phases (the file's values)."""
    coefficients = np.asarray(coefficients, dtype=float)
    size = len(conversion.order)
    if coefficients.shape != (size,):
        raise ValueError(
            f"{coefficients.size} coefficients (shape {coefficients.shape}) for an RI basis "
            f"of {size} functions: the coefficients belong to another structure or basis"
        )
    bad = np.flatnonzero(~np.isfinite(coefficients))
    if len(bad):
        raise ValueError(
            f"coefficient {bad[0]} is {coefficients[bad[0]]}: FHI-aims cannot restart from it"
        )
    return conversion.from_canonical(coefficients)


def format_restart(values: np.ndarray) -> str:
    """The text of ``ri_restart_coeffs.out``: one value per line, ``%.18e``."""
    return "".join(f"{NUMBER_FORMAT % value}\n" for value in np.asarray(values, dtype=float))


def write_ri_restart(
    path: Path | str, coefficients: np.ndarray, conversion: SignedPermutation
) -> Path:
    """Write canonical ``coefficients`` as FHI-aims' ``ri_restart_coeffs.out`` at ``path``.

    ``path`` may be a folder, which gets a file named :data:`RESTART_FILE`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESTART_FILE
    text = format_restart(restart_values(coefficients, conversion))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _check_same_basis(
    folder: Path, expected: BasisLayout, found: BasisLayout, numbers: np.ndarray
) -> None:
    for z in sorted({int(z) for z in numbers}):
        if z not in expected.nmax:
            raise ValueError(
                f"the coefficients' RI basis has no functions for Z={z}, which the structure "
                f"has (it covers Z={expected.species})"
            )
        if expected.nmax[z] != found.nmax[z]:
            raise ValueError(
                f"{folder}: FHI-aims' RI basis of Z={z} has radial counts per l "
                f"{found.nmax[z]}, the coefficients' {expected.nmax[z]}: run FHI-aims with "
                "the product-basis settings and species defaults of the training data"
            )


def control_keywords(parameters: Mapping[str, Any]) -> str:
    """control.in lines for ``{keyword: value}``: booleans as .true./.false., tuples joined."""
    lines = []
    for keyword, value in parameters.items():
        if isinstance(value, bool):
            text = ".true." if value else ".false."
        elif isinstance(value, (tuple, list)):
            text = " ".join(str(item) for item in value)
        else:
            text = str(value)
        lines.append(f"{keyword:<24s}{text}")
    return "\n".join(lines) + "\n"


def write_restart_folder(
    folder: Path | str,
    atoms: ase.Atoms,
    coefficients: np.ndarray,
    conversion: SignedPermutation,
    parameters: Mapping[str, Any],
) -> list[Path]:
    """A folder FHI-aims can start from: ri_restart_coeffs.out, geometry.in, the keywords.

    ``parameters`` are the control.in keywords (physics and product basis of the training
    data plus ``ri_density_restart read 0``); species blocks are the user's to append.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    restart = write_ri_restart(folder / RESTART_FILE, coefficients, conversion)
    geometry = folder / "geometry.in"
    ase.io.write(geometry, atoms, format="aims")
    keywords = folder / KEYWORDS_FILE
    keywords.write_text(control_keywords(parameters))
    readme = folder / "README.txt"
    layout = ", ".join(
        f"Z={z}: {conversion.layout.nmax[z]}" for z in sorted({int(z) for z in atoms.numbers})
    )
    readme.write_text(
        _README.format(
            formula=atoms.get_chemical_formula(),
            restart=RESTART_FILE,
            keywords=KEYWORDS_FILE,
            layout=layout,
        )
    )
    return [restart, geometry, keywords, readme]
