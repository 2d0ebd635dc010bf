"""The AO-order mapping of QC programs onto PySCF: hand-made labels and the real outputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pyscf import gto
from rhocore_pyscf.cclib.aos import (
    AOOrderError,
    cartesian_exponents,
    is_cartesian,
    program_aos,
    pyscf_ao_map,
    pyscf_spherical_signs,
)


def _shell(letter: str, exponent: float) -> tuple[str, list]:
    return (letter, [(exponent, 1.0)])


def _mol(gbasis, cart: bool) -> gto.Mole:
    """One carbon atom carrying ``gbasis`` (one primitive per shell)."""
    basis = [[L[letter], [e, c]] for letter, prims in gbasis[0] for e, c in prims]
    return gto.M(atom="C 0 0 0", basis={"C": basis}, cart=cart, spin=None, verbose=0)


L = {"S": 0, "P": 1, "D": 2, "F": 3, "G": 4}


def test_gaussian_cartesian_d_goes_to_pyscf_order_with_unit_normalised_functions():
    gbasis = [[_shell("S", 1.0), _shell("D", 0.8)]]
    names = ["C1_1S", "C1_2XX", "C1_2YY", "C1_2ZZ", "C1_2XY", "C1_2XZ", "C1_2YZ"]
    aos = program_aos("Gaussian", gbasis, names, 7)
    assert is_cartesian(aos)
    mol = _mol(gbasis, cart=True)
    ao_map = pyscf_ao_map(aos, mol, gbasis, "unit")
    # PySCF: s, then d as xx, xy, xz, yy, yz, zz
    assert ao_map.index.tolist() == [0, 1, 4, 6, 2, 3, 5]
    # <x^2|x^2> = 3 <xy|xy> for one Gaussian: unit-normalising xx needs 1/sqrt(3) of xy's factor
    assert ao_map.factor[1] / ao_map.factor[4] == pytest.approx(1 / np.sqrt(3), rel=1e-12)
    program_overlap = ao_map.program_matrix(mol.intor("int1e_ovlp"))
    assert np.allclose(np.diag(program_overlap), 1.0)


def test_interleaved_shells_of_a_split_valence_atom_go_to_pyscf_shells_sorted_by_l():
    exponents = [("S", 9.0), ("S", 2.0), ("P", 2.0), ("S", 0.4), ("P", 0.4)]
    gbasis = [[_shell(letter, exponent) for letter, exponent in exponents]]
    names = ["C1_1S", "C1_2S", "C1_2PX", "C1_2PY", "C1_2PZ", "C1_3S", "C1_3PX", "C1_3PY", "C1_3PZ"]
    aos = program_aos("Gaussian", gbasis, names, 9)
    ao_map = pyscf_ao_map(aos, _mol(gbasis, cart=False), gbasis)
    assert ao_map.index.tolist() == [0, 1, 3, 4, 5, 2, 6, 7, 8]
    assert np.all(ao_map.factor == 1.0)


def test_orca_lists_p_as_z_x_y_and_flips_the_sign_of_f_plus_minus_3():
    gbasis = [[_shell("S", 1.0), _shell("P", 1.0), _shell("F", 0.7)]]
    names = ["C1_1S", "C1_1PZ", "C1_1PX", "C1_1PY"]
    names += [f"C1_1F{m}" for m in ("0", "+1", "-1", "+2", "-2", "+3", "-3")]
    aos = program_aos("ORCA", gbasis, names, 11)
    ao_map = pyscf_ao_map(aos, _mol(gbasis, cart=False), gbasis)
    # PySCF: s; p as x, y, z; f as m = -3..3
    assert ao_map.index.tolist() == [0, 3, 1, 2] + [4 + 3 + m for m in (0, 1, -1, 2, -2, 3, -3)]
    pyscf_signs = pyscf_spherical_signs(3)
    orca_signs = {0: 1, 1: 1, -1: 1, 2: 1, -2: 1, 3: -1, -3: -1}
    expected = [pyscf_signs[3 + m] * orca_signs[m] for m in (0, 1, -1, 2, -2, 3, -3)]
    assert ao_map.factor[4:].tolist() == expected


def test_psi4_spherical_d_runs_0_plus1_minus1_plus2_minus2():
    gbasis = [[_shell("D", 1.0)]]
    aos = program_aos("Psi4", gbasis, None, 5)
    assert not is_cartesian(aos)
    ao_map = pyscf_ao_map(aos, _mol(gbasis, cart=False), gbasis)
    assert ao_map.index.tolist() == [2, 3, 1, 4, 0]


def test_psi4_cartesian_d_shares_the_xx_normalisation():
    gbasis = [[_shell("D", 1.0)]]
    aos = program_aos("Psi4", gbasis, None, 6)
    assert is_cartesian(aos)
    ao_map = pyscf_ao_map(aos, _mol(gbasis, cart=True), gbasis, "axis")
    assert ao_map.index.tolist() == list(range(6))
    assert np.allclose(ao_map.factor, ao_map.factor[0])


def test_pyscf_signs_are_those_of_the_leading_monomial_of_its_functions():
    """Fit PySCF's spherical GTOs with Cartesian monomials and read the leading term's sign."""
    rng = np.random.default_rng(3)
    points = rng.normal(size=(400, 3))
    for l in range(2, 5):
        probe = gto.M(atom="He 0 0 0", basis={"He": [[l, [0.5, 1.0]]]}, unit="Bohr", verbose=0)
        values = probe.eval_gto("GTOval_sph", points) / np.exp(-0.5 * np.sum(points**2, 1))[:, None]
        monomials = [c for c in itertools.product(range(l + 1), repeat=3) if sum(c) == l]
        design = np.stack([np.prod(points ** np.array(c), axis=1) for c in monomials], axis=1)
        coefficients = np.linalg.lstsq(design, values, rcond=None)[0]
        for column, m in enumerate(range(-l, l + 1)):
            leading = (m, 0, l - m) if m > 0 else ((-m - 1, 1, l + m) if m < 0 else (0, 0, l))
            sign = np.sign(coefficients[monomials.index(leading), column])
            assert sign == pyscf_spherical_signs(l)[column], (l, m)


def test_mixed_cartesian_and_spherical_shells_are_refused():
    gbasis = [[_shell("D", 1.0), _shell("F", 1.0)]]
    names = ["C1_XX", "C1_YY", "C1_ZZ", "C1_XY", "C1_XZ", "C1_YZ"]
    names += [f"C1_F{m:+d}" if m else "C1_F 0" for m in (0, 1, -1, 2, -2, 3, -3)]
    aos = program_aos("Gaussian", gbasis, names, 13)
    with pytest.raises(AOOrderError, match="mixes Cartesian and spherical"):
        is_cartesian(aos)


def test_labels_that_do_not_follow_the_basis_shells_are_refused():
    gbasis = [[_shell("S", 1.0), _shell("P", 1.0)]]
    with pytest.raises(AOOrderError, match="does not list its AOs shell by shell"):
        program_aos("Gaussian", gbasis, ["C1_2PX", "C1_1S", "C1_2PY", "C1_2PZ"], 4)
    with pytest.raises(AOOrderError, match="'C1_2QQ' is not understood|'2QQ' is not understood"):
        program_aos("Gaussian", gbasis, ["C1_1S", "C1_2QQ", "C1_2PY", "C1_2PZ"], 4)
    with pytest.raises(AOOrderError, match="does not know the AO order of ADF.*Gaussian"):
        program_aos("ADF", gbasis, ["C1_1S"], 4)


def test_cartesian_components_follow_pyscf_labels():
    mol = gto.M(atom="C 0 0 0", basis={"C": [[3, [1.0, 1.0]]]}, cart=True, verbose=0)
    labels = [label.split()[-1][2:] for label in mol.cart_labels()]
    assert labels == ["".join("x" * a + "y" * b + "z" * c) for a, b, c in cartesian_exponents(3)]


#: max |C S C^T - I| without the AO reordering, measured in shared/data/cclib_outputs/README.md.
NEEDS_REORDERING = {
    "gaussian03_CO.log": 59,
    "psi4-1.7_dvb_sp_rhf.out": 3.1,
    "orca5.0_dvb_sp.out": 3.1,
    "refused/gaussian16_Mo4OCl4-sp.log": 6.9,
}


def _output_files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".out", ".log"))


def test_every_real_output_maps_to_orthonormal_orbitals_and_the_printed_overlap(cclib_outputs):
    """Includes the refused files: their printed MOs are orthonormal too (AO order of Q-Chem
    and of spherical Gaussian d); only the rows of unprinted MOs are left out."""
    from cclib.bridge.cclib2pyscf import makepyscf
    from rhocore_pyscf.cclib.aos import CONVENTIONS
    from rhocore_pyscf.cclib.output import orthonormality_error, parse

    files = _output_files(cclib_outputs)
    assert len(files) == 8
    for path in files:
        data = parse(path)
        package = data.metadata["package"]
        aos = program_aos(package, data.gbasis, getattr(data, "aonames", None), data.nbasis)
        mol = makepyscf(data, charge=data.charge, mult=data.mult)
        mol.cart, mol.verbose = is_cartesian(aos), 0
        mol.build()
        ao_map = pyscf_ao_map(aos, mol, data.gbasis, CONVENTIONS[package].cartesian_norm)
        overlap = mol.intor("int1e_ovlp")
        rows = [c[np.isfinite(c).all(axis=1)] for c in data.mocoeffs]
        mapped = [ao_map.mo_coefficients(c, mol.nao)[None] for c in rows]
        assert max(orthonormality_error(c, overlap) for c in mapped) <= 1e-4, path.name
        if hasattr(data, "aooverlaps"):
            assert np.max(np.abs(ao_map.program_matrix(overlap) - data.aooverlaps)) <= 1e-5
        name = str(path.relative_to(cclib_outputs))
        if name in NEEDS_REORDERING:
            scale = 1 / np.sqrt(np.diag(overlap))
            naive = [(c * scale[None, :]).T[None] for c in rows]
            error = max(orthonormality_error(c, overlap) for c in naive)
            assert error == pytest.approx(NEEDS_REORDERING[name], rel=0.1), name
