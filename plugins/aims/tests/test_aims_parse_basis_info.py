"""Parsers of FHI-aims' RI basis descriptions: basis_info.out and product_basis_idxs.out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rhocore_aims.convention import from_function_table
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.basis_info import parse_basis_info, parse_product_basis_idxs

from rhocore.qc.basis import BasisLayout

# Water: O (the example block of SALTED's basis_info.out parser), then two H atoms.
WATER_BASIS_INFO = """\
 atom           1
 For L =            0 there are           9 radial functions
 For L =            1 there are          10 radial functions
 For L =            2 there are           9 radial functions
 For L =            3 there are           8 radial functions
 For L =            4 there are           6 radial functions
 For L =            5 there are           4 radial functions
 For atom            1 max L =            5
 atom           2
 For L =            0 there are           8 radial functions
 For L =            1 there are           6 radial functions
 For L =            2 there are           6 radial functions
 For atom            2 max L =            2
 atom           3
 For L =            0 there are           8 radial functions
 For L =            1 there are           6 radial functions
 For L =            2 there are           6 radial functions
 For atom            3 max L =            2
"""
WATER = [8, 1, 1]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_basis_info_layout(tmp_path: Path) -> None:
    layout = parse_basis_info(write(tmp_path, "basis_info.out", WATER_BASIS_INFO), WATER)
    assert layout == BasisLayout({8: (9, 10, 9, 8, 6, 4), 1: (8, 6, 6)})
    assert layout.size(WATER) == 9 + 30 + 45 + 56 + 54 + 44 + 2 * (8 + 18 + 30)


def test_basis_info_needs_one_block_per_atom(tmp_path: Path) -> None:
    path = write(tmp_path, "basis_info.out", WATER_BASIS_INFO)
    with pytest.raises(AimsFileError, match=r"basis_info\.out: describes 3 atoms.* has 4"):
        parse_basis_info(path, [8, 1, 1, 1])


def test_basis_info_one_basis_per_element(tmp_path: Path) -> None:
    text = WATER_BASIS_INFO.replace(
        " atom           3\n For L =            0 there are           8",
        " atom           3\n For L =            0 there are           7",
    )
    with pytest.raises(AimsFileError, match=r"atom 3 \(Z=1\) has radial counts"):
        parse_basis_info(write(tmp_path, "basis_info.out", text), WATER)


def test_basis_info_truncated(tmp_path: Path) -> None:
    text = "".join(WATER_BASIS_INFO.splitlines(keepends=True)[:-2])
    with pytest.raises(AimsFileError, match=r"truncated: the block of atom 3 never ends"):
        parse_basis_info(write(tmp_path, "basis_info.out", text), WATER)


def test_basis_info_inconsistent_max_l(tmp_path: Path) -> None:
    text = WATER_BASIS_INFO.replace("max L =            5", "max L =            6")
    with pytest.raises(AimsFileError, match=r"the block lists L = 0..5"):
        parse_basis_info(write(tmp_path, "basis_info.out", text), WATER)


def test_basis_info_unknown_line(tmp_path: Path) -> None:
    text = WATER_BASIS_INFO.replace(" atom           2", " atom two")
    with pytest.raises(AimsFileError, match=r"line 9: expected 'atom <index>', found 'atom two'"):
        parse_basis_info(write(tmp_path, "basis_info.out", text), WATER)


def test_basis_info_missing(tmp_path: Path) -> None:
    with pytest.raises(AimsFileError, match=r"basis_info\.out: missing"):
        parse_basis_info(tmp_path / "basis_info.out", WATER)


def test_product_basis_idxs_counts_n_per_atom_and_l(tmp_path: Path) -> None:
    # Rows in (atom, l, radial, m) order; the first column is the line in the vector files.
    rows = """\
      3      1      0      7      0
      1      1      0     12      0
      5      1      1      9     -1
      2      1      1      9      0
      4      1      1      9      1
      6      2      0      7      0
    """
    table = parse_product_basis_idxs(write(tmp_path, "product_basis_idxs.out", rows))
    expected = [(0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 0), (0, 1, 0, 1), (0, 1, 0, -1), (1, 0, 0, 0)]
    np.testing.assert_array_equal(table, expected)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("1 1 0 1 0\n1 1 0 2 0\n", r"not a permutation of 1\.\.2"),
        ("1 1 0 1 0\n2 1 0 2\n", r"not a table of integers"),
        ("1 1 0 1 0.5\n", r"not a table of integers"),
        ("1 1 1 1 2\n", r"\|m\| > l"),
        ("1 1 0 1\n", r"rows of 5 integers"),
        ("\n", r"empty"),
    ],
)
def test_product_basis_idxs_errors(tmp_path: Path, rows: str, message: str) -> None:
    path = write(tmp_path, "product_basis_idxs.out", rows)
    with pytest.raises(AimsFileError, match=r"product_basis_idxs\.out: .*" + message):
        parse_product_basis_idxs(path)


def test_real_product_basis_idxs(shared_data: Path, tmp_path: Path) -> None:
    """The index table of an FHI-aims 230905 run (rho_learn's water HOMO data)."""
    info = json.loads(
        (shared_data / "rho_learn_water_homo" / "structures" / "89" / "calc_info.json").read_text()
    )
    idxs = np.array(info["basis_set"]["idxs"])
    path = tmp_path / "product_basis_idxs.out"
    np.savetxt(path, idxs, fmt="%8d")
    numbers = np.array([8, 1, 1])
    conversion = from_function_table(parse_product_basis_idxs(path), numbers)
    nmax = info["basis_set"]["def"]["nmax"]
    expected = {
        z: tuple(nmax[f"{symbol},{l}"] for l in range(info["basis_set"]["def"]["lmax"][symbol] + 1))
        for symbol, z in (("O", 8), ("H", 1))
    }
    assert conversion.layout == BasisLayout(expected)
    assert len(conversion.order) == 517
    # rho_learn put the rows, already in (atom, l, radial, m) order, first: canonical
    # function i is line idxs[i, 0] of the vector files.
    np.testing.assert_array_equal(conversion.order, idxs[:, 0] - 1)
