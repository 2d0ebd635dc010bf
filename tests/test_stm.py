"""STM images: analytic fields, agreement with ASE's scan, metrics, figures, the command.

The command is tested end to end on a stub backend (a sum of exponentials around the
atoms) registered with a fresh plugin manager, a stub model and a small dataset: no QC
code and no periodic DFT are needed.
"""

from __future__ import annotations

import json
import types

import ase
import ase.io
import numpy as np
import pytest
from ase.dft.stm import STM
from click.testing import CliRunner

import rhocore.workflows.stm as stm_workflow
from rhocore.cli import cli
from rhocore.data.dataset import DatasetEntry, DatasetMetadata, DatasetWriter
from rhocore.plugins.hookspecs import hookimpl
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import get_plugin_manager, get_registry
from rhocore.qc.backend import QCBackend, RIFit
from rhocore.qc.basis import BasisLayout
from rhocore.qc.target import EnergyWindow, Target
from rhocore.qc.units import BOHR_IN_ANGSTROM
from rhocore.stm.images import (
    CellGrid,
    StmWarning,
    cell_grid_points,
    check_surface_cell,
    constant_current,
    constant_height,
    field_on_cell_grid,
    height_rmse_pm,
    nmae_percent_above,
    pearson_r,
    vacuum_z_range,
    write_ase_stm_file,
)
from rhocore.stm.plots import stm_comparison_plot, stm_image_plot, top_layer_positions
from rhocore.stm.settings import StmSettings, check_bias, target_bias
from rhocore.workflows.stm import stm_images

KAPPA = 2.0  # decay constant of the analytic field (1/angstrom)
CORRUGATION = 0.3
LX, LY, LZ = 4.0, 3.0, 16.0
SURFACE = 6.0  # z of the topmost atom (angstrom)


def slab() -> ase.Atoms:
    """Two atoms in an orthorhombic cell, the topmost at z = SURFACE, vacuum above."""
    return ase.Atoms(
        "Au2",
        positions=[[0.0, 0.0, SURFACE], [2.0, 1.5, SURFACE - 1.5]],
        cell=np.diag([LX, LY, LZ]),
        pbc=True,
    )


def corrugated(points: np.ndarray) -> np.ndarray:
    """rho = exp(-kappa (z - SURFACE)) (1 + a cos(2 pi x / LX))."""
    x, z = points[:, 0], points[:, 2]
    return np.exp(-KAPPA * (z - SURFACE)) * (1 + CORRUGATION * np.cos(2 * np.pi * x / LX))


def analytic_heights(x: np.ndarray, isovalue: float) -> np.ndarray:
    """Where ``corrugated`` equals ``isovalue``, in closed form."""
    return SURFACE + np.log((1 + CORRUGATION * np.cos(2 * np.pi * x / LX)) / isovalue) / KAPPA


def test_constant_current_heights_match_the_analytic_isosurface():
    grid = field_on_cell_grid(slab(), corrugated, 0.1, z_range=(5.0, 12.0))
    x, _ = grid.xy()
    heights = constant_current(grid, 1e-2)
    error = np.abs(heights - analytic_heights(x, 1e-2))
    # linear interpolation of exp(-k z) between planes dz apart: the interpolant exceeds
    # f by at most dz^2/8 max f'', and |f'| >= k min f there, so
    # |dz_height| <= k dz^2 exp(k dz) / 8
    bound = KAPPA * grid.dz**2 * np.exp(KAPPA * grid.dz) / 8
    assert np.all(np.isfinite(heights))
    assert error.max() <= bound
    assert error.max() > 0.1 * bound  # the bound is tight, not vacuous


def test_constant_height_interpolates_between_planes():
    grid = field_on_cell_grid(slab(), corrugated, 0.1, z_range=(5.0, 12.0))
    x, y = grid.xy()
    on_plane = grid.z[7]
    assert np.allclose(constant_height(grid, on_plane), grid.values[..., 7], rtol=1e-12)
    z = on_plane + 0.37 * grid.dz
    exact = corrugated(np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], axis=1))
    # linear interpolation error <= dz^2/8 max|f''| = dz^2/8 k^2 f(lower plane)
    bound = grid.dz**2 / 8 * KAPPA**2 * grid.values[..., 7]
    assert np.all(np.abs(constant_height(grid, z) - exact.reshape(x.shape)) <= bound)
    with pytest.raises(ValueError, match="outside the grid's z range"):
        constant_height(grid, 14.0)


def hexagonal_slab() -> ase.Atoms:
    """A skewed (60 degree) surface cell, slab in the middle with vacuum on both sides."""
    cell = np.array([[5.0, 0.0, 0.0], [2.5, 2.5 * np.sqrt(3), 0.0], [0.0, 0.0, 18.0]])
    positions = [[0.0, 0.0, 7.0], [2.5, 1.44, 9.0], [1.0, 2.0, 9.0]]
    return ase.Atoms("Cu3", positions=positions, cell=cell, pbc=True)


def hexagonal_field(points: np.ndarray) -> np.ndarray:
    """A periodic, corrugated, decaying field with a bump over one atom."""
    cell = np.asarray(hexagonal_slab().cell)
    reciprocal = 2 * np.pi * np.linalg.inv(cell).T
    phases = points @ reciprocal[:2].T
    decay = np.exp(-2.2 * (points[:, 2] - 9.0))
    bump = 0.4 * np.exp(-np.sum((points - [2.5, 1.44, 9.8]) ** 2, axis=1))
    return decay * (1 + 0.3 * np.cos(phases[:, 0]) + 0.2 * np.sin(phases[:, 1])) + bump


@pytest.mark.parametrize("z_range", [None, (6.5, 14.0)])
def test_ase_scan_of_the_written_file_gives_the_same_heights(tmp_path, z_range):
    atoms = hexagonal_slab()
    grid = field_on_cell_grid(atoms, hexagonal_field, 0.13, z_range=z_range)
    isovalue, bias = 2e-2, -1.0
    heights = constant_current(grid, isovalue)
    path = tmp_path / "field.json"
    write_ase_stm_file(path, grid, bias)
    # the file holds e/angstrom^3; ASE's STM wants a str filename
    x, y, ase_heights = STM(str(path)).scan(bias, isovalue / BOHR_IN_ANGSTROM**3)
    assert np.all(np.isfinite(heights))
    assert np.abs(heights - ase_heights).max() * 100 <= 1.0  # picometres
    grid_x, grid_y = grid.xy()
    assert np.allclose(x, grid_x) and np.allclose(y, grid_y)


def test_ase_reads_the_whole_cell_in_its_units(tmp_path):
    grid = field_on_cell_grid(slab(), corrugated, 0.25, z_range=(5.0, 9.0))
    write_ase_stm_file(tmp_path / "f.json", grid, 0.5)
    reader = STM(str(tmp_path / "f.json"))
    assert reader.bias == 0.5 and np.allclose(reader.cell, np.diag([LX, LY, LZ]))
    assert reader.ldos.shape == (*grid.values.shape[:2], grid.nz_cell)
    first = round(grid.origin[2] / grid.dz)
    assert np.allclose(reader.ldos[..., first] * BOHR_IN_ANGSTROM**3, grid.values[..., 0])
    assert not reader.ldos[..., first - 1].any()
    shifted = CellGrid(grid.values, grid.cell, grid.origin + [0, 0, 0.01], grid.nz_cell)
    with pytest.raises(ValueError, match="must start at"):
        write_ase_stm_file(tmp_path / "g.json", shifted, 0.5)


def test_columns_without_a_crossing_are_nan_with_a_warning():
    grid = field_on_cell_grid(slab(), corrugated, 0.1, z_range=(8.0, 12.0))
    x, _ = grid.xy()
    at_bottom = np.exp(-KAPPA * (grid.z[0] - SURFACE)) * (
        1 + CORRUGATION * np.cos(2 * np.pi * x / LX)
    )
    with pytest.warns(StmWarning, match=r"in 0 the field exceeds .* never reaches"):
        heights = constant_current(grid, 0.02)
    assert np.array_equal(np.isnan(heights), at_bottom <= 0.02)
    assert 0 < np.isnan(heights).sum() < heights.size
    with pytest.warns(StmWarning, match=f"in {heights.size} the field exceeds it already"):
        assert np.isnan(constant_current(grid, 1e-12)).all()


def test_cells_without_the_normal_along_z_are_refused():
    check_surface_cell(np.asarray(hexagonal_slab().cell))
    for cell in ([[4, 0, 0], [0, 3, 0], [1, 0, 10]], [[4, 0, 0.5], [0, 3, 0], [0, 0, 10]]):
        with pytest.raises(ValueError, match=r"surface normal along \+z"):
            check_surface_cell(np.array(cell, dtype=float))
    with pytest.raises(ValueError, match="3D cell"):
        check_surface_cell(np.zeros((3, 3)))


def test_grid_covers_the_vacuum_above_the_surface():
    atoms = hexagonal_slab()  # slab from z = 7 to 9 in a cell 18 high: a 16 angstrom gap
    assert vacuum_z_range(atoms, below=2.0) == (7.0, 17.0)
    points = cell_grid_points(atoms, 0.5, z_range=(7.0, 17.0))
    assert points[:, 2].min() == 7.0 and points[:, 2].max() == 17.0
    assert len(points) == 10 * 10 * 21
    atoms.positions[0, 2] = 18.5
    with pytest.raises(ValueError, match="need vacuum above"):
        vacuum_z_range(atoms)


def test_metrics_match_hand_computed_values():
    predicted = np.array([[1.0, 1.1], [np.nan, 2.0]])
    reference = np.array([[1.0, 1.0], [1.0, 2.0]])
    assert height_rmse_pm(predicted, reference) == pytest.approx(100 * np.sqrt(0.01 / 3))
    assert pearson_r([1, 2, 3, np.nan], [2, 4, 7, 1]) == pytest.approx(5 / np.sqrt(2 * 38 / 3))
    with pytest.raises(ValueError, match="constant"):
        pearson_r(np.ones(4), np.arange(4))
    grid = CellGrid(np.ones((2, 2, 4)), np.diag([2.0, 2.0, 4.0]))  # planes at z = 0, 1, 2, 3
    field = np.ones((2, 2, 4))
    field[..., :2] = 5.0  # large errors below z = 2 do not count
    field[..., 2:] = 1.1
    assert nmae_percent_above(field, grid.values, grid, 2.0) == pytest.approx(10.0)
    assert grid.voxel_volume_bohr3 == pytest.approx(1.0 / BOHR_IN_ANGSTROM**3)


def test_figures_are_written_as_png(tmp_path):
    labels = {"colorbar_label": "tip height (Å)", "title": "test", "repeat": (3, 2)}
    atoms = hexagonal_slab()
    grid = field_on_cell_grid(atoms, hexagonal_field, 0.25, z_range=(7.0, 14.0))
    heights = constant_current(grid, 2e-2) - 9.0
    reference = heights + 0.01 * np.sin(np.arange(heights.size)).reshape(heights.shape)
    reference[0, 0] = np.nan
    for path, draw in (
        (tmp_path / "one.png", lambda p: stm_image_plot(p, heights, atoms, **labels)),
        (
            tmp_path / "three.png",
            lambda p: stm_comparison_plot(p, heights, reference, atoms, **labels),
        ),
    ):
        draw(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_top_layer_atoms_are_wrapped_and_tiled():
    xy, numbers = top_layer_positions(hexagonal_slab(), depth=1.5, repeat=(2, 3))
    assert len(xy) == 2 * 6 and set(numbers) == {29}
    shifted = hexagonal_slab()
    shifted.positions[1:, :2] += np.asarray(shifted.cell)[0, :2]  # one cell along a
    assert np.allclose(top_layer_positions(shifted, 1.5, (2, 3))[0], xy)


class WindowTarget(Target):
    """An in-test ILDOS: the states of [lower, upper] eV from a reference."""

    name = "ildos"

    class Options(PluginOptions):
        lower: float = -1.0
        upper: float = 0.0
        reference: str = "fermi"

    @property
    def energy_window(self) -> EnergyWindow:
        return EnergyWindow(self.options.lower, self.options.upper, self.options.reference)

    def weights(self, orbitals):
        raise AssertionError("STM images only evaluate stored or predicted fields")


class OrbitalTarget(WindowTarget):
    """An in-test field that is no energy window's."""

    name = "homo"

    @property
    def energy_window(self) -> None:
        return None


@pytest.mark.parametrize(
    ("window", "bias"),
    [({"lower": -1.0, "upper": 0.0}, -1.0), ({"lower": 0.0, "upper": 0.5}, 0.5)],
)
def test_target_bias_reads_the_ildos_window(window, bias):
    assert target_bias(WindowTarget(window)) == bias


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (OrbitalTarget(), "'homo' target, not an ILDOS"),
        (WindowTarget({"reference": "vacuum"}), "not to the Fermi level"),
        (WindowTarget({"lower": -1.0, "upper": 0.5}), "does not run from the Fermi level"),
    ],
)
def test_fields_that_are_not_the_ildos_of_a_bias_are_refused(target, message):
    with pytest.raises(ValueError, match=message):
        target_bias(target)


def test_a_bias_other_than_the_trained_one_is_refused(registry):
    with pytest.raises(ValueError, match=r"ILDOS of bias -1.000 V, not \+0.500 V"):
        check_bias(ildos_metadata(), 0.5, registry)


@pytest.mark.parametrize(
    "arguments",
    [
        {"mode": "constant-height"},
        {"mode": "constant-height", "height": 3.0, "isovalue": 1e-3},
        {"mode": "constant-current"},
        {"mode": "constant-current", "height": 3.0, "isovalue": 1e-3},
        {"mode": "topography", "height": 3.0},
    ],
)
def test_settings_need_exactly_the_set_point_of_their_mode(arguments):
    with pytest.raises(ValueError):
        StmSettings(bias=-1.0, **arguments)


# -- the workflow and the command on a stub backend -------------------------------------

DECAY = 1.8  # 1/angstrom


class ExponentialBackend(QCBackend):
    """Field = sum over atoms and their xy images of c_a exp(-DECAY |r - R_a|)."""

    name = "stm_stub"

    def evaluate_fitted(self, atoms, coefficients, points):
        cell = np.asarray(atoms.cell)
        shifts = [i * cell[0] + j * cell[1] for i in (-1, 0, 1) for j in (-1, 0, 1)]
        centres = (atoms.positions[None, :, :] + np.array(shifts)[:, None, :]).reshape(-1, 3)
        distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)
        return np.exp(-DECAY * distances) @ np.tile(coefficients, len(shifts))

    def evaluate_exact(self, atoms, field_state, points):
        return self.evaluate_fitted(atoms, field_state["amplitudes"], points)

    def run_scf(self, atoms):
        raise AssertionError("STM images only evaluate stored or predicted fields")

    def basis_layout(self, atoms):
        return BasisLayout({79: (1,)})

    def fit(self, scf, weights, n_electrons=None):
        raise AssertionError("STM images only evaluate stored or predicted fields")

    def integration_grid(self, atoms):
        raise AssertionError("STM images only evaluate stored or predicted fields")


class BlindBackend(ExponentialBackend):
    """A backend that cannot put fields on points."""

    name = "stm_blind"
    evaluates_fields = False


def ildos_metadata(**changes: object) -> DatasetMetadata:
    values: dict[str, object] = {
        "backend_name": "stm_stub",
        "backend_version": "1",
        "backend_options": {},
        "target_name": "ildos",
        "target_options": {"lower": -1.0, "upper": 0.0, "reference": "fermi"},
        "layout": BasisLayout({79: (1,)}),
        "metric_kind": "overlap",
        "rhocore_version": "0.1.0",
    }
    values.update(changes)
    return DatasetMetadata(**values)  # type: ignore[arg-type]


AMPLITUDES = np.array([1.0, 0.6])


def write_dataset(path, metadata: DatasetMetadata) -> None:
    """One entry: the slab with RI coefficients AMPLITUDES, exact field 2 % larger."""
    fit = RIFit(
        coefficients=AMPLITUDES,
        projections=AMPLITUDES,
        metric=np.eye(2),
        metric_kind="overlap",
        layout=metadata.layout,
        integrals=np.ones(2),
        field_state={"amplitudes": 1.02 * AMPLITUDES},
    )
    entry = DatasetEntry(0, slab(), fit, None, None, None, True, "done")
    with DatasetWriter(path, metadata) as writer:
        writer.write(entry)


@pytest.fixture(scope="module")
def registry():
    plugin = types.ModuleType("stm_test_backends")
    plugin.rhocore_register_backends = hookimpl(lambda: [ExponentialBackend, BlindBackend])
    plugin.rhocore_register_targets = hookimpl(lambda: [WindowTarget, OrbitalTarget])
    manager = get_plugin_manager(load_entry_points=False)
    manager.register(plugin)
    return get_registry(manager)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("stm")
    write_dataset(root / "ildos.h5", ildos_metadata())
    write_dataset(root / "homo.h5", ildos_metadata(target_name="homo", target_options={}))
    write_dataset(root / "blind.h5", ildos_metadata(backend_name="stm_blind"))
    ase.io.write(root / "slab.extxyz", slab())
    return root


def stub_model(scale: float = 1.05):
    """A model whose prediction is the reference with the second atom off by ``scale``."""
    return types.SimpleNamespace(
        dataset_metadata=ildos_metadata(),
        predict=lambda frames: [AMPLITUDES * [1.0, scale] for _ in frames],
    )


def test_workflow_images_a_model_against_its_reference(files, registry, tmp_path):
    settings = StmSettings(bias=-1.0, mode="constant-current", height=3.0, spacing=0.2)
    result = stm_images(
        stub_model(),
        files / "slab.extxyz",
        settings,
        tmp_path,
        reference=files / "ildos.h5",
        reference_index=0,
        registry=registry,
        progress=False,
    )
    names = {path.name for path in result.files}
    assert names == {
        "constant-current.png",
        "constant-current_comparison.png",
        "constant-current_metrics.json",
        "constant-current.npz",
    }
    metrics = json.loads((tmp_path / "constant-current_metrics.json").read_text())
    assert 0 < metrics["height_rmse_pm"] < 20 and 0.9 < metrics["pearson_r"] < 1.0
    assert 0 < metrics["nmae_percent_above_surface"] < 5
    arrays = np.load(tmp_path / "constant-current.npz")
    assert str(arrays["mode"]) == "constant-current" and float(arrays["bias"]) == -1.0
    assert np.allclose(arrays["image"], arrays["heights"] - SURFACE)
    # the isovalue is the mean field 3 angstrom above the top atom: heights lie near there
    assert abs(np.nanmean(arrays["image"]) - 3.0) < 0.3
    assert arrays["reference_heights"].shape == arrays["x"].shape == (20, 15)


def test_dataset_source_against_itself_is_perfect(files, registry, tmp_path):
    settings = StmSettings(bias=-1.0, mode="constant-height", height=2.5, spacing=0.2)
    result = stm_images(
        files / "ildos.h5",
        "0",
        settings,
        tmp_path,
        reference=files / "ildos.h5",
        registry=registry,
        progress=False,
    )
    assert result.metrics["pearson_r"] == pytest.approx(1.0)
    assert result.metrics["nmae_percent_above_surface"] == 0.0
    exact = stm_images(
        files / "ildos.h5", "0", settings, tmp_path, exact=True, registry=registry, progress=False
    )
    assert np.allclose(exact.image, 1.02 * result.image)


def invoke(monkeypatch, registry, *arguments: str):
    monkeypatch.setattr(stm_workflow, "get_registry", lambda: registry)
    return CliRunner().invoke(cli, ["stm", *arguments])


def test_command_writes_images_and_the_ase_field(files, registry, monkeypatch, tmp_path):
    monkeypatch.setattr(stm_workflow, "load_model_file", lambda path: stub_model())
    (tmp_path / "model.pt").write_bytes(b"stub")
    result = invoke(
        monkeypatch,
        registry,
        str(tmp_path / "model.pt"),
        str(files / "slab.extxyz"),
        "--bias=-1",
        "--mode=constant-current",
        "--isovalue=1e-3",
        "--spacing=0.25",
        "--save-field",
        str(tmp_path / "field.json"),
        "-o",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 0, result.output
    assert "isovalue 0.001 e/bohr^3" in result.output
    assert (tmp_path / "out" / "constant-current.png").stat().st_size > 0
    ase_stm = STM(str(tmp_path / "field.json"))
    heights = np.load(tmp_path / "out" / "constant-current.npz")["heights"]
    _, _, ase_heights = ase_stm.scan(-1.0, 1e-3 / BOHR_IN_ANGSTROM**3)
    assert np.abs(heights - ase_heights).max() * 100 <= 1.0


@pytest.mark.parametrize(
    ("dataset", "arguments", "message"),
    [
        ("ildos.h5", ["--bias=0.5", "--height=3"], "ILDOS of bias -1.000 V, not +0.500 V"),
        ("homo.h5", ["--bias=-1", "--height=3"], "'homo' target, not an ILDOS"),
        (
            "blind.h5",
            ["--bias=-1", "--height=3"],
            "'stm_blind' that made the data cannot evaluate fields",
        ),
        ("ildos.h5", ["--bias=-1", "--height=1", "--isovalue=1"], "takes either --isovalue"),
    ],
)
def test_command_errors_are_one_line(files, registry, monkeypatch, dataset, arguments, message):
    result = invoke(
        monkeypatch,
        registry,
        str(files / dataset),
        "0",
        "--mode=constant-current",
        *arguments,
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
