"""A stand-in for the FHI-aims binary, for tests: real physics from PySCF, FHI-aims' files.

Run in a folder holding control.in and geometry.in, like FHI-aims. It reads the keywords
rhocore writes, runs Kohn-Sham DFT with PySCF (def2-SVP orbitals, def2-universal-JFIT
auxiliary functions standing in for FHI-aims' product basis) and writes the files the
real code writes for the keyword generation it is asked to imitate, in FHI-aims' function
order and real-harmonic phases, so that the whole rhocore run path (ASE profile ->
parsers -> dataset -> training) is exercised exactly as with FHI-aims.

Environment:
  RHOCORE_STANDIN_VERSION  version to print (default 240925; 230905 imitates a legacy build)
  RHOCORE_STANDIN_FAIL     crash | noconverge | truncate: imitate a failed run
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ase.io
import numpy as np
from rhocore_pyscf import rifit
from rhocore_pyscf.convention import aux_ao_map
from rhocore_pyscf.molecular import grids, scf
from rhocore_pyscf.molecular.molecules import build_auxmol, build_mol
from rhocore_pyscf.options import PySCFOptions

from rhocore.qc.basis import BasisLayout
from rhocore.qc.units import BOHR_IN_ANGSTROM

HARTREE_EV = 27.2113845
RESTART_FILE = "D_spin_01_kpt_000001.csc"


def read_control(path: Path) -> dict[str, str]:
    """control.in keywords before the species blocks, {keyword: rest of the line}."""
    keywords: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "species":
            break
        keywords[words[0]] = " ".join(words[1:])
    return keywords


def is_true(keywords: dict[str, str], name: str) -> bool:
    return keywords.get(name, "").strip(".").lower() == "true"


def pyscf_options(keywords: dict[str, str]) -> PySCFOptions:
    spin_polarised = keywords.get("spin", "none") == "collinear"
    return PySCFOptions(
        xc=keywords.get("xc", "pbe"),
        basis="def2-svp",
        aux_basis="weigend",
        metric="overlap",
        charge=int(float(keywords.get("charge", "0"))),
        unrestricted=spin_polarised or None,
    )


def legacy_phase(m: int) -> int:
    """Legacy RI files carry the Condon-Shortley phase on odd m > 0; mainline files none."""
    return -1 if m > 0 and m % 2 else 1


def header(version: str, atoms: ase.Atoms, n_spin: int) -> list[str]:
    return [
        "------------------------------------------------------------",
        "          Invoking FHI-aims ...",
        "",
        f"  FHI-aims version      : {version}",
        "  Commit number         : standin",
        "",
        "  Basic array size parameters:",
        f"  | Number of species                 : {len(set(atoms.numbers)):8d}",
        f"  | Number of atoms                   : {len(atoms):8d}",
        f"  | Number of spin channels           : {n_spin:8d}",
        "",
        "  | No unit cell requested.",
        "",
    ]


def eigenvalue_block(energies_ev: np.ndarray, occupations: np.ndarray) -> list[str]:
    lines = ["  Writing Kohn-Sham eigenvalues.", ""]
    spins = ["Spin-up eigenvalues:", "Spin-down eigenvalues:"]
    for spin in range(energies_ev.shape[0]):
        if energies_ev.shape[0] == 2:
            lines += [f"  {spins[spin]}", ""]
        lines.append("  State    Occupation    Eigenvalue [Ha]    Eigenvalue [eV]")
        for state, (energy, occupation) in enumerate(
            zip(energies_ev[spin], occupations[spin], strict=True), start=1
        ):
            lines.append(
                f"  {state:5d} {occupation:13.5f} {energy / HARTREE_EV:18.6f} {energy:18.5f}"
            )
        lines.append("")
    return lines


def footer(total_energy_ev: float, fermi_ev: float, converged: bool) -> list[str]:
    lines = [f"  | Chemical potential (Fermi level): {fermi_ev:16.8f} eV", ""]
    if converged:
        lines += ["  Self-consistency cycle converged.", ""]
    else:
        lines += [
            "  * WARNING: SCF cycle not converged: the density is not self-consistent.",
            "  SCF cycle not converged.",
            "",
        ]
    lines += [
        "  | Total energy of the DFT / Hartree-Fock s.c.f. calculation      : "
        f"{total_energy_ev:24.9f} eV",
        "",
        "          Leaving FHI-aims.",
    ]
    if converged:  # FHI-aims says goodbye only after a converged SCF
        lines.append("          Have a nice day.")
    return lines + ["------------------------------------------------------------"]


def write_output(lines: list[str], failure: str) -> None:
    text = "\n".join(lines) + "\n"
    if failure == "truncate":
        text = text[: len(text) // 2]
    sys.stdout.write(text)
    sys.stdout.flush()
    if failure == "crash":
        sys.stderr.write("forrtl: severe (174): SIGSEGV, segmentation fault occurred\n")
        sys.exit(174)


def scf_step(atoms: ase.Atoms, keywords: dict[str, str], version: str, failure: str) -> None:
    """Kohn-Sham SCF; writes aims.out (stdout), ks_orbital_info.out and the restart."""
    options = pyscf_options(keywords)
    mol = build_mol(atoms, options)
    solver = scf.run_kohn_sham(mol, options)
    orbitals = scf.orbital_data(solver)
    energies, occupations = orbitals.energies[:, 0], orbitals.occupations[:, 0]
    if is_true(keywords, "ri_fit_write_orbital_info"):
        rows = []
        for spin in range(energies.shape[0]):
            for state in range(energies.shape[1]):
                rows.append((spin, state))
        with open("ks_orbital_info.out", "w") as handle:
            for row, (spin, state) in enumerate(rows, start=1):
                handle.write(
                    f"{row:8d} {state + 1:8d} {spin + 1:4d} {1:6d} {1.0:14.8f} "
                    f"{occupations[spin, state]:14.8f} {energies[spin, state]:18.8f}\n"
                )
    with open(RESTART_FILE, "wb") as handle:  # a file object: savez would append .npz
        np.savez(
            handle,
            mo_coeff=scf.mo_coefficients(solver),
            occupations=occupations,
            energies=energies,
        )
    lines = header(version, atoms, energies.shape[0])
    lines += eigenvalue_block(energies, occupations)
    converged = failure != "noconverge"
    lines += footer(float(solver.e_tot) * HARTREE_EV, float(orbitals.fermi_level), converged)
    write_output(lines, failure)


def ri_step(atoms: ase.Atoms, keywords: dict[str, str], version: str, failure: str) -> None:
    """RI fit (overlap metric) of the total density or of ks_orbital_weights.in."""
    options = pyscf_options(keywords)
    restart = np.load(RESTART_FILE)
    mo_coeff, occupations = restart["mo_coeff"], restart["occupations"]
    if is_true(keywords, "ri_fit_field_from_kso_weights"):
        weights = np.loadtxt("ks_orbital_weights.in", ndmin=1).reshape(occupations.shape)
    else:
        weights = occupations
    mol = build_mol(atoms, options, for_scf=False)
    auxmol = build_auxmol(mol, options, atoms.get_chemical_formula())
    density_matrix = rifit.weighted_density_matrix(mo_coeff, weights)
    ao_map = aux_ao_map(auxmol)
    overlap = ao_map.to_canonical_matrix(rifit.metric_matrix(auxmol, "overlap"))
    projections = ao_map.to_canonical(rifit.projections(mol, auxmol, density_matrix, "overlap"))
    coefficients = np.linalg.solve(overlap, projections)
    write_grid_fields(
        mol,
        auxmol,
        density_matrix,
        ao_map.from_canonical(coefficients),
        "ri_full_output" in keywords,
    )
    table = ao_map.layout.function_table(atoms.numbers)
    if "ri_full_output" in keywords:
        write_mainline_files(atoms, ao_map.layout, coefficients, projections, overlap)
    else:
        phases = np.array([legacy_phase(m) for m in table[:, 4]], dtype=float)
        overlap = phases[:, None] * overlap * phases[None, :]
        write_legacy_files(table, phases * coefficients, phases * projections, overlap)
    lines = header(version, atoms, occupations.shape[0])
    lines.append(
        "  | Shrink_full_auxil_basis : there are totally "
        f"{len(coefficients)} partial auxiliary wave functions."
    )
    # legacy builds skip the SCF with sc_iter_limit 0: FHI-aims reports it unconverged
    lines += footer(0.0, 0.0, "ri_full_output" in keywords)
    write_output(lines, failure)


def write_grid_fields(mol, auxmol, density_matrix, pyscf_coefficients, mainline: bool) -> None:
    """partition_tab.out and the reference / RI-rebuilt fields on it: x y z value, bohr."""
    integration = grids.integration_grid(mol, 1)
    bohr = integration.points / BOHR_IN_ANGSTROM
    reference = grids.density_on_points(mol, density_matrix, integration.points)
    fitted = grids.aux_field_on_points(auxmol, pyscf_coefficients, integration.points)
    mainline_names = ("rho_scf.out", "rho_rebuilt_ri.out")
    names = mainline_names if mainline else ("rho_ref.out", "rho_rebuilt.out")
    fields = (integration.weights, reference, fitted)
    for name, values in zip(("partition_tab.out", *names), fields, strict=True):
        np.savetxt(name, np.column_stack([bohr, values]), fmt="%.12e")


def write_vector(path: str, values: np.ndarray) -> None:
    np.savetxt(path, values, fmt="%.15e")


def write_mainline_files(
    atoms: ase.Atoms,
    layout: BasisLayout,
    coefficients: np.ndarray,
    projections: np.ndarray,
    overlap: np.ndarray,
) -> None:
    """ri_restart_coeffs.out, ri_projections.out, upper-triangle ri_ovlp.out, basis_info.out."""
    write_vector("ri_restart_coeffs.out", coefficients)
    write_vector("ri_projections.out", projections)
    write_vector("ri_ovlp.out", overlap[np.triu_indices(len(overlap))])
    write_basis_info(atoms, layout)


def write_legacy_files(
    table: np.ndarray, coefficients: np.ndarray, projections: np.ndarray, overlap: np.ndarray
) -> None:
    """Vectors in an internal order (l outermost here), described by product_basis_idxs.out."""
    order = np.lexsort((table[:, 4], table[:, 3], table[:, 0], table[:, 2]))
    write_vector("ri_coeffs.out", coefficients[order])
    write_vector("ri_projs.out", projections[order])
    write_vector("ri_ovlp.out", overlap[np.ix_(order, order)].reshape(-1))
    write_product_basis_idxs(table, order)


def write_basis_info(atoms: ase.Atoms, layout: BasisLayout) -> None:
    """One block per atom: its radial-function count for each l."""
    lines = []
    for atom, z in enumerate(atoms.numbers, start=1):
        counts = layout.nmax[int(z)]
        lines.append(f" atom{atom:12d}")
        lines += [
            f" For L ={l:12d} there are{n:12d} radial functions" for l, n in enumerate(counts)
        ]
        lines.append(f" For atom{atom:12d} max L ={len(counts) - 1:12d}")
    Path("basis_info.out").write_text("\n".join(lines) + "\n")


def write_product_basis_idxs(table: np.ndarray, order: np.ndarray) -> None:
    """Rows (line in the vector files, atom, l, radial function, m), sorted by atom, l, n, m.

    The radial function is numbered over the whole run, as FHI-aims does, not per l.
    """
    line_of = np.empty(len(order), dtype=int)
    line_of[order] = np.arange(1, len(order) + 1)
    radial_ids: dict[tuple[int, int, int], int] = {}
    rows = []
    for index, (atom, _z, l, n, m) in enumerate(table.tolist()):
        radial = radial_ids.setdefault((atom, l, n), len(radial_ids) + 1)
        rows.append((line_of[index], atom + 1, l, radial, m))
    np.savetxt("product_basis_idxs.out", np.array(rows), fmt="%8d")


def main() -> None:
    version = os.environ.get("RHOCORE_STANDIN_VERSION", "240925")
    failure = os.environ.get("RHOCORE_STANDIN_FAIL", "")
    keywords = read_control(Path("control.in"))
    atoms = ase.io.read("geometry.in", format="aims")
    if keywords.get("elsi_restart", "").startswith("read"):
        ri_step(atoms, keywords, version, failure)
    else:
        scf_step(atoms, keywords, version, failure)


if __name__ == "__main__":
    main()
