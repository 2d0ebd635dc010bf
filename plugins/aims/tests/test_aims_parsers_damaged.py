"""Every FHI-aims parser on truncated and corrupted copies of valid files.

Hypothesis cuts, overwrites, deletes and inserts bytes (text, digits, NaN spellings and
bytes that are not UTF-8) in small valid files of each format, and in the real aims.out
of the shared data where it is present. A parser must then return a result or raise a
ValueError subclass whose message names the file: never an IndexError, a KeyError, a
UnicodeDecodeError without the file, or an attempt to allocate memory the file does not
describe.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rhocore_aims.parsers import aims_out, basis_info, cube, eigenvalues, grid, ri_files, summary

H2 = np.array([1, 1])
#: Radial functions per l of H in the small basis below: 2 s and 1 p per atom, 5 functions.
H_COUNTS = (2, 1)
SIZE = 2 * (H_COUNTS[0] + 3 * H_COUNTS[1])


def basis_info_text() -> str:
    lines = []
    for atom in (1, 2):
        lines.append(f" atom{atom:12d}")
        lines += [
            f" For L ={l:12d} there are{n:12d} radial functions" for l, n in enumerate(H_COUNTS)
        ]
        lines.append(f" For atom{atom:12d} max L ={len(H_COUNTS) - 1:12d}")
    return "\n".join(lines) + "\n"


def vector_text(values: np.ndarray) -> str:
    return "".join(f"{value:.16E}\n" for value in values)


RNG = np.random.default_rng(5)
_A = RNG.normal(size=(SIZE, SIZE))
OVERLAP = _A @ _A.T + SIZE * np.eye(SIZE)
COEFFICIENTS = RNG.normal(size=SIZE)

AIMS_OUT = """\
------------------------------------------------------------
          Invoking FHI-aims ...

  FHI-aims version      : 240925
  Commit number         : 8afb4ed6e

  | Number of atoms                   :        2
  | Number of spin channels           :        1

  | No unit cell requested.
  Begin self-consistency loop: Initialization.
  Begin self-consistency iteration #    1
  Begin self-consistency iteration #    2
  | Chemical potential (Fermi level):      -4.50000000 eV
  Writing Kohn-Sham eigenvalues.

  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]
      1       2.00000          -0.380000          -10.34033
      2       0.00000           0.120000            3.26537

  Highest occupied state (VBM) at    -10.34033000 eV
  Lowest unoccupied state (CBM) at     3.26537000 eV
  Self-consistency cycle converged.

  | Total energy of the DFT / Hartree-Fock s.c.f. calculation      :         -31.250000000 eV

          Leaving FHI-aims.
          Have a nice day.
------------------------------------------------------------
"""
ORBITAL_INFO = """\
       1        1    1      1     1.00000000     2.00000000      -10.34033000
       2        2    1      1     1.00000000     0.00000000        3.26537000
       3        3    1      1     1.00000000     0.00000000        6.10000000
"""
FINAL_KS = """\
# Final Kohn-Sham eigenvalues
k-point number:         1
k-point in recip. lattice units:   0.000000000000  0.000000000000  0.000000000000
k-point in cartesian units (A^{-1}):   0.0 0.0 0.0
       1   2.000000000000       -10.340330000000
       2   0.000000000000         3.265370000000
k-point number:         2
k-point in recip. lattice units:   0.500000000000  0.000000000000  0.000000000000
k-point in cartesian units (A^{-1}):   0.5 0.0 0.0
       1   2.000000000000        -9.900000000000
       2   0.000000000000         3.600000000000
"""
POINTS = np.stack(np.meshgrid(*[[-0.5, 0.5]] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
PARTITION = "".join(f"{x:.8E} {y:.8E} {z:.8E} {0.125:.8E}\n" for x, y, z in POINTS)
RHO = "".join(f"{x:.8E} {y:.8E} {z:.8E} {x * x + 0.3:.8E}\n" for x, y, z in POINTS[::-1])
CUBE = """\
comment
comment
    2    0.000000    0.000000    0.000000
    2    0.500000    0.000000    0.000000
    2    0.000000    0.500000    0.000000
    2    0.000000    0.000000    0.500000
    1    0.000000    0.000000    0.000000    0.000000
    1    0.000000    0.000000    0.000000    1.400000
  1.0E-01  2.0E-01  3.0E-01  4.0E-01
  5.0E-01  6.0E-01  7.0E-01  8.0E-01
"""
LEGACY_TABLE = "".join(
    f"{position:6d}{atom:6d}{l:6d}{radial:6d}{m:6d}\n"
    for position, (atom, l, radial, m) in enumerate(
        [(a, 0, 1, 0) for a in (1, 2)]
        + [(a, 0, 2, 0) for a in (1, 2)]
        + [(a, 1, 3, m) for a in (1, 2) for m in (-1, 0, 1)],
        start=1,
    )
)

MAINLINE_FILES = {
    "basis_info.out": basis_info_text(),
    "ri_restart_coeffs.out": vector_text(COEFFICIENTS),
    "ri_projections.out": vector_text(OVERLAP @ COEFFICIENTS),
    "ri_ovlp.out": vector_text(OVERLAP[np.triu_indices(SIZE)]),
}
LEGACY_FILES = {
    "product_basis_idxs.out": LEGACY_TABLE,
    "ri_coeffs.out": vector_text(COEFFICIENTS),
    "ri_projs.out": vector_text(OVERLAP @ COEFFICIENTS),
    "ri_ovlp.out": vector_text(OVERLAP.reshape(-1)),
}


def in_folder(files: dict[str, str], generation: str) -> Callable[[Path], object]:
    """A parser of the damaged file together with the other (intact) files of one fit."""

    def parse(path: Path) -> object:
        for name, text in files.items():
            if name != path.name:
                (path.parent / name).write_text(text)
        return ri_files.read_ri_outputs(path.parent, H2, generation)  # type: ignore[arg-type]

    return parse


def aligned(path: Path) -> object:
    (path.parent / "partition_tab.out").write_text(PARTITION)
    return grid.align_to_grid(
        grid.parse_partition_tab(path.parent / "partition_tab.out"), grid.parse_field_on_grid(path)
    )


# (file name, valid text, parser): every parser of rhocore_aims.parsers, each on its format
CASES = {
    "aims.out": ("aims.out", AIMS_OUT, aims_out.parse_aims_out),
    "aims.out check": (
        "aims.out",
        AIMS_OUT,
        lambda p: aims_out.check_finished(aims_out.parse_aims_out(p), p),
    ),
    "ks_orbital_info": ("ks_orbital_info.out", ORBITAL_INFO, eigenvalues.parse_ks_orbital_info),
    "Final_KS_eigenvalues": (
        "Final_KS_eigenvalues.dat",
        FINAL_KS,
        eigenvalues.parse_final_ks_eigenvalues,
    ),
    "eigenvalue summary": ("ks_orbital_info.out", ORBITAL_INFO, eigenvalues.summary_json),
    "basis_info": (
        "basis_info.out",
        basis_info_text(),
        lambda p: basis_info.parse_basis_info(p, H2),
    ),
    "product_basis_idxs": (
        "product_basis_idxs.out",
        LEGACY_TABLE,
        basis_info.parse_product_basis_idxs,
    ),
    "RI vector": (
        "ri_restart_coeffs.out",
        vector_text(COEFFICIENTS),
        lambda p: ri_files.parse_ri_vector(p, SIZE),
    ),
    "RI overlap": (
        "ri_ovlp.out",
        MAINLINE_FILES["ri_ovlp.out"],
        lambda p: ri_files.parse_ri_overlap(p, SIZE),
    ),
    **{
        f"mainline fit, {name}": (name, text, in_folder(MAINLINE_FILES, "mainline"))
        for name, text in MAINLINE_FILES.items()
    },
    **{
        f"legacy fit, {name}": (name, text, in_folder(LEGACY_FILES, "legacy"))
        for name, text in LEGACY_FILES.items()
    },
    "partition_tab": ("partition_tab.out", PARTITION, grid.parse_partition_tab),
    "field on the grid": ("rho_scf.out", RHO, aligned),
    "cube": ("total_density.cube", CUBE, cube.parse_cube),
    "summary of a cube": ("total_density.cube", CUBE, summary.summarize),
    "summary of an RI vector": ("ri_projections.out", vector_text(COEFFICIENTS), summary.summarize),
}
NOISE = st.binary(min_size=1, max_size=4) | st.sampled_from(
    [b"0", b"9", b"-", b".", b"E", b"D", b"nan", b"Infinity", b" ", b"\n", b"\xff", b"\x00"]
)
EDITS = st.lists(
    st.tuples(st.sampled_from(["cut", "overwrite", "delete", "insert"]), st.floats(0, 1), NOISE),
    min_size=1,
    max_size=4,
)


def damaged(data: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, noise in edits:
        at = int(where * len(data))
        if kind == "cut":
            data = data[:at]
        elif kind == "overwrite":
            data = data[:at] + noise + data[at + len(noise) :]
        elif kind == "delete":
            data = data[:at] + data[at + len(noise) :]
        else:
            data = data[:at] + noise + data[at:]
    return data


def assert_parses_or_names_the_file(parse: Callable[[Path], object], path: Path) -> None:
    try:
        parse(path)
    except ValueError as error:  # AimsFileError is one
        assert str(path.parent) in str(error), f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_valid_seed_files_parse(tmp_path, case):
    name, text, parse = CASES[case]
    (tmp_path / name).write_text(text)
    parse(tmp_path / name)


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=EDITS)
def test_damaged_files_parse_or_raise_an_error_naming_them(tmp_path, case, edits):
    name, text, parse = CASES[case]
    folder = tmp_path / "run"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / name).write_bytes(damaged(text.encode(), edits))
    assert_parses_or_names_the_file(parse, folder / name)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=EDITS)
def test_damaged_real_aims_out_parses_or_names_the_file(shared_data, tmp_path, edits):
    real = shared_data / "aims_outputs" / "He_gw" / "He_scGW_ontop_PBE.out"
    path = tmp_path / "aims.out"
    path.write_bytes(damaged(real.read_bytes(), edits))
    assert_parses_or_names_the_file(aims_out.summary_json, path)


def with_word(text: str, line: int, word: int, value: str) -> str:
    """``text`` with word ``word`` of line ``line`` replaced by ``value``."""
    lines = text.splitlines()
    words = lines[line].split()
    words[word] = value
    lines[line] = " ".join(words)
    return "\n".join(lines) + "\n"


def test_a_damaged_count_is_an_error_not_a_huge_allocation(tmp_path):
    """A state number, a radial count or an l of 10^9 must not size an array."""
    orbitals = tmp_path / "ks_orbital_info.out"
    orbitals.write_text(with_word(ORBITAL_INFO, 2, 1, "999999999"))
    with pytest.raises(
        ValueError,
        match=r"999999996 orbitals of the 1 x 1 x 999999999 \(spin x k-point x state\) grid",
    ):
        eigenvalues.parse_ks_orbital_info(orbitals)
    for name, text in MAINLINE_FILES.items():
        (tmp_path / name).write_text(text)
    damaged_basis = with_word(basis_info_text(), 1, 6, "999999999")  # s functions of atom 1
    (tmp_path / "basis_info.out").write_text(with_word(damaged_basis, 5, 6, "999999999"))
    with pytest.raises(ValueError, match=r"ri_restart_coeffs\.out: truncated: only 10 values"):
        ri_files.read_ri_outputs(tmp_path, H2, "mainline")
    table = tmp_path / "product_basis_idxs.out"
    table.write_text(with_word(LEGACY_TABLE, 4, 2, "999999999"))
    with pytest.raises(ValueError, match="lists l = 999999999, whose 2l"):
        basis_info.parse_product_basis_idxs(table)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("0.500000000000  0.000000000000  0.000000000000", "0.5 0.0", "line 8: a k-point needs 3"),
        ("-9.900000000000", "nan", "line 10 has a non-finite value"),
    ],
)
def test_final_ks_eigenvalues_with_a_cut_k_point_or_nan_is_named(tmp_path, old, new, message):
    path = tmp_path / "Final_KS_eigenvalues.dat"
    path.write_text(FINAL_KS.replace(old, new))
    with pytest.raises(ValueError, match=rf"{path}: {message}"):
        eigenvalues.parse_final_ks_eigenvalues(path)
