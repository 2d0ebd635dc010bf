"""control.in keywords of the two FHI-aims steps, for both generations of RI-output keywords.

Every field is fitted in two FHI-aims runs: an SCF step that writes the density-matrix
restart and the Kohn-Sham orbital list (``ks_orbital_info.out``), and an RI step that
restarts from it without SCF iterations and fits the field onto the product (RI) basis.
A field other than the total density is described by one weight per Kohn-Sham orbital,
read by FHI-aims from ``ks_orbital_weights.in`` in the row order of
``ks_orbital_info.out``.

Two generations of keywords exist:

``legacy``
    The ``ri_fit_*`` keywords of the FHI-aims 2023 builds (230629, 230905): SCF skipped
    with ``sc_iter_limit 0`` + ``postprocess_anyway`` + ``ri_fit_assume_converged``;
    outputs ``ri_coeffs.out``, ``ri_projs.out``, ``ri_ovlp.out`` (full matrix) and
    ``product_basis_idxs.out`` (the function order).
``mainline``
    The keywords of FHI-aims 240925 and later: ``ri_skip_scf``, ``ri_density_restart
    write``, ``ri_full_output``, ``ri_ovlp_write_triu``; outputs ``ri_restart_coeffs.out``,
    ``ri_projections.out``, ``ri_ovlp.out`` (upper triangle) and ``basis_info.out``.
"""

from __future__ import annotations

from typing import Any

from rhocore.api import InputError
from rhocore_aims.convention import Generation
from rhocore_aims.options import AimsOptions

#: First FHI-aims release line that reads the mainline keywords (YYMMDD versions).
FIRST_MAINLINE_VERSION = 240000

#: Files FHI-aims writes in the RI step, per generation: the pieces of one fit.
RI_OUTPUT_FILES: dict[Generation, tuple[str, ...]] = {
    "legacy": ("product_basis_idxs.out", "ri_coeffs.out", "ri_projs.out", "ri_ovlp.out"),
    "mainline": ("basis_info.out", "ri_restart_coeffs.out", "ri_projections.out", "ri_ovlp.out"),
}

ORBITAL_INFO_FILE = "ks_orbital_info.out"
ORBITAL_WEIGHTS_FILE = "ks_orbital_weights.in"


def generation_for_version(version: str) -> Generation:
    """The keyword generation an FHI-aims build of ``version`` (e.g. '240925') reads."""
    digits = "".join(character for character in version if character.isdigit())[:6]
    if len(digits) < 6:
        raise InputError(
            f"cannot tell the RI keyword generation from FHI-aims version {version!r}; set "
            "the backend option keywords to 'legacy' or 'mainline'"
        )
    return "mainline" if int(digits) >= FIRST_MAINLINE_VERSION else "legacy"


def physics_parameters(options: AimsOptions, periodic: bool) -> dict[str, Any]:
    """Keywords shared by both steps: the physics of the calculation."""
    parameters: dict[str, Any] = {
        "xc": options.xc,
        "spin": options.spin,
        "charge": options.charge,
        "relativistic": options.relativistic,
        "default_prodbas_acc": options.prodbas_acc,
    }
    if options.max_l_prodbas is not None:
        parameters["default_max_l_prodbas"] = options.max_l_prodbas
    if options.spin == "collinear" and options.default_initial_moment is not None:
        parameters["default_initial_moment"] = options.default_initial_moment
    if periodic:
        if options.k_grid is None:
            raise InputError("a periodic structure needs the backend option k_grid, e.g. [4, 4, 1]")
        parameters["k_grid"] = tuple(options.k_grid)
    parameters.update(options.extra_control)
    return parameters


def scf_parameters(options: AimsOptions, periodic: bool) -> dict[str, Any]:
    """The SCF step: converge, keep the density matrix, list the Kohn-Sham orbitals."""
    parameters = physics_parameters(options, periodic)
    parameters["elsi_restart"] = "write 1000"
    parameters["ri_fit_write_orbital_info"] = True
    return parameters


def ri_parameters(
    options: AimsOptions, periodic: bool, generation: Generation, total_density: bool
) -> dict[str, Any]:
    """The RI step: restart from the SCF density matrix and fit one field.

    ``total_density`` fits the SCF density itself; otherwise FHI-aims builds the field
    from the orbital weights in ``ks_orbital_weights.in``.
    """
    parameters = physics_parameters(options, periodic)
    parameters["elsi_restart"] = "read"
    if generation == "mainline":
        parameters.update(
            ri_skip_scf=True,
            ri_density_restart="write",
            ri_full_output=True,
            ri_ovlp_write_triu=True,
        )
        if not total_density:
            parameters["ri_fit_field_from_kso_weights"] = True
        return parameters
    parameters.update(
        sc_iter_limit=0,
        postprocess_anyway=True,
        ri_fit_assume_converged=True,
        ri_fit_ovlp_cutoff_radius=options.ovlp_cutoff_radius,
        ri_fit_write_coeffs=True,
        ri_fit_write_projs=True,
        ri_fit_write_ovlp=True,
        ri_fit_write_ref_field=True,
        ri_fit_write_rebuilt_field=True,
    )
    if total_density:
        parameters["ri_fit_total_density"] = True
    else:
        parameters["ri_fit_field_from_kso_weights"] = True
    return parameters


def restart_parameters(options: AimsOptions, periodic: bool) -> dict[str, Any]:
    """A run that builds its density from ``ri_restart_coeffs.out`` (mainline keywords).

    The physics and product-basis keywords of the training data, ``ri_density_restart
    read 0`` and ``ri_full_output`` (FHI-aims then writes basis_info.out, the basis it
    built, to compare with the coefficients').
    """
    parameters = physics_parameters(options, periodic)
    parameters["ri_density_restart"] = "read 0"
    parameters["ri_full_output"] = True
    return parameters
