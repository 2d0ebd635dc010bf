"""RI-file parsers on real FHI-aims data written back into FHI-aims' text formats.

``rholearn_aims/qm7_0`` holds methane's ri_restart_coeffs.out, ri_projections.out and
ri_ovlp.out of FHI-aims 240925 (lab-cosmo/rholearn), only re-blocked into metatensor
npz files. The tests decode them (README section 4), write the three files and
basis_info.out back in FHI-aims' formats, and check that the parsers recover them:
S d = w before and after the canonical conversion, the layout of basis_set.json, and the
same canonical arrays from a shuffled legacy (product_basis_idxs.out) copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ase.io
import numpy as np
import pytest
from rhocore_aims.convention import aims_sign, from_layout
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.ri_files import (
    parse_ri_overlap,
    parse_ri_vector,
    read_ri_outputs,
)

from rhocore.qc.basis import BasisLayout

SYMBOLS = {"H": 1, "C": 6}


# ----- decoding the processed npz files (test-side only) -----


def basis_layout(folder: Path) -> BasisLayout:
    """basis_set.json ({'nmax': {'C,0': 11, ...}}) as a layout."""
    nmax = json.loads((folder / "basis_set.json").read_text())["nmax"]
    counts: dict[int, dict[int, int]] = {}
    for key, count in nmax.items():
        symbol, l = key.split(",")
        counts.setdefault(SYMBOLS[symbol], {})[int(l)] = count
    return BasisLayout({z: tuple(c[l] for l in range(len(c))) for z, c in counts.items()})


def decode_vector(path: Path, layout: BasisLayout, numbers: np.ndarray) -> np.ndarray:
    """A coefficient-like npz as one vector, atom -> l -> n -> m."""
    data = np.load(path)
    blocks = {}
    for i, (l, _sigma, _z) in enumerate(data["keys"].tolist()):
        atoms = data[f"blocks/{i}/samples"]["atom"]
        assert data[f"blocks/{i}/components/0"]["o3_mu"].tolist() == list(range(-l, l + 1))
        for atom, values in zip(atoms, data[f"blocks/{i}/values"], strict=True):
            blocks[(int(atom), l)] = values.T.reshape(-1)
    parts = [
        blocks[(atom, l)] for atom, z in enumerate(numbers) for l in range(layout.lmax(int(z)) + 1)
    ]
    return np.concatenate(parts)


def decode_overlap(path: Path, layout: BasisLayout, numbers: np.ndarray) -> np.ndarray:
    """The overlap npz as a dense symmetric matrix (off-diagonal atom blocks stored x2)."""
    data = np.load(path)
    offsets = layout.atom_offsets(numbers)
    size = offsets[-1]
    overlap = np.zeros((size, size))
    for i in range(len(data["keys"])):
        samples = data[f"blocks/{i}/samples"]
        for (_system, a, b), values in zip(
            samples.tolist(), data[f"blocks/{i}/values"], strict=True
        ):
            values = values / 2 if a != b else values
            rows, cols = slice(offsets[a], offsets[a + 1]), slice(offsets[b], offsets[b + 1])
            overlap[rows, cols] = values
            overlap[cols, rows] = values.T
    return overlap


@pytest.fixture(scope="module")
def methane(shared_data: Path) -> dict:
    """Methane's raw FHI-aims arrays (FHI-aims' order and phases) and its layout."""
    folder = shared_data / "rholearn_aims" / "qm7_0"
    numbers = ase.io.read(folder / "qm7.xyz", index=0).numbers
    layout = basis_layout(folder)
    return {
        "numbers": numbers,
        "layout": layout,
        "coefficients": decode_vector(folder / "ri_coeffs.npz", layout, numbers),
        "projections": decode_vector(folder / "ri_projs.npz", layout, numbers),
        "overlap": decode_overlap(folder / "ri_ovlp.npz", layout, numbers),
    }


# ----- writing FHI-aims' text formats -----


def write_vector(path: Path, values: np.ndarray) -> None:
    """One value per line, as FHI-aims writes RI vectors."""
    np.savetxt(path, values, fmt="%.16e")


def write_basis_info(path: Path, layout: BasisLayout, numbers: np.ndarray) -> None:
    """basis_info.out as FHI-aims 240925 writes it (Fortran list-directed integers)."""
    lines = []
    for atom, z in enumerate(numbers, start=1):
        counts = layout.nmax[int(z)]
        lines.append(f" atom{atom:12d}")
        lines += [
            f" For L ={l:12d} there are{n:12d} radial functions" for l, n in enumerate(counts)
        ]
        lines.append(f" For atom{atom:12d} max L ={len(counts) - 1:12d}")
    path.write_text("\n".join(lines) + "\n")


def write_mainline(folder: Path, data: dict) -> None:
    """The four files of a mainline RI run."""
    folder.mkdir(exist_ok=True)
    write_basis_info(folder / "basis_info.out", data["layout"], data["numbers"])
    write_vector(folder / "ri_restart_coeffs.out", data["coefficients"])
    write_vector(folder / "ri_projections.out", data["projections"])
    overlap = data["overlap"]
    write_vector(folder / "ri_ovlp.out", overlap[np.triu_indices(len(overlap))])


def write_legacy(folder: Path, data: dict, seed: int = 7) -> None:
    """The same fit as a legacy run: shuffled vector order, product_basis_idxs.out, full S.

    The index table lists functions in (atom, l, radial, m) order, like FHI-aims', with
    radial functions numbered per element over all l (not contiguous per l) and the first
    column giving each function's line in the vector files. Values take the phases of
    legacy files relative to mainline ones (:func:`rhocore_aims.convention.aims_sign`).
    """
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    table = data["layout"].function_table(data["numbers"])  # atom, Z, l, n, m (0-based)
    radial_ids = {}
    for z, counts in data["layout"].nmax.items():
        ids = rng.permutation(sum(counts)) + 1
        start = np.cumsum((0, *counts))
        for l in range(len(counts)):
            radial_ids[(z, l)] = np.sort(ids[start[l] : start[l + 1]])
    order = rng.permutation(len(table))  # file line of each canonical function
    rows = [
        (order[i] + 1, atom + 1, l, radial_ids[(z, l)][n], m)
        for i, (atom, z, l, n, m) in enumerate(table.tolist())
    ]
    np.savetxt(folder / "product_basis_idxs.out", np.array(rows), fmt="%6d")
    phase = np.array(
        [aims_sign(l, m, "legacy") * aims_sign(l, m, "mainline") for *_, l, _n, m in table]
    )
    inverse = np.argsort(order)
    write_vector(folder / "ri_coeffs.out", (phase * data["coefficients"])[inverse])
    write_vector(folder / "ri_projs.out", (phase * data["projections"])[inverse])
    overlap = phase[:, None] * data["overlap"] * phase[None, :]
    write_vector(folder / "ri_ovlp.out", overlap[np.ix_(inverse, inverse)].reshape(-1))


@pytest.fixture(scope="module")
def mainline_folder(methane: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Methane's mainline RI files, written once (tests copy before changing them)."""
    folder = tmp_path_factory.mktemp("mainline")
    write_mainline(folder, methane)
    return folder


@pytest.fixture(scope="module")
def legacy_folder(methane: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same fit as legacy RI files."""
    folder = tmp_path_factory.mktemp("legacy")
    write_legacy(folder, methane)
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def relative_residual(overlap: np.ndarray, coefficients: np.ndarray, projections: np.ndarray):
    return np.linalg.norm(overlap @ coefficients - projections) / np.linalg.norm(projections)


# ----- tests -----


def test_raw_files_round_trip_and_fit_equation(methane: dict, mainline_folder: Path) -> None:
    size = methane["layout"].size(methane["numbers"])
    assert size == 798
    coefficients = parse_ri_vector(mainline_folder / "ri_restart_coeffs.out", size)
    projections = parse_ri_vector(mainline_folder / "ri_projections.out", size)
    overlap = parse_ri_overlap(mainline_folder / "ri_ovlp.out", size)
    np.testing.assert_array_equal(coefficients, methane["coefficients"])
    np.testing.assert_array_equal(overlap, methane["overlap"])
    np.testing.assert_array_equal(overlap, overlap.T)
    assert relative_residual(overlap, coefficients, projections) < 1e-10


def test_mainline_outputs_are_canonical(methane: dict, mainline_folder: Path) -> None:
    outputs = read_ri_outputs(mainline_folder, methane["numbers"], "mainline")
    assert outputs.layout == methane["layout"]
    conversion = from_layout(methane["layout"], methane["numbers"], generation="mainline")
    np.testing.assert_array_equal(
        outputs.coefficients, conversion.to_canonical(methane["coefficients"])
    )
    assert relative_residual(outputs.overlap, outputs.coefficients, outputs.projections) < 1e-10
    raw = methane["coefficients"] @ methane["projections"]
    assert outputs.coefficients @ outputs.projections == pytest.approx(raw, rel=1e-13)
    assert np.linalg.eigvalsh(outputs.overlap)[0] > 0


def test_legacy_shuffled_copy_gives_the_same_canonical_fit(
    methane: dict, mainline_folder: Path, legacy_folder: Path
) -> None:
    mainline = read_ri_outputs(mainline_folder, methane["numbers"], "mainline")
    legacy = read_ri_outputs(legacy_folder, methane["numbers"], "legacy")
    assert legacy.layout == mainline.layout
    np.testing.assert_array_equal(legacy.coefficients, mainline.coefficients)
    np.testing.assert_array_equal(legacy.projections, mainline.projections)
    np.testing.assert_array_equal(legacy.overlap, mainline.overlap)


def test_projections_are_optional(methane: dict, mainline_folder: Path, tmp_path: Path) -> None:
    folder = copy_of(mainline_folder, tmp_path)
    (folder / "ri_projections.out").unlink()
    outputs = read_ri_outputs(folder, methane["numbers"], "mainline")
    assert outputs.projections is None


def test_fortran_d_exponents_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "ri_coeffs.out"
    path.write_text("# written by hand\n  0.125D+01\n-2.5d-3\n\n3.0E+00\n")
    np.testing.assert_array_equal(parse_ri_vector(path, 3), [1.25, -2.5e-3, 3.0])


def test_full_overlap_must_be_symmetric(tmp_path: Path) -> None:
    path = tmp_path / "ri_ovlp.out"
    write_vector(path, np.array([[2.0, 1.0], [0.5, 2.0]]).reshape(-1))
    with pytest.raises(AimsFileError, match="not symmetric"):
        parse_ri_overlap(path, 2)


def test_truncated_vector_is_named(methane: dict, mainline_folder: Path, tmp_path: Path) -> None:
    folder = copy_of(mainline_folder, tmp_path)
    write_vector(folder / "ri_restart_coeffs.out", methane["coefficients"][:-10])
    with pytest.raises(AimsFileError, match=r"ri_restart_coeffs\.out: truncated: only 788 "):
        read_ri_outputs(folder, methane["numbers"], "mainline")


def test_wrong_overlap_length_states_the_counts(tmp_path: Path) -> None:
    path = tmp_path / "ri_ovlp.out"
    write_vector(path, np.ones(7))
    with pytest.raises(AimsFileError, match=r"ri_ovlp\.out: holds 7 values; 3 RI .* 9 .* 6 "):
        parse_ri_overlap(path, 3)


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_non_finite_values_are_refused(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "ri_projections.out"
    path.write_text(f"1.0\n{bad}\n2.0\n")
    with pytest.raises(AimsFileError, match=r"ri_projections\.out: non-finite .* row 2"):
        parse_ri_vector(path)


def test_unreadable_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ri_coeffs.out"
    path.write_text("1.0\n********\n")
    with pytest.raises(AimsFileError, match=r"ri_coeffs\.out: not a table of numbers"):
        parse_ri_vector(path)


@pytest.mark.parametrize("generation", ["mainline", "legacy"])
def test_missing_files_are_named(tmp_path: Path, generation: str) -> None:
    with pytest.raises(AimsFileError, match=r"(basis_info|product_basis_idxs)\.out: missing"):
        read_ri_outputs(tmp_path, [6, 1, 1, 1, 1], generation)


def test_missing_overlap_is_named(methane: dict, mainline_folder: Path, tmp_path: Path) -> None:
    folder = copy_of(mainline_folder, tmp_path)
    (folder / "ri_ovlp.out").unlink()
    with pytest.raises(AimsFileError, match=r"ri_ovlp\.out: missing"):
        read_ri_outputs(folder, methane["numbers"], "mainline")


def test_legacy_table_beyond_the_structure(methane: dict, legacy_folder: Path) -> None:
    with pytest.raises(AimsFileError, match=r"product_basis_idxs\.out: lists atom 5"):
        read_ri_outputs(legacy_folder, methane["numbers"][:4], "legacy")
