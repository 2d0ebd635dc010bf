"""The aims backend's whole run path, with a stand-in FHI-aims binary built on PySCF.

The stand-in (tests/standin/aims_standin.py) reads the control.in/geometry.in that ASE
writes for rhocore and writes FHI-aims' files of the keyword generation it imitates, in
FHI-aims' function order and phases. Physics checks compare with PySCF directly.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import ase
import numpy as np
import pytest
from rhocore_aims.backend import AimsBackend, AimsBackendError
from rhocore_aims.errors import AimsFileError
from rhocore_aims.keywords import generation_for_version

from rhocore.data.generators import distorted_waters
from rhocore.qc.backend import BackendSetupError
from rhocore.qc.rotations import random_rotation, rotate_coefficients
from rhocore.testing.backends import check_fit

pytestmark = pytest.mark.dft  # the FHI-aims stand-in runs real PySCF SCFs

STANDIN = Path(__file__).parent / "standin" / "aims_standin.py"


def write_species(root: Path) -> Path:
    """A species-defaults tree with one level folder and minimal H and O species files."""
    level = root / "species_defaults" / "tight"
    level.mkdir(parents=True)
    for name, number in (("H", 1), ("O", 8)):
        (level / f"{number:02d}_{name}_default").write_text(
            f"  species        {name}\n    nucleus             {number}\n"
        )
    return level.parent


@pytest.fixture
def species_dir(tmp_path: Path) -> Path:
    return write_species(tmp_path)


def make_backend(tmp_path: Path, species_dir: Path, **options) -> AimsBackend:
    return AimsBackend(
        {
            "command": f"{sys.executable} {STANDIN}",
            "species_dir": str(species_dir),
            "run_directory": str(tmp_path / "runs"),
            **options,
        }
    )


@pytest.fixture(scope="module")
def water() -> ase.Atoms:
    return distorted_waters(1, seed=5)[0]


def homo_weights(orbitals) -> np.ndarray:
    weights = np.zeros_like(orbitals.energies)
    weights[0, 0, orbitals.homo_index(0)] = 1.0
    return weights


@pytest.fixture(scope="module")
def water_density_run(tmp_path_factory, water):
    """The stand-in's SCF and total-density fit of ``water``, run once for the module.

    The tests that need this same run (Wigner rotation, reuse of finished steps, grid
    fields) share it: each stand-in call costs seconds. Returns (root, fit); the run
    folders are under root / "runs", the species tree under root / "species_defaults".
    """
    root = tmp_path_factory.mktemp("water-density")
    backend = make_backend(root, write_species(root))
    scf = backend.run_scf(water)
    return root, backend.fit(scf, scf.orbitals.occupations)


@pytest.fixture(scope="module")
def pyscf_homo_fit(water):
    """The direct PySCF HOMO fit the stand-in's must equal (in both keyword generations)."""
    from rhocore_pyscf import PySCFBackend

    reference = PySCFBackend({"basis": "def2-svp", "aux_basis": "weigend", "metric": "overlap"})
    reference_scf = reference.run_scf(water)
    return reference.fit(reference_scf, homo_weights(reference_scf.orbitals))


@pytest.mark.slow
@pytest.mark.parametrize("version", ["240925", "230905"])
def test_fit_matches_pyscf_in_both_keyword_generations(
    tmp_path, species_dir, water, version, pyscf_homo_fit
):
    """Coefficients parsed from the stand-in's files equal a direct PySCF fit."""
    backend = make_backend(tmp_path, species_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RHOCORE_STANDIN_VERSION", version)
        scf = backend.run_scf(water)
        assert scf.state.generation == generation_for_version(version)
        fit = backend.fit(scf, homo_weights(scf.orbitals))
    check_fit(fit, fit.layout, water, "aims stand-in")

    expected = pyscf_homo_fit
    assert fit.layout == expected.layout
    # a HOMO is defined up to its sign only through |psi|^2: the fit is sign-free
    error = np.linalg.norm(fit.coefficients - expected.coefficients)
    assert error <= 1e-6 * np.linalg.norm(expected.coefficients)
    assert np.allclose(fit.metric, expected.metric, atol=1e-10)


@pytest.mark.slow
def test_rotated_structure_gives_wigner_rotated_fit(
    tmp_path, species_dir, water, water_density_run
):
    """FHI-aims order and phases are undone: the fit is equivariant in canonical form."""
    backend = make_backend(tmp_path, species_dir)
    rotation = random_rotation(4)
    rotated = water.copy()
    rotated.positions = water.positions @ rotation.T
    scf = backend.run_scf(rotated)
    fits = [water_density_run[1], backend.fit(scf, scf.orbitals.occupations)]
    expected = rotate_coefficients(fits[0].coefficients, fits[0].layout, water.numbers, rotation)
    error = np.linalg.norm(fits[1].coefficients - expected) / np.linalg.norm(expected)
    assert error < 1e-5, f"rotated fit differs from Wigner-rotated fit by {error:.2e}"


def test_finished_steps_are_reused(water, water_density_run):
    """A second run finds the finished FHI-aims steps and does not run them again."""
    root, _ = water_density_run  # SCF and density fit of water already run there
    outputs = sorted((root / "runs").rglob("aims.out"))
    assert len(outputs) == 2  # the scf and ri-density steps
    stamps = [path.stat().st_mtime_ns for path in outputs]
    backend = make_backend(root, root / "species_defaults")  # a new backend, same options
    again = backend.run_scf(water)
    backend.fit(again, again.orbitals.occupations)
    assert [path.stat().st_mtime_ns for path in outputs] == stamps


def test_missing_binary_is_a_setup_error(tmp_path, species_dir, water):
    backend = AimsBackend(
        {"command": "mpirun -n 2 /no/such/aims.x", "species_dir": str(species_dir)}
    )
    with pytest.raises(BackendSetupError, match=r"binary '/no/such/aims.x'"):
        backend.check_setup([water])


def test_missing_species_file_is_named(tmp_path, species_dir):
    backend = make_backend(tmp_path, species_dir)
    with pytest.raises(BackendSetupError, match=r"06_C_default for element C"):
        backend.check_setup([ase.Atoms("CH4")])


def test_no_command_points_to_the_ase_config(tmp_path, monkeypatch, species_dir):
    monkeypatch.setenv("ASE_CONFIG_PATH", str(tmp_path / "absent.ini"))
    backend = AimsBackend({"species_dir": str(species_dir)})
    with pytest.raises(BackendSetupError, match=r"\[aims\] section"):
        backend.check_setup([ase.Atoms("H2O")])


def test_command_and_species_come_from_the_ase_config(tmp_path, monkeypatch, species_dir, water):
    config = tmp_path / "config.ini"
    config.write_text(
        f"[aims]\ncommand = {sys.executable} {STANDIN}\ndefault_species_directory = {species_dir}\n"
    )
    monkeypatch.setenv("ASE_CONFIG_PATH", str(config))
    backend = AimsBackend({"run_directory": str(tmp_path / "runs")})
    scf = backend.run_scf(water)
    assert scf.converged and scf.orbitals.n_electrons == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("crash", "exited with status 174"),
        ("truncate", "did not finish"),
        ("noconverge", "did not converge"),
    ],
)
def test_failed_runs_name_the_file(tmp_path, species_dir, water, monkeypatch, failure, message):
    monkeypatch.setenv("RHOCORE_STANDIN_FAIL", failure)
    backend = make_backend(tmp_path, species_dir)
    with pytest.raises(AimsFileError, match=message) as caught:
        backend.run_scf(water)
    text = str(caught.value)
    assert "aims.out" in text and "\n" not in text


def test_fields_on_points_are_refused_with_advice(tmp_path, species_dir, water):
    backend = make_backend(tmp_path, species_dir)
    with pytest.raises(AimsBackendError, match="--no-grid"):
        backend.integration_grid(water)


@pytest.mark.slow
def test_grid_fields_integrate_to_the_electron_count_and_give_the_ri_error(
    tmp_path, water_density_run
):
    from rhocore_aims.gridcheck import check_integral, grid_check

    root, fit = water_density_run
    # a copy: this test damages rho_scf.out below, and the run is shared by other tests
    folder = tmp_path / "ri-density"
    shutil.copytree(next((root / "runs").glob("*/ri-density")), folder)
    check = grid_check(folder, "mainline")
    assert check is not None
    assert check.reference_integral == pytest.approx(10.0, rel=1e-3)
    assert check.fitted_integral == pytest.approx(10.0, rel=1e-2)
    assert 0 < float(fit.field_state["ri_grid_nmae_percent"]) == check.ri_nmae_percent < 5
    table = np.loadtxt(folder / "rho_scf.out")
    table[:, 3] *= 0.9  # a field that is not this run's density
    np.savetxt(folder / "rho_scf.out", table)
    with pytest.raises(AimsFileError, match="rho_scf.out: integrates to 9.0"):
        check_integral(grid_check(folder, "mainline"), 10.0, folder, "mainline")


def test_backend_class_meets_the_plugin_contract():
    from rhocore.testing.plugins import check_plugin_class

    check_plugin_class(AimsBackend)
