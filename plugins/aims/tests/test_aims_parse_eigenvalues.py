"""ks_orbital_info.out, ks_orbital_weights.in, Final_KS_eigenvalues.dat and aims.out listings.

The small files are written by hand in FHI-aims' layouts, with values chosen so that every
expected number below was worked out by hand; one ks_orbital_info.out is rebuilt from the
real rows of a shared FHI-aims 230905 run and checked against the HOMO and LUMO its aims.out
printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.eigenvalues import (
    homo_lumo,
    parse_eigenvalue_listing,
    parse_final_ks_eigenvalues,
    parse_ks_orbital_info,
    summary_json,
    write_kso_weights,
)

# 2 spins x 2 k-points x 3 states, rows ordered k-point -> state -> spin (not the array
# order), k-weights 0.25 and 0.75. Columns: orbital, state, spin, k-point, k-weight,
# occupation, energy (eV).
ORBITAL_ROWS = """\
       1        1    1      1     0.25000000     1.00000000      -10.10000000
       2        1    2      1     0.25000000     1.00000000       -9.90000000
       3        2    1      1     0.25000000     1.00000000       -5.10000000
       4        2    2      1     0.25000000     0.40000000       -4.90000000
       5        3    1      1     0.25000000     0.00000000        1.10000000
       6        3    2      1     0.25000000     0.00000000        1.30000000
       7        1    1      2     0.75000000     1.00000000      -10.20000000
       8        1    2      2     0.75000000     1.00000000       -9.80000000
       9        2    1      2     0.75000000     1.00000000       -5.20000000
      10        2    2      2     0.75000000     0.20000000       -4.80000000
      11        3    1      2     0.75000000     0.00000000        1.20000000
      12        3    2      2     0.75000000     0.00000000        1.40000000
"""
# (spin, k, state), 0-based, of each row above
ROW_ORBITALS = [
    (0, 0, 0), (1, 0, 0), (0, 0, 1), (1, 0, 1), (0, 0, 2), (1, 0, 2),
    (0, 1, 0), (1, 1, 0), (0, 1, 1), (1, 1, 1), (0, 1, 2), (1, 1, 2),
]  # fmt: skip
# electrons: up (1 + 1) * 0.25 + (1 + 1) * 0.75 = 2; down (1 + 0.4) * 0.25 + (1 + 0.2) * 0.75
ELECTRONS = 3.25


def orbital_file(tmp_path: Path, text: str = ORBITAL_ROWS, name: str = "ks_orbital_info.out"):
    path = tmp_path / name
    path.write_text(text)
    return path


def with_weight_column(text: str) -> str:
    """Row i gets the KS-orbital weight i / 100 as its eighth column."""
    lines = text.splitlines()
    return "".join(f"{line} {i / 100:14.8f}\n" for i, line in enumerate(lines, start=1))


def test_orbitals_land_in_spin_k_state_order(tmp_path: Path) -> None:
    info = parse_ks_orbital_info(orbital_file(tmp_path))
    orbitals = info.orbitals
    assert orbitals.energies.shape == (2, 2, 3)
    np.testing.assert_allclose(orbitals.energies[0], [[-10.1, -5.1, 1.1], [-10.2, -5.2, 1.2]])
    np.testing.assert_allclose(orbitals.energies[1], [[-9.9, -4.9, 1.3], [-9.8, -4.8, 1.4]])
    np.testing.assert_allclose(orbitals.occupations[1], [[1.0, 0.4, 0.0], [1.0, 0.2, 0.0]])
    np.testing.assert_allclose(orbitals.k_weights, [0.25, 0.75])
    assert orbitals.n_electrons == pytest.approx(ELECTRONS)
    assert info.kso_weights is None
    for row, orbital in enumerate(ROW_ORBITALS):
        assert info.row_index[orbital] == row


def test_eighth_column_is_read_as_orbital_weights(tmp_path: Path) -> None:
    info = parse_ks_orbital_info(orbital_file(tmp_path, with_weight_column(ORBITAL_ROWS)))
    assert info.kso_weights is not None
    for row, orbital in enumerate(ROW_ORBITALS, start=1):
        assert info.kso_weights[orbital] == pytest.approx(row / 100)
    assert info.orbitals.n_electrons == pytest.approx(ELECTRONS)


@pytest.mark.parametrize("eighth_column", [False, True])
def test_weights_are_written_in_the_row_order_of_the_file(
    tmp_path: Path, eighth_column: bool
) -> None:
    text = with_weight_column(ORBITAL_ROWS) if eighth_column else ORBITAL_ROWS
    info = parse_ks_orbital_info(orbital_file(tmp_path, text))
    spin, k, state = np.indices((2, 2, 3))
    weights = 100.0 * spin + 10.0 * k + state
    target = tmp_path / "ks_orbital_weights.in"
    write_kso_weights(target, info, weights)
    written = [float(line) for line in target.read_text().splitlines()]
    assert written == [0, 100, 1, 101, 2, 102, 10, 110, 11, 111, 12, 112]


def test_written_weights_come_back_through_the_eighth_column(tmp_path: Path) -> None:
    """What FHI-aims echoes: ks_orbital_info.out rows with the weights we wrote appended."""
    info = parse_ks_orbital_info(orbital_file(tmp_path))
    weights = np.random.default_rng(1).random((2, 2, 3))
    target = tmp_path / "ks_orbital_weights.in"
    write_kso_weights(target, info, weights)
    echoed = "".join(
        f"{row} {weight}\n"
        for row, weight in zip(ORBITAL_ROWS.splitlines(), target.read_text().split(), strict=True)
    )
    again = parse_ks_orbital_info(orbital_file(tmp_path, echoed, "echo.out"))
    np.testing.assert_array_equal(again.kso_weights, weights)


def test_wrong_weight_shape_is_refused(tmp_path: Path) -> None:
    info = parse_ks_orbital_info(orbital_file(tmp_path))
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(2, 2, 3\)"):
        write_kso_weights(tmp_path / "w.in", info, np.zeros((2, 3)))


def test_k_weights_are_normalised(tmp_path: Path) -> None:
    text = ORBITAL_ROWS.replace("0.25000000", "1.00000000").replace("0.75000000", "3.00000000")
    orbitals = parse_ks_orbital_info(orbital_file(tmp_path, text)).orbitals
    np.testing.assert_allclose(orbitals.k_weights, [0.25, 0.75])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[:-1], "1 orbitals of the 2 x 2 x 3 .* missing, e.g. spin 2, k-point 2"),
        (lambda rows: [*rows[:-1], rows[0]], "rows 1 and 12 both describe spin 1, k-point 1"),
        (lambda rows: [*rows[:-1], rows[-1] + "  0.5"], "line 12 has 8 columns, expected 7 or 8"),
        (lambda rows: [row.rsplit(None, 1)[0] for row in rows], "line 1 has 6 columns"),
        (lambda rows: [*rows[:-1], rows[-1].replace("1.40000000", "NaN")], "non-finite"),
        (lambda rows: [*rows[:-1], rows[-1].replace("1.40000000", "1.4x")], "not numbers"),
        (lambda rows: ["   "], "empty"),
    ],
)
def test_broken_orbital_files_are_named(tmp_path: Path, edit, message: str) -> None:
    path = orbital_file(tmp_path, "\n".join(edit(ORBITAL_ROWS.splitlines())) + "\n")
    with pytest.raises(AimsFileError, match=message) as caught:
        parse_ks_orbital_info(path)
    assert str(path) in str(caught.value)


def test_real_orbital_rows_agree_with_their_aims_out(shared_data: Path, tmp_path: Path) -> None:
    calc_info = json.loads(
        (shared_data / "rho_learn_water_homo/structures/103/calc_info.json").read_text()
    )
    rows = calc_info["ks_orbitals"]  # the 8-column rows of a real ks_orbital_info.out
    text = "".join(
        f"{r[0]:8d} {r[1]:8d} {r[2]:4d} {r[3]:6d} {r[4]:14.8f} {r[5]:14.8f} {r[6]:22.12f} "
        f"{r[7]:14.8f}\n"
        for r in rows
    )
    info = parse_ks_orbital_info(orbital_file(tmp_path, text))
    homo, lumo = homo_lumo(info.orbitals)
    # HOMO / LUMO as printed in the aims.out of that run (another file, 8 digits)
    assert homo == pytest.approx(calc_info["homo_eV"], abs=1e-7)
    assert lumo == pytest.approx(calc_info["lumo_eV"], abs=1e-7)
    listed = [state["eig_eV"] for state in calc_info["ks_states"].values()]
    np.testing.assert_allclose(info.orbitals.energies[0, 0], listed, atol=1e-5)
    assert info.orbitals.n_electrons == pytest.approx(10.0)
    assert info.kso_weights is not None and info.kso_weights[0, 0].tolist().index(1.0) == 4


def final_ks_file(tmp_path: Path, n_spin: int) -> Path:
    """Final_KS_eigenvalues.dat in FHI-aims' layout: 2 k-points x 3 states."""
    spins = "occupation number (up), eigenvalue (up), occupation number (dn), eigenvalue (dn)."
    header = [
        "#  aims_uuid : 00000000-0000-0000-0000-000000000000",
        "# Plain ASCII output of the Kohn-Sham eigenvalues on a k-space grid",
        "# Output is written in electron Volts. 1 Ha =     27.211384500000 eV.",
        "# Output of reciprocal lattice vectors in Angstrom^{-1} :",
        "#      -1.100768000000      1.100768000000      1.100768000000",
        "# For each k-point, we write: ",
        "#   - Column format for:",
        "#     Eigenvalue number, occupation number, eigenvalue "
        if n_spin == 1
        else f"#     Eigenvalue number, {spins}",
        " ",
    ]
    # (state, occ up, eV up, occ dn, eV dn) per k-point
    table = {
        (0.0, 0.0, 0.0): [
            (1, 1.0, -20.5, 1.0, -20.0), (2, 0.6, -3.25, 0.3, -3.0), (3, 0, 4.5, 0, 5.0)
        ],
        (0.5, 0.0, 0.25): [
            (1, 1.0, -20.25, 1.0, -19.75), (2, 0.2, -2.5, 0.1, -2.0), (3, 0, 6.0, 0, 6.5)
        ],
    }  # fmt: skip
    lines = header
    for number, (k_point, rows) in enumerate(table.items(), start=1):
        lines.append(f"k-point number:  {number:8d}")
        lines.append(
            "k-point in recip. lattice units: " + "".join(f"  {x:18.12f}" for x in k_point)
        )
        lines.append("k-point in cartesian units (A^{-1}):   1.0  2.0  3.0")
        for state, occ_up, up, occ_dn, dn in rows:
            if n_spin == 1:
                lines.append(f"{state:8d}  {2 * occ_up:15.12f}  {up:22.12f}")
            else:
                lines.append(
                    f"{state:8d}  {occ_up:15.12f}  {up:22.12f}  {occ_dn:15.12f}  {dn:22.12f}"
                )
        lines.append(" ")
    path = tmp_path / "Final_KS_eigenvalues.dat"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_final_ks_eigenvalues_two_spins(tmp_path: Path) -> None:
    result = parse_final_ks_eigenvalues(final_ks_file(tmp_path, n_spin=2))
    orbitals = result.orbitals
    assert orbitals.energies.shape == (2, 2, 3)
    np.testing.assert_allclose(orbitals.energies[1], [[-20.0, -3.0, 5.0], [-19.75, -2.0, 6.5]])
    np.testing.assert_allclose(orbitals.occupations[0], [[1.0, 0.6, 0.0], [1.0, 0.2, 0.0]])
    np.testing.assert_allclose(orbitals.k_weights, [0.5, 0.5])
    np.testing.assert_allclose(result.k_points, [[0, 0, 0], [0.5, 0, 0.25]])
    # up (1.6 + 1.2) / 2 + down (1.3 + 1.1) / 2
    assert orbitals.n_electrons == pytest.approx(2.6)


def test_final_ks_eigenvalues_one_spin_and_summary(tmp_path: Path) -> None:
    path = final_ks_file(tmp_path, n_spin=1)
    orbitals = parse_final_ks_eigenvalues(path).orbitals
    np.testing.assert_allclose(orbitals.energies[0], [[-20.5, -3.25, 4.5], [-20.25, -2.5, 6.0]])
    np.testing.assert_allclose(orbitals.occupations[0], [[2.0, 1.2, 0.0], [2.0, 0.4, 0.0]])
    summary = summary_json(path)
    # occupied = at least half filled (>= 1): state 2 of k-point 1 (1.2) is, of k-point 2 not
    assert summary == {
        "n_spin": 1,
        "n_kpoints": 2,
        "n_states": 3,
        "n_electrons": pytest.approx(2.8),
        "homo_ev": -3.25,
        "lumo_ev": -2.5,
        "has_kso_weights": False,
    }
    json.dumps(summary)


def test_final_ks_eigenvalues_broken(tmp_path: Path) -> None:
    path = final_ks_file(tmp_path, n_spin=2)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("       3")) + "\n")
    assert parse_final_ks_eigenvalues(path).orbitals.energies.shape == (2, 2, 2)
    path.write_text("\n".join(lines[:-3]) + "\n")  # the last block loses states 2 and 3
    with pytest.raises(AimsFileError, match="k-point blocks differ"):
        parse_final_ks_eigenvalues(path)
    path.write_text("# only a header\n")
    with pytest.raises(AimsFileError, match="no 'k-point number:' block"):
        parse_final_ks_eigenvalues(path)


def test_summary_of_orbital_info(tmp_path: Path) -> None:
    summary = summary_json(orbital_file(tmp_path, with_weight_column(ORBITAL_ROWS)))
    # two spins: occupied means occupation >= 0.5; spin-down state 2 (0.4, 0.2) is not
    assert summary == {
        "n_spin": 2,
        "n_kpoints": 2,
        "n_states": 3,
        "n_electrons": pytest.approx(ELECTRONS),
        "homo_ev": -5.1,
        "lumo_ev": -4.9,
        "has_kso_weights": True,
    }


PERIODIC_LISTING = """\

  K-point:       1 at    0.000000    0.000000    0.000000 (in units of recip. lattice)

  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]
      1       2.00000          -0.500000          -13.60569
      2       0.00000           0.100000            2.72114


  K-point:       2 at    0.500000    0.000000    0.000000 (in units of recip. lattice)

  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]
      1       2.00000          -0.400000          -10.88455
      2       0.00000           0.200000            5.44228

  What follows are estimated values for band gap, HOMO, LUMO, etc.
"""


def test_listing_with_k_point_blocks() -> None:
    listing = parse_eigenvalue_listing(PERIODIC_LISTING.splitlines())
    assert listing is not None and listing.k_indices == (1, 2)
    np.testing.assert_allclose(listing.energies, [[[-13.60569, 2.72114], [-10.88455, 5.44228]]])
    np.testing.assert_allclose(listing.occupations, [[[2.0, 0.0], [2.0, 0.0]]])


@pytest.mark.parametrize(
    "broken",
    [
        PERIODIC_LISTING.split("  What follows")[0],  # the text ends inside the listing
        PERIODIC_LISTING.replace(
            "      2       0.00000           0.200000            5.44228", "      2       0.00"
        ),
        PERIODIC_LISTING.replace(
            "      2       0.00000           0.100000            2.72114\n", ""
        ),
        PERIODIC_LISTING.replace("K-point:       2", "K-point:       1"),
        PERIODIC_LISTING.replace("           0.100000            2.72114", "  ****************"),
    ],
    ids=["ends-inside", "row-cut-short", "state-missing", "block-twice", "overflow"],
)
def test_incomplete_listings_are_not_used(broken: str) -> None:
    assert parse_eigenvalue_listing(broken.splitlines()) is None
