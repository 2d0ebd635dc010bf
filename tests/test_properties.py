"""Names, errors and the optional backend hooks of derived quantities (no QC code)."""

from __future__ import annotations

import types

import ase
import numpy as np
import pytest

from rhocore.data.dataset import DatasetMetadata
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.backend import QCBackend
from rhocore.qc.basis import BasisLayout
from rhocore.qc.properties import (
    PROPERTIES,
    PropertiesNotAvailableError,
    parse_property_names,
    property_errors,
)
from rhocore.qc.target import Target
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
    with pytest.raises(ValueError, match=r"'hartree'. Did you mean 'hartree_energy'\?"):
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


class OrbitalStub(Target):
    name = "orbital-stub"

    def weights(self, orbitals):
        raise NotImplementedError


class DensityStub(OrbitalStub):
    name = "density-stub"
    is_total_density = True


@pytest.fixture(scope="module")
def registry():
    plugin = types.ModuleType("derived_test_plugins")
    plugin.rhocore_register_backends = hookimpl(lambda: [FieldOnlyBackend])
    plugin.rhocore_register_targets = hookimpl(lambda: [OrbitalStub, DensityStub])
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    return get_registry(manager)


def field_only_metadata(target_name: str) -> DatasetMetadata:
    return DatasetMetadata(
        backend_name="field-only",
        backend_version="0",
        backend_options={},
        target_name=target_name,
        target_options={},
        layout=None,
        metric_kind="overlap",
        rhocore_version="0",
    )


def test_derived_quantities_of_an_orbital_field_are_refused(registry):
    metadata = field_only_metadata("orbital-stub")
    with pytest.raises(ValueError, match="trained on the 'orbital-stub' field"):
        density_backend(metadata, "computes_properties", "derived quantities", registry)


def test_derived_quantities_need_a_backend_that_computes_them(registry):
    metadata = field_only_metadata("density-stub")
    with pytest.raises(
        ValueError, match="'field-only' that made the data cannot compute derived quantities"
    ):
        density_backend(metadata, "computes_properties", "derived quantities", registry)
    backend = density_backend(metadata, "evaluates_fields", "cube files", registry)
    assert isinstance(backend, FieldOnlyBackend)
