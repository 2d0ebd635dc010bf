"""aims.out: the real FHI-aims outputs of the shared data, and edge cases derived from them.

Expected values were read from the files with grep (version header, ``Number of spin
channels``, ``Number of k-points``, ``Unit cell`` vs ``No unit cell requested``, the final
``Total energy of the DFT / Hartree-Fock s.c.f. calculation`` line, the last ``Begin
self-consistency iteration #`` / ``SCF N :`` line of the last SCF cycle, ...), never from
the parser. Edge cases edit copies of real files in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rhocore_aims.errors import AimsFileError
from rhocore_aims.parsers.aims_out import check_finished, parse_aims_out, summary_json

# file: (version, commit, n_spin, n_kpoints, periodic, total energy eV, n_atoms, electrons,
#        iterations of the last SCF cycle)
REAL_FILES = {
    "CeO2_dftu/aims_CC.out": ("210226", None, 1, 1, True, -249520.310014138, 3, 74.0, 176),
    "Fe_scf_spinpol/out.out": ("151211", "d01ffe6", 2, 2052, True, -34705.828567230, 1, 26.0, 15),
    "HO_md/H2O_periodic_MD.out": ("151211", "d01ffe6", 1, 8, True, -2078.439590025, 3, 10.0, 11),
    "He_gw/He_scGW_ontop_PBE.out": ("090214", "8e4ee64", 1, None, False, -78.720713640, 1, 2.0, 1),
    "Si_geomopt/out.out": ("151211", "d01ffe6", 1, 260, True, -15696.125588832, 2, 28.0, 7),
}

# file: (Fermi level, HOMO, LUMO) printed after the last SCF iteration began (eV)
LAST_LEVELS = {
    "CeO2_dftu/aims_CC.out": (None, -9.66135994, -6.38072338),
    "Fe_scf_spinpol/out.out": (-9.3842209, -9.39000219, -9.37720504),
    "HO_md/H2O_periodic_MD.out": (None, -7.58324950, -3.07365612),
    "He_gw/He_scGW_ontop_PBE.out": (-9.2094660, -15.76319178, 11.60077636),
    "Si_geomopt/out.out": (-5.8206218, -5.88625358, -5.31666896),
}

WARNINGS = {
    "CeO2_dftu/aims_CC.out": [
        "Warning: DFT+U requires using density matrix based charge density update.",
        "Warning - Since '+U' treatment was requested,",
        "WARNING: DFT+U ENERGY (E_U) IS NEGATIVE!!!",
    ],
    "Fe_scf_spinpol/out.out": [],
    "HO_md/H2O_periodic_MD.out": [],
    "He_gw/He_scGW_ontop_PBE.out": [
        "WARNING: If you use this flag, you should really know what you are doing."
    ],
    "Si_geomopt/out.out": [
        "Warning: Stress tensor is anisotropic. Be aware that pressure is an isotropic quantity."
    ],
}

HE = "He_gw/He_scGW_ontop_PBE.out"
FE = "Fe_scf_spinpol/out.out"

# FHI-aims' own end of an SCF cycle that hit its iteration limit (scf_solver).
NOT_CONVERGED_BLOCK = """\
 ***********************************************************
 *
 * WARNING! SELF-CONSISTENCY CYCLE DID NOT CONVERGE
 * USING YOUR PRESELECTED ACCURACY CRITERIA.
 * DO NOT RELY ON ANY FINAL DATA WITHOUT FURTHER CHECKS.
 *
 ***********************************************************"""


def real(shared_data: Path, name: str) -> Path:
    return shared_data / "aims_outputs" / name


def edited_copy(source: Path, target: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of ``source`` with each (old, new) replaced once; old must be there."""
    text = source.read_text()
    for old, new in replacements:
        assert text.count(old) >= 1, old
        text = text.replace(old, new)
    target.write_text(text)
    return target


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_files_parse_with_the_values_in_them(shared_data: Path, name: str) -> None:
    version, commit, n_spin, n_k, periodic, energy, n_atoms, electrons, cycles = REAL_FILES[name]
    result = parse_aims_out(real(shared_data, name))
    assert (result.version, result.commit) == (version, commit)
    assert result.converged and result.finished and result.completed and not result.scf_failed
    assert (result.n_spin, result.n_kpoints, result.periodic) == (n_spin, n_k, periodic)
    assert result.total_energy_ev == pytest.approx(energy, abs=1e-9)
    assert (result.n_atoms, result.n_electrons, result.n_scf_cycles) == (n_atoms, electrons, cycles)
    assert (result.fermi_level_ev, result.homo_ev, result.lumo_ev) == pytest.approx(
        LAST_LEVELS[name]
    )
    assert result.warnings == WARNINGS[name]
    assert result.errors == []
    check_finished(result, real(shared_data, name))


def test_cluster_gives_the_final_listing_not_the_initial_one(shared_data: Path) -> None:
    # He: the initial listing has -15.76328 eV, the one after convergence -15.76319 eV.
    orbitals = parse_aims_out(real(shared_data, HE)).eigenvalues
    assert orbitals is not None
    np.testing.assert_allclose(
        orbitals.energies, [[[-15.76319, 11.60078, 23.55916, 23.55916, 23.55916]]]
    )
    np.testing.assert_allclose(orbitals.occupations, [[[2.0, 0, 0, 0, 0]]])
    assert orbitals.k_weights.tolist() == [1.0]
    assert orbitals.n_electrons == pytest.approx(2.0)
    assert orbitals.fermi_level == pytest.approx(-9.2094660)


@pytest.mark.parametrize(
    "name",
    [
        "CeO2_dftu/aims_CC.out",  # listing only before the SCF iterations (MD_light)
        "Fe_scf_spinpol/out.out",  # 4 of 2052 k-points printed
        "HO_md/H2O_periodic_MD.out",  # listing only in the first of five SCF cycles
        "Si_geomopt/out.out",  # k-point 1 of 260 printed
    ],
)
def test_partial_or_stale_listings_give_no_eigenvalues(shared_data: Path, name: str) -> None:
    assert parse_aims_out(real(shared_data, name)).eigenvalues is None


def test_json_summary_is_plain_json(shared_data: Path) -> None:
    summary = summary_json(real(shared_data, HE))
    decoded = json.loads(json.dumps(summary))
    assert decoded == summary
    required = {"version", "converged", "total_energy_ev", "fermi_level_ev", "n_atoms"}
    required |= {"n_spin", "n_kpoints", "periodic", "warnings", "errors"}
    assert required <= set(summary)
    assert summary["version"] == "090214" and summary["n_kpoints"] is None
    assert summary["eigenvalues"]["occupations"] == [[[2.0, 0.0, 0.0, 0.0, 0.0]]]
    assert type(summary["total_energy_ev"]) is float and type(summary["n_spin"]) is int


@pytest.mark.parametrize("name", [HE, "Si_geomopt/out.out"])
def test_file_cut_in_half_did_not_finish(shared_data: Path, tmp_path: Path, name: str) -> None:
    lines = real(shared_data, name).read_text().splitlines()
    cut = tmp_path / "aims.out"
    cut.write_text("\n".join(lines[: len(lines) // 2]))
    last_line = next(line.strip() for line in reversed(lines[: len(lines) // 2]) if line.strip())
    result = parse_aims_out(cut)
    assert not result.finished and not result.completed and not result.converged
    assert result.version == REAL_FILES[name][0]
    with pytest.raises(AimsFileError, match="did not finish"):
        check_finished(result, cut, require_converged=False)
    with pytest.raises(AimsFileError, match="did not finish") as caught:
        check_finished(result, cut)
    message = str(caught.value)
    assert str(cut) in message and f"last line '{last_line}'" in message and "\n" not in message


def test_file_cut_inside_the_final_listing_gives_no_eigenvalues(
    shared_data: Path, tmp_path: Path
) -> None:
    text = real(shared_data, HE).read_text()
    # the final listing of He is the third; cut after its second state row
    start = text.index("  State    Occupation", text.index("Self-consistency convergence accuracy"))
    cut_at = text.index("\n", text.index("11.60078", start))
    cut = tmp_path / "aims.out"
    cut.write_text(text[:cut_at])
    result = parse_aims_out(cut)
    assert result.eigenvalues is None and not result.finished


def test_scf_that_hit_its_limit(shared_data: Path, tmp_path: Path) -> None:
    # FHI-aims prints its warning block instead of the converged line and, because the
    # SCF did not converge, no 'Have a nice day' (it still says 'Leaving FHI-aims').
    path = edited_copy(
        real(shared_data, HE),
        tmp_path / "aims.out",
        ("  Self-consistency cycle converged.", NOT_CONVERGED_BLOCK),
        ("          Have a nice day.\n", ""),
    )
    result = parse_aims_out(path)
    assert result.scf_failed and not result.converged and not result.finished
    assert result.completed and result.n_scf_cycles == 1
    with pytest.raises(AimsFileError, match=r"SCF did not converge after 1 cycles$") as caught:
        check_finished(result, path)
    assert str(path) in str(caught.value)
    check_finished(result, path, require_converged=False)


def test_unconverged_but_finished_run_passes_only_when_allowed(
    shared_data: Path, tmp_path: Path
) -> None:
    path = edited_copy(
        real(shared_data, HE),
        tmp_path / "aims.out",
        ("  Self-consistency cycle converged.", "  SCF cycle not converged."),
    )
    result = parse_aims_out(path)
    assert result.finished and not result.converged
    with pytest.raises(AimsFileError, match="SCF did not converge after 1 cycles"):
        check_finished(result, path)
    check_finished(result, path, require_converged=False)


def test_fatal_error_lines_are_collected_and_named(shared_data: Path, tmp_path: Path) -> None:
    lines = real(shared_data, HE).read_text().splitlines()
    stop = " *** Proc    0 in scf_solver: Error in allocation: KS_eigenvector"
    path = tmp_path / "aims.out"
    path.write_text("\n".join([*lines[:600], "  * Error: density is NaN.", stop]) + "\n")
    result = parse_aims_out(path)
    assert result.errors == ["* Error: density is NaN.", stop.strip()]
    with pytest.raises(AimsFileError, match=r"FHI-aims error: '\*\*\* Proc    0 in scf_solver"):
        check_finished(result, path)


def test_spin_polarised_cluster_listing(shared_data: Path, tmp_path: Path) -> None:
    final_listing = """\
  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]
      1       2.00000          -0.579287          -15.76319
      2       0.00000           0.426321           11.60078
      3       0.00000           0.865783           23.55916
      4       0.00000           0.865783           23.55916
      5       0.00000           0.865783           23.55916
"""
    spin_listing = """\
  Spin-up eigenvalues:

  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]
      1       1.00000          -0.600000          -16.32683
      2       0.00000           0.400000           10.88455
      3       0.00000           0.800000           21.76911
      4       0.00000           0.800000           21.76911
      5       0.00000           0.800000           21.76911

  Spin-down eigenvalues:

  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]
      1       0.75000          -0.550000          -14.96626
      2       0.25000           0.450000           12.24512
      3       0.00000           0.900000           24.49025
      4       0.00000           0.900000           24.49025
      5       0.00000           0.900000           24.49025
"""
    text = real(shared_data, HE).read_text()
    last = text.rindex(final_listing)
    text = text[:last] + spin_listing + text[last + len(final_listing) :]
    path = tmp_path / "aims.out"
    path.write_text(
        text.replace(
            "Number of spin channels           :        1",
            "Number of spin channels           :        2",
        )
    )
    orbitals = parse_aims_out(path).eigenvalues
    assert orbitals is not None and orbitals.energies.shape == (2, 1, 5)
    np.testing.assert_allclose(
        orbitals.energies[:, 0, :2], [[-16.32683, 10.88455], [-14.96626, 12.24512]]
    )
    np.testing.assert_allclose(orbitals.occupations[1, 0], [0.75, 0.25, 0, 0, 0])
    assert orbitals.n_electrons == pytest.approx(2.0)


def test_listing_with_every_k_point_of_an_unreduced_grid(shared_data: Path, tmp_path: Path) -> None:
    # Fe prints k-points 1-4 of both spins; claim a 4-point grid that symmetry kept whole.
    path = edited_copy(
        real(shared_data, FE),
        tmp_path / "aims.out",
        (
            "| k-points reduced from:     4096 to     2052",
            "| k-points reduced from:        4 to        4",
        ),
        (
            "| Number of k-points                             :      2052",
            "| Number of k-points                             :         4",
        ),
    )
    orbitals = parse_aims_out(path).eigenvalues
    assert orbitals is not None and orbitals.energies.shape == (2, 4, 19)
    assert orbitals.k_weights.tolist() == [0.25] * 4
    # values read in the last listing of the file
    assert (orbitals.occupations[1, 2, 12], orbitals.energies[1, 2, 12]) == (0.99974, -9.62981)
    assert (orbitals.occupations[1, 3, 12], orbitals.energies[1, 3, 12]) == (0.00140, -9.17290)
    assert orbitals.energies[0, 3, 18] == 18.00527


def test_listing_of_a_reduced_grid_has_no_known_weights(shared_data: Path, tmp_path: Path) -> None:
    path = edited_copy(
        real(shared_data, FE),
        tmp_path / "aims.out",
        (
            "| k-points reduced from:     4096 to     2052",
            "| k-points reduced from:        8 to        4",
        ),
        (
            "| Number of k-points                             :      2052",
            "| Number of k-points                             :         4",
        ),
    )
    result = parse_aims_out(path)
    assert result.n_kpoints == 4 and result.eigenvalues is None


def test_missing_empty_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AimsFileError, match=r"aims\.out: missing"):
        parse_aims_out(tmp_path / "aims.out")
    empty = tmp_path / "empty.out"
    empty.write_text("\n  \n")
    with pytest.raises(AimsFileError, match=r"empty\.out: empty"):
        parse_aims_out(empty)
    foreign = tmp_path / "notes.out"
    foreign.write_text("Version 2.1 of my notes\nHave a nice day.\nTotal energy: 3 eV\n")
    with pytest.raises(AimsFileError, match=r"notes\.out: not an FHI-aims output"):
        parse_aims_out(foreign)
