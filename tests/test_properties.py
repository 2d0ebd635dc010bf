"""Names, errors and the optional backend hooks of derived quantities (no QC code)."""

from __future__ import annotations

import ase
import numpy as np
import pytest

from rhocore.data.dataset import DatasetMetadata
from rhocore.qc.backend import QCBackend
from rhocore.qc.basis import BasisLayout
from rhocore.qc.properties import (
    PROPERTIES,
    PropertiesNotAvailableError,
    parse_property_names,
    property_errors,
)
from rhocore.workflows.derived import density_backend


class FieldOnlyBackend(QCBackend):
    """A backend with the abstract methods only: none of the optional hooks.

    The tests reach only the refusals of the missing hooks, never an SCF or a fit.
    """

    name = "field-only"

    def run_scf(self, atoms):
        raise NotImplementedError

    def basis_layout(self, atoms):
        return BasisLayout({1: (1,)})

    def fit(self, scf, weights, n_electrons=None):
        raise NotImplementedError

    def evaluate_fitted(self, atoms, coefficients, points):
        return np.zeros(len(points))

    def evaluate_exact(self, atoms, field_state, points):
        return np.zeros(len(points))

    def integration_grid(self, atoms):
        raise NotImplementedError


def test_property_names_are_parsed_from_commas_lists_and_all():
    assert parse_property_names("dipole, xc_energy") == ["dipole", "xc_energy"]
    assert parse_property_names(["dipole", "dipole"]) == ["dipole"]
    assert parse_property_names("all") == list(PROPERTIES)


def test_unknown_property_names_are_refused_with_a_suggestion():
    with pytest.raises(ValueError, match=r"'hartree' \(did you mean 'hartree_energy'\?\)"):
        parse_property_names("electron_count,hartree")
    with pytest.raises(ValueError, match="no property named"):
        parse_property_names(" , ")


def test_property_errors_are_relative_counts_dipole_norms_and_mev_per_atom():
    predicted = {
        "electron_count": 10.01,
        "dipole": np.array([0.0, 3.0, 4.0]),
        "xc_energy": -250.0,
        "hartree_energy": 1280.0,
    }
    reference = {
        "electron_count": 10.0,
        "dipole": np.zeros(3),
        "xc_energy": -250.03,
    }
    errors = property_errors(predicted, reference, n_atoms=3)
    assert errors == pytest.approx(
        {
            "electron_count_error_percent": 0.1,
            "dipole_error_debye": 5.0,
            "xc_energy_error_mev_per_atom": 10.0,
        }
    )


def test_backends_without_the_optional_hooks_say_so():
    backend = FieldOnlyBackend()
    atoms = ase.Atoms("H")
    with pytest.raises(PropertiesNotAvailableError, match="'field-only' cannot compute"):
        backend.properties(atoms, np.zeros(1), ["dipole"])
    with pytest.raises(PropertiesNotAvailableError, match="Kohn-Sham densities"):
        backend.exact_properties(atoms, {}, ["dipole"])
    with pytest.raises(PropertiesNotAvailableError, match="electrostatic potential"):
        backend.electrostatic_potential(atoms, np.zeros(1), np.zeros((1, 3)))
    with pytest.raises(PropertiesNotAvailableError, match="SCF from a predicted density"):
        backend.write_scf_guess(atoms, np.zeros(1), None, "x")


def test_derived_quantities_of_an_orbital_field_are_refused():
    metadata = DatasetMetadata(
        backend_name="field-only",
        backend_version="0",
        backend_options={},
        target_name="homo",
        target_options={},
        layout=None,
        metric_kind="overlap",
        rhocore_version="0",
    )
    with pytest.raises(ValueError, match="trained on the 'homo' field"):
        density_backend(metadata, "derived quantities")
