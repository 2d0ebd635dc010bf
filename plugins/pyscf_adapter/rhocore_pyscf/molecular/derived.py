"""Derived quantities by name, in rhocore's units (e, Debye, eV), for the PySCF backend.

Dispatches the names of :data:`rhocore.qc.properties.PROPERTIES` to the atomic-unit
functions of :mod:`rhocore_pyscf.molecular.properties` and ``xc``, for an RI density
(coefficients in PySCF's AO order of the auxiliary molecule) or a Kohn-Sham density matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pyscf import gto
from pyscf.data.nist import AU2DEBYE, HARTREE2EV

from rhocore.api import PropertiesNotAvailableError, parse_property_names
from rhocore_pyscf.molecular import properties, xc
from rhocore_pyscf.options import PySCFOptions

#: Factor from atomic units to rhocore's unit of each property.
UNITS = {
    "electron_count": 1.0,
    "dipole": AU2DEBYE,
    "hartree_energy": HARTREE2EV,
    "electrostatic_energy": HARTREE2EV,
    "xc_energy": HARTREE2EV,
}


def _check_xc(options: PySCFOptions, names: Sequence[str]) -> None:
    if "xc_energy" in names:
        if options.is_unrestricted:
            raise PropertiesNotAvailableError(
                "xc_energy of a spin-polarised calculation needs both spin densities; the "
                "RI fit holds the total density only"
            )
        try:
            xc.functional_kind(options.xc)
        except xc.FunctionalError as error:
            raise PropertiesNotAvailableError(f"xc_energy: {error}") from None


def _evaluate(
    functions: dict[str, Callable[[], float | np.ndarray]], names: Sequence[str]
) -> dict[str, np.ndarray]:
    return {name: np.asarray(functions[name]()) * UNITS[name] for name in names}


def fitted_properties(
    mol: gto.Mole,
    auxmol: gto.Mole,
    coefficients: np.ndarray,
    names: Sequence[str],
    options: PySCFOptions,
) -> dict[str, np.ndarray]:
    """Quantities of the RI density of ``auxmol``; E_xc on ``mol``'s DFT grid of
    ``options.grid_level``, the grid of the exact reference."""
    names = parse_property_names(names)
    _check_xc(options, names)
    functions = {
        "electron_count": lambda: properties.electron_count(auxmol, coefficients),
        "dipole": lambda: properties.dipole_moment(auxmol, coefficients),
        "hartree_energy": lambda: properties.hartree_energy(auxmol, coefficients),
        "electrostatic_energy": lambda: properties.electrostatic_energy(auxmol, coefficients),
        "xc_energy": lambda: xc.xc_energy(
            auxmol, coefficients, xc.dft_grids(mol, options.grid_level), options.xc
        ),
    }
    return _evaluate(functions, names)


def exact_properties(
    mol: gto.Mole, density_matrix: np.ndarray, names: Sequence[str], options: PySCFOptions
) -> dict[str, np.ndarray]:
    """The same quantities of a spin-summed density matrix in ``mol``'s AOs."""
    names = parse_property_names(names)
    _check_xc(options, names)
    functions = {
        "electron_count": lambda: properties.exact_electron_count(mol, density_matrix),
        "dipole": lambda: properties.exact_dipole_moment(mol, density_matrix),
        "hartree_energy": lambda: properties.exact_hartree_energy(mol, density_matrix),
        "electrostatic_energy": lambda: properties.exact_electrostatic_energy(mol, density_matrix),
        "xc_energy": lambda: properties.exact_xc_energy(
            mol, density_matrix, xc.dft_grids(mol, options.grid_level), options.xc
        ),
    }
    return _evaluate(functions, names)
