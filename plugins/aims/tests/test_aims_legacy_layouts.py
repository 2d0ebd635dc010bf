"""Decoding of rho_learn and rholearn processed folders, checked on the real shared data.

The numbers checked (dᵀSd ranges, S·d = w, the dense single-water vector) are those the
data README records for each source, so a decoder error in order, transposition or the
x2 of rholearn's off-diagonal overlap blocks shows up as a failed physical identity.
"""

from __future__ import annotations

import json
import pickle
import shutil
from functools import lru_cache
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
from rhocore_aims.errors import AimsFileError
from rhocore_aims.legacy import (
    ProcessedFit,
    detect_layout,
    orbital_info,
    read_metadata,
    read_processed_folder,
)

RHOLEARN = {"qm7_0": "qm7.xyz", "isolated_c_0": "isolated.xyz"}


@lru_cache
def _frames(xyz: Path) -> list[ase.Atoms]:
    return ase.io.read(xyz, index=":")


def water_fit(shared: Path, dataset: str, frame: int) -> ProcessedFit:
    """Decoded fit of ``structures/<frame>`` of a rho_learn water dataset."""
    root = shared / dataset
    atoms = _frames(root / "water_monomers_1k.xyz")[frame]
    return read_processed_folder(root / "structures" / str(frame), atoms)


def rholearn_fit(shared: Path, name: str) -> ProcessedFit:
    """Decoded fit of one rholearn folder (frame 0 of the xyz inside it)."""
    folder = shared / "rholearn_aims" / name
    return read_processed_folder(folder, _frames(folder / RHOLEARN[name])[0])


def frame_numbers(dataset_root: Path) -> list[int]:
    return sorted(int(p.name) for p in (dataset_root / "structures").iterdir())


def assert_symmetric_positive_definite(overlap: np.ndarray) -> None:
    assert np.array_equal(overlap, overlap.T)
    assert np.linalg.eigvalsh(overlap)[0] > 0


def test_detect_layout(shared_data: Path, tmp_path: Path) -> None:
    assert detect_layout(shared_data / "rho_learn_water_density/structures/0") == "rho_learn"
    assert detect_layout(shared_data / "rho_learn_water_homo/structures/89") == "rho_learn"
    assert detect_layout(shared_data / "rholearn_aims/qm7_0") == "rholearn"
    assert detect_layout(tmp_path) is None


def test_single_water_vector_is_the_decoded_order(shared_data: Path) -> None:
    # rho_learn's saved phases are already canonical, so the decoder changes no sign
    # and its atom -> l -> n -> m flattening must reproduce the dense vector bit for bit.
    expected = np.load(shared_data / "rho_learn_single_water/coeff_vector.npy")
    fit = water_fit(shared_data, "rho_learn_water_density", 0)
    assert np.array_equal(fit.coefficients, expected)


def test_water_density_fit(shared_data: Path) -> None:
    fit = water_fit(shared_data, "rho_learn_water_density", 0)
    assert fit.source == "rho_learn"
    assert fit.layout.nmax == {1: (9, 7, 6, 3, 1), 8: (9, 10, 9, 8, 6, 4)}
    assert fit.coefficients.shape == (418,) and fit.overlap.shape == (418, 418)
    assert fit.projections is None
    assert fit.calc_info["num_abfs"] == 418
    assert_symmetric_positive_definite(fit.overlap)


# Measured dᵀSd: 81.089 (frame 112) to 81.616 for the density, 0.08945 to 0.09012 for the
# HOMO; the data README's "81.2-81.7" and "0.0894-0.0901" round these slightly too tightly.
@pytest.mark.parametrize(
    ("dataset", "low", "high"),
    [("rho_learn_water_density", 81.0, 81.7), ("rho_learn_water_homo", 0.0894, 0.0902)],
)
def test_every_rho_learn_folder(shared_data: Path, dataset: str, low: float, high: float) -> None:
    for frame in frame_numbers(shared_data / dataset):
        fit = water_fit(shared_data, dataset, frame)
        assert fit.structure_index == frame
        assert_symmetric_positive_definite(fit.overlap)
        assert low <= fit.coefficients @ fit.overlap @ fit.coefficients <= high, frame


@pytest.mark.parametrize("name", sorted(RHOLEARN))
def test_rholearn_overlap_maps_coefficients_to_projections(shared_data: Path, name: str) -> None:
    fit = rholearn_fit(shared_data, name)
    assert fit.source == "rholearn" and fit.projections is not None
    assert fit.structure_index == 0
    assert_symmetric_positive_definite(fit.overlap)
    residual = fit.overlap @ fit.coefficients - fit.projections
    assert np.linalg.norm(residual) <= 1e-10 * np.linalg.norm(fit.projections)


def test_rholearn_metadata(shared_data: Path) -> None:
    fit = rholearn_fit(shared_data, "qm7_0")
    assert fit.layout.nmax == {1: (9, 9, 7, 3, 1), 6: (11, 11, 10, 9, 8, 6, 4, 2, 1)}
    assert fit.coefficients.shape == (798,)
    assert fit.df_error["norm"] == pytest.approx(10.0, abs=1e-6)
    # dᵀSd = dᵀw: the fitted density's self-overlap, the same number either way
    assert fit.coefficients @ fit.projections == pytest.approx(
        fit.coefficients @ fit.overlap @ fit.coefficients, rel=1e-12
    )


def test_orbital_info(shared_data: Path) -> None:
    methane = orbital_info(rholearn_fit(shared_data, "qm7_0").calc_info)
    assert methane.energies.shape == (1, 1, 14)
    assert methane.n_electrons == pytest.approx(10.0)
    assert methane.homo_index(0) == 4 and methane.fermi_level == pytest.approx(-5.18851174)
    homo = orbital_info(water_fit(shared_data, "rho_learn_water_homo", 89).calc_info)
    assert homo.n_electrons == pytest.approx(10.0)
    assert homo.energies[0, 0, homo.homo_index(0)] == pytest.approx(-9.0464)
    assert orbital_info(water_fit(shared_data, "rho_learn_water_density", 0).calc_info) is None


@pytest.mark.parametrize(
    ("atoms_of", "problem"),
    [
        (lambda water, methane: methane, "H atoms [1, 2, 3, 4]"),
        (lambda water, methane: water[[1, 0, 2]], "atom 1 is H in the file but O"),
        (lambda water, methane: water[:2], "the structure has 2 atoms"),
    ],
)
def test_wrong_structure_is_named(shared_data: Path, atoms_of, problem: str) -> None:
    water = _frames(shared_data / "rho_learn_water_density/water_monomers_1k.xyz")[0]
    methane = _frames(shared_data / "rholearn_aims/qm7_0/qm7.xyz")[0]
    with pytest.raises(AimsFileError, match="ri_coeffs.npz") as error:
        read_processed_folder(
            shared_data / "rho_learn_water_density/structures/0", atoms_of(water, methane)
        )
    assert problem in str(error.value)


def _writable_copy(source: Path, target: Path) -> None:
    """Copy a (read-only) shared folder so that a test can alter its files."""
    shutil.copytree(source, target)
    target.chmod(0o755)
    for path in target.iterdir():
        path.chmod(0o644)


def _copy_rholearn(shared: Path, target: Path) -> ase.Atoms:
    """A writable copy of the methane folder; returns its structure."""
    _writable_copy(shared / "rholearn_aims/qm7_0", target)
    return _frames(target / "qm7.xyz")[0]


def test_pickled_metadata_needs_permission(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "qm7_0"
    atoms = _copy_rholearn(shared_data, folder)
    for stem in ("calc_info", "basis_set"):
        record = json.loads((folder / f"{stem}.json").read_text())
        (folder / f"{stem}.pickle").write_bytes(pickle.dumps(record))
        (folder / f"{stem}.json").unlink()
    with pytest.raises(AimsFileError, match="can only be read with --allow-pickle"):
        read_processed_folder(folder, atoms)
    fit = read_processed_folder(folder, atoms, allow_pickle=True)
    assert fit.calc_info["aims"]["version"] == "240925"
    assert read_metadata(folder, "absent") is None


def test_metadata_layout_disagreement(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "qm7_0"
    atoms = _copy_rholearn(shared_data, folder)
    record = json.loads((folder / "basis_set.json").read_text())
    record["nmax"]["C,0"] = 12
    (folder / "basis_set.json").write_text(json.dumps(record))
    with pytest.raises(AimsFileError, match="basis_set.json: lmax/nmax"):
        read_processed_folder(folder, atoms)


def _rewrite_overlap(folder: Path, keep: list[int]) -> None:
    """Keep only the overlap blocks ``keep`` of a rho_learn ri_ovlp.npz."""
    with np.load(folder / "ri_ovlp.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    out = {"keys": arrays["keys"][keep]}
    for new, old in enumerate(keep):
        for name, value in arrays.items():
            prefix = f"blocks/{old}/"
            if name.startswith(prefix):
                out[f"blocks/{new}/" + name[len(prefix) :]] = value
    np.savez(folder / "ri_ovlp.npz", **out)


def test_missing_overlap_block(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "0"
    _writable_copy(shared_data / "rho_learn_water_density/structures/0", folder)
    n_blocks = len(np.load(folder / "ri_ovlp.npz")["keys"])
    _rewrite_overlap(folder, list(range(n_blocks - 1)))
    atoms = _frames(shared_data / "rho_learn_water_density/water_monomers_1k.xyz")[0]
    with pytest.raises(AimsFileError, match="ri_ovlp.npz: lacks overlap elements"):
        read_processed_folder(folder, atoms)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "ri_coeffs.npz", keys=np.array([{"a": 1}], dtype=object))
    with pytest.raises(AimsFileError, match="not a readable numpy archive"):
        detect_layout(tmp_path)
