"""Derived quantities of a total electron density: names, units and errors.

A backend that knows its basis functions computes these from RI coefficients
(:meth:`rhocore.qc.backend.QCBackend.properties`) and from the Kohn-Sham density it fitted
(:meth:`~rhocore.qc.backend.QCBackend.exact_properties`); this module names them, checks
requested names and turns predicted and reference values into errors.

Definitions (all of the total density rho, nuclei as point charges):

* ``electron_count``: int rho, electrons.
* ``dipole``: sum_A Z_A R_A - int r rho, Debye (a vector; neutral structures).
* ``hartree_energy``: E_H = 1/2 int int rho(r) rho(r') / ‖r - r'‖, eV.
* ``electrostatic_energy``: E_H + E_ne + E_nn, the whole classical Coulomb energy of
  electrons and nuclei (E_ne = -sum_A Z_A int rho / ‖r - R_A‖), eV. E_ne weighs the
  density at the nuclei, where RI bases are thin: its RI floor is far above E_H's.
* ``xc_energy``: E_xc of rho with the functional of the training data on the backend's
  DFT grid (LDA and GGA only: others need orbitals), eV.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from rhocore.errors import InputError, RhocoreError, did_you_mean


@dataclass(frozen=True)
class PropertySpec:
    """A derived quantity: its unit and a one-line description."""

    unit: str
    description: str


PROPERTIES: dict[str, PropertySpec] = {
    "electron_count": PropertySpec("e", "integral of the density"),
    "dipole": PropertySpec("D", "dipole moment of nuclei and electrons (vector)"),
    "hartree_energy": PropertySpec("eV", "Hartree energy 1/2 (rho|rho)"),
    "electrostatic_energy": PropertySpec(
        "eV", "Hartree + electron-nuclear + nuclear-nuclear energy"
    ),
    "xc_energy": PropertySpec("eV", "exchange-correlation energy (LDA/GGA) on the DFT grid"),
}

#: Energies whose errors are reported per atom (meV/atom).
ENERGIES = ("hartree_energy", "electrostatic_energy", "xc_energy")


class PropertiesNotAvailableError(RhocoreError, NotImplementedError):
    """A backend that cannot compute a derived quantity (it says which and why)."""


def parse_property_names(names: str | Iterable[str]) -> list[str]:
    """Validated property names from a comma-separated string or a list; 'all' = every one."""
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [item.strip() for item in items if item.strip()]
    if items == ["all"]:
        return list(PROPERTIES)
    unknown = [item for item in items if item not in PROPERTIES]
    if unknown:
        names = ", ".join(f"'{item}'" for item in unknown)
        hints = "".join(did_you_mean(item, PROPERTIES) for item in unknown)
        raise InputError(
            f"unknown properties {names}.{hints} Known: {', '.join(PROPERTIES)} or 'all'."
        )
    if not items:
        raise InputError(f"no property named; give some of {', '.join(PROPERTIES)} or 'all'")
    return list(dict.fromkeys(items))


def property_errors(
    predicted: Mapping[str, np.ndarray | float],
    reference: Mapping[str, np.ndarray | float],
    n_atoms: int,
) -> dict[str, float]:
    """Errors of ``predicted`` against ``reference`` for the names both hold.

    ``electron_count_error_percent`` (relative, %), ``dipole_error_debye`` (norm of the
    difference vector), ``<energy>_error_mev_per_atom`` (absolute, meV per atom).
    """
    errors: dict[str, float] = {}
    for name in predicted:
        if name not in reference:
            continue
        value, truth = np.asarray(predicted[name], float), np.asarray(reference[name], float)
        if name == "electron_count":
            errors["electron_count_error_percent"] = float(100 * abs(value - truth) / abs(truth))
        elif name == "dipole":
            errors["dipole_error_debye"] = float(np.linalg.norm(value - truth))
        elif name in ENERGIES:
            errors[f"{name}_error_mev_per_atom"] = float(1000 * abs(value - truth) / n_atoms)
    return errors


def as_json(values: Mapping[str, np.ndarray | float]) -> dict[str, float | list[float]]:
    """Property values as JSON numbers (vectors as lists)."""
    out: dict[str, float | list[float]] = {}
    for name, value in values.items():
        array = np.asarray(value, dtype=float)
        out[name] = array.tolist() if array.ndim else float(array)
    return out
