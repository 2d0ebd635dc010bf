"""Read the processed folders of two earlier FHI-aims density-learning tools.

Both tools saved one folder per structure with metatensor TensorMaps written by
``numpy.savez`` (``ri_coeffs.npz``, ``ri_ovlp.npz``, optionally ``ri_projs.npz``) and
metadata (``calc_info``, ``basis_set``, ``df_error``):

* ``"rho_learn"`` (jwa7/rho_learn): keys (spherical_harmonics_l, species_center); the
  overlap is stored per (l1, l2, species1, species2) with only one of each symmetric pair
  of keys. The tool flipped the odd m > 0 functions of FHI-aims' legacy ``ri_fit_*``
  output before saving.
* ``"rholearn"`` (lab-cosmo/rholearn): keys (o3_lambda, o3_sigma, center_type); the
  overlap is stored per atom pair (atom_1 <= atom_2, off-diagonal pairs doubled). It saved
  the mainline FHI-aims output (``ri_restart_coeffs.out``, ...) unchanged.

Both are atom -> l -> n -> m ordered, and both carry featomic's phases as saved: measured
on rotated water frames, on the symmetry of methane and on the direction dependence of
two-centre overlaps (``tests/test_aims_convention.py``), so no sign is changed here.
Archives are read with numpy alone, never with pickle; pickled metadata is read only when
the caller allows it, since unpickling runs code from the file.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ase
import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from rhocore.api import BasisLayout, OrbitalData
from rhocore_aims.errors import AimsFileError

LegacyLayout = Literal["rho_learn", "rholearn"]

COEFF_KEYS: dict[LegacyLayout, tuple[str, ...]] = {
    "rho_learn": ("spherical_harmonics_l", "species_center"),
    "rholearn": ("o3_lambda", "o3_sigma", "center_type"),
}
ATOM_FIELD: dict[LegacyLayout, str] = {"rho_learn": "center", "rholearn": "atom"}


@dataclass(frozen=True)
class ProcessedFit:
    """One structure's RI fit from a processed folder, in rhocore's canonical convention.

    ``coefficients`` d and ``projections`` w (None when the folder has none) are vectors and
    ``overlap`` S the dense symmetric metric, all in the order atom -> l -> n -> m of
    ``layout`` with featomic's real harmonics. ``structure_index`` is the structure number
    the tool stored in the samples (rho_learn: the frame of its trajectory), for callers to
    check against the frame they read ``atoms`` from.
    """

    source: LegacyLayout
    structure_index: int
    layout: BasisLayout
    coefficients: np.ndarray
    overlap: np.ndarray
    projections: np.ndarray | None
    calc_info: dict[str, Any] = field(default_factory=dict)
    df_error: dict[str, Any] = field(default_factory=dict)


def detect_layout(folder: Path | str) -> LegacyLayout | None:
    """Which tool wrote ``folder``, from the key names of its ``ri_coeffs.npz``; else None."""
    path = Path(folder) / "ri_coeffs.npz"
    if not path.is_file():
        return None
    keys = _load_npz(path).get("keys")
    names = () if keys is None else tuple(keys.dtype.names or ())
    for layout, expected in COEFF_KEYS.items():
        if names == expected:
            return layout
    return None


def read_processed_folder(
    folder: Path | str, atoms: ase.Atoms, *, allow_pickle: bool = False
) -> ProcessedFit:
    """Decode a rho_learn or rholearn folder of structure ``atoms`` to canonical arrays.

    Every archive is checked against ``atoms`` (atom count, element of every atom index),
    so that a wrong frame of a trajectory is an error rather than a silent mismatch.
    """
    folder = Path(folder)
    source = detect_layout(folder)
    if source is None:
        raise AimsFileError(
            folder / "ri_coeffs.npz",
            "missing, or its keys are neither rho_learn's (spherical_harmonics_l, "
            "species_center) nor rholearn's (o3_lambda, o3_sigma, center_type)",
        )
    numbers = atoms.get_atomic_numbers()
    coeff_path = folder / "ri_coeffs.npz"
    layout, coefficients, structure = _read_vector(coeff_path, source, numbers)
    projections = None
    if (folder / "ri_projs.npz").is_file():
        projs_path = folder / "ri_projs.npz"
        projs_layout, projections, projs_structure = _read_vector(projs_path, source, numbers)
        _check_same_layout(projs_path, projs_layout, layout)
        _check_structure(projs_path, projs_structure, structure)
    ovlp_path = folder / "ri_ovlp.npz"
    if source == "rho_learn":
        overlap = _rho_learn_overlap(ovlp_path, layout, numbers, structure)
    else:
        overlap = _rholearn_overlap(ovlp_path, layout, numbers, structure)
    calc_info = read_metadata(folder, "calc_info", allow_pickle=allow_pickle) or {}
    basis_set = read_metadata(folder, "basis_set", allow_pickle=allow_pickle)
    _cross_check_layout(folder, layout, calc_info, basis_set)
    return ProcessedFit(
        source=source,
        structure_index=structure,
        layout=layout,
        coefficients=coefficients,
        overlap=overlap,
        projections=projections,
        calc_info=calc_info,
        df_error=read_metadata(folder, "df_error", allow_pickle=allow_pickle) or {},
    )


def read_metadata(folder: Path | str, stem: str, *, allow_pickle: bool = False) -> dict | None:
    """``<stem>.json`` of ``folder``, else ``<stem>.pickle`` if allowed; None if neither exists.

    Pickles are refused unless ``allow_pickle``: unpickling runs code from the file.
    """
    folder = Path(folder)
    json_path, pickle_path = folder / f"{stem}.json", folder / f"{stem}.pickle"
    if json_path.is_file():
        try:
            return json.loads(json_path.read_text())
        except json.JSONDecodeError as error:
            raise AimsFileError(json_path, f"not valid JSON ({error})") from None
    if not pickle_path.is_file():
        return None
    if not allow_pickle:
        raise AimsFileError(
            pickle_path,
            f"{stem}.pickle can only be read with --allow-pickle: unpickling runs code from "
            "the file; convert it to JSON or pass --allow-pickle if you trust it",
        )
    with pickle_path.open("rb") as handle:
        return pickle.load(handle)


def orbital_info(calc_info: dict[str, Any]) -> OrbitalData | None:
    """Kohn-Sham energies and occupations of ``calc_info["ks_states"]``; None if absent.

    The tools saved one spin channel at the Gamma point: shape (1, 1, n_states).
    """
    states = calc_info.get("ks_states")
    if not states:
        return None
    if int(calc_info.get("num_spin_states", 1)) != 1:
        raise AimsFileError(
            "calc_info.json",
            "ks_states of a spin-polarised calculation: the file lists one channel only",
        )
    order = sorted(states, key=int)
    energies = [float(states[key]["eig_eV"]) for key in order]
    occupations = [float(states[key]["occ"]) for key in order]
    fermi = calc_info.get("fermi_eV")
    return OrbitalData(
        energies=np.array(energies).reshape(1, 1, -1),
        occupations=np.array(occupations).reshape(1, 1, -1),
        k_weights=np.ones(1),
        fermi_level=None if fermi is None else float(fermi),
    )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a numpy archive, without pickle."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise AimsFileError(path, "file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise AimsFileError(
            path, f"not a readable numpy archive of plain arrays ({error})"
        ) from None


def _blocks(path: Path, arrays: dict[str, np.ndarray]) -> Iterator[tuple[Any, np.ndarray, Any]]:
    """(key record, values, samples) of every block of a TensorMap saved with numpy."""
    if "keys" not in arrays:
        raise AimsFileError(path, "has no 'keys' array: not a TensorMap saved with numpy")
    for i, key in enumerate(arrays["keys"]):
        try:
            yield key, arrays[f"blocks/{i}/values"], arrays[f"blocks/{i}/samples"]
        except KeyError as missing:
            raise AimsFileError(path, f"block {i} lacks the array {missing}") from None


def _read_vector(
    path: Path, source: LegacyLayout, numbers: np.ndarray
) -> tuple[BasisLayout, np.ndarray, int]:
    """Layout, flat canonical-order vector and structure index of a coefficient-like
    TensorMap."""
    arrays = _load_npz(path)
    names = tuple(arrays["keys"].dtype.names or ())
    if names != COEFF_KEYS[source]:
        raise AimsFileError(path, f"keys {names} are not the {source} keys {COEFF_KEYS[source]}")
    pieces: dict[tuple[int, int], np.ndarray] = {}
    structures: set[int] = set()
    for i, (key, values, samples) in enumerate(_blocks(path, arrays)):
        l, z = int(key[0]), int(key[-1])
        if source == "rholearn" and int(key["o3_sigma"]) != 1:
            raise AimsFileError(path, f"block {i} has o3_sigma {key['o3_sigma']}, expected 1")
        if values.ndim != 3 or values.shape[1] != 2 * l + 1:
            raise AimsFileError(
                path, f"block {i} (l={l}, Z={z}) has values of shape {values.shape}"
            )
        _check_components(path, i, l, arrays[f"blocks/{i}/components/0"])
        structures.add(_structure_of(path, samples))
        atom_ids = np.asarray(samples[ATOM_FIELD[source]], dtype=int)
        _check_species(path, atom_ids, z, numbers)
        _check_atom_set(path, l, z, atom_ids, numbers)
        pieces[(l, z)] = values[np.argsort(atom_ids)]
    layout = _layout_from_blocks(path, {key: block.shape[2] for key, block in pieces.items()})
    _check_all_species(path, layout, numbers)
    if len(structures) > 1:
        raise AimsFileError(path, f"holds several structures {sorted(structures)}")
    return layout, layout.join(pieces, numbers), structures.pop()


def _check_components(path: Path, block: int, l: int, components: np.ndarray) -> None:
    """The m values of a block must run -l..l, in that order."""
    m_values = components[components.dtype.names[0]]
    if not np.array_equal(m_values, np.arange(-l, l + 1)):
        raise AimsFileError(path, f"block {block} has m values {m_values.tolist()}, not -l..l")


def _structure_of(path: Path, samples: np.ndarray) -> int:
    """The structure index of a block's samples (first field), which must be unique."""
    structures = np.unique(samples[samples.dtype.names[0]])
    if structures.size != 1:
        raise AimsFileError(path, f"holds several structures {structures.tolist()}")
    return int(structures[0])


def _check_structure(path: Path, found: int, expected: int) -> None:
    if found != expected:
        raise AimsFileError(
            path, f"is for structure {found}, but ri_coeffs.npz is for structure {expected}"
        )


def _check_species(path: Path, atom_ids: Iterable[int], z: int, numbers: np.ndarray) -> None:
    """Every atom index of a block of element ``z`` must be an atom of that element."""
    for atom in atom_ids:
        if not 0 <= atom < len(numbers):
            raise AimsFileError(
                path, f"refers to atom {atom}, but the structure has {len(numbers)} atoms"
            )
        if numbers[atom] != z:
            raise AimsFileError(
                path,
                f"atom {atom} is {chemical_symbols[z]} in the file but "
                f"{chemical_symbols[numbers[atom]]} in the structure (wrong frame?)",
            )


def _layout_from_blocks(path: Path, counts: dict[tuple[int, int], int]) -> BasisLayout:
    """Radial counts per element and l from the property count of each (l, Z) block."""
    nmax: dict[int, list[int]] = {}
    for (l, z), n in counts.items():
        per_l = nmax.setdefault(z, [])
        per_l.extend([0] * (l + 1 - len(per_l)))
        per_l[l] = n
    if not nmax:
        raise AimsFileError(path, "has no blocks")
    return BasisLayout({z: tuple(per_l) for z, per_l in nmax.items()})


def _check_atom_set(path: Path, l: int, z: int, atom_ids: np.ndarray, numbers: np.ndarray) -> None:
    """A block of element ``z`` must hold every atom of that element exactly once."""
    expected = np.nonzero(numbers == z)[0]
    if not np.array_equal(np.sort(atom_ids), expected):
        raise AimsFileError(
            path,
            f"block l={l}, {chemical_symbols[z]} holds atoms {sorted(atom_ids.tolist())} but "
            f"the structure ({_formula(numbers)}) has {chemical_symbols[z]} atoms "
            f"{expected.tolist()} (wrong frame?)",
        )


def _check_all_species(path: Path, layout: BasisLayout, numbers: np.ndarray) -> None:
    """The file must have functions for every element of the structure."""
    missing = sorted(set(int(z) for z in numbers) - set(layout.species))
    if missing:
        raise AimsFileError(
            path,
            f"has no functions for {', '.join(chemical_symbols[z] for z in missing)}, which the "
            f"structure ({_formula(numbers)}) contains (wrong frame?)",
        )


def _formula(numbers: np.ndarray) -> str:
    return ase.Atoms(numbers=numbers).get_chemical_formula()


def _function_starts(layout: BasisLayout, numbers: np.ndarray) -> dict[tuple[int, int], int]:
    """Start index of the (atom, l) functions in the canonical vector."""
    offsets = layout.atom_offsets(numbers)
    starts = {}
    for atom, z in enumerate(numbers):
        start = int(offsets[atom])
        for l, n in enumerate(layout.nmax[int(z)]):
            starts[(atom, l)] = start
            start += (2 * l + 1) * n
    return starts


def _rho_learn_overlap(
    path: Path, layout: BasisLayout, numbers: np.ndarray, structure: int
) -> np.ndarray:
    """Dense S from (l1, l2, Z1, Z2) blocks, one of each symmetric pair, stored as is."""
    arrays = _load_npz(path)
    names = tuple(arrays["keys"].dtype.names or ())
    expected = (
        "spherical_harmonics_l1",
        "spherical_harmonics_l2",
        "species_center_1",
        "species_center_2",
    )
    if names != expected:
        raise AimsFileError(path, f"keys {names} are not rho_learn's overlap keys {expected}")
    size = layout.size(numbers)
    starts = _function_starts(layout, numbers)
    overlap, filled = np.zeros((size, size)), np.zeros((size, size), dtype=bool)
    for i, (key, values, samples) in enumerate(_blocks(path, arrays)):
        l1, l2, z1, z2 = (int(v) for v in key)
        n1, n2 = _radial_count(path, layout, z1, l1), _radial_count(path, layout, z2, l2)
        if values.shape[1:] != (2 * l1 + 1, 2 * l2 + 1, n1 * n2):
            raise AimsFileError(
                path,
                f"block {i} {tuple(key)} has values of shape {values.shape}, expected "
                f"(pairs, {2 * l1 + 1}, {2 * l2 + 1}, {n1 * n2})",
            )
        _check_structure(path, _structure_of(path, samples), structure)
        for (_, a1, a2), pair in zip(samples.tolist(), values, strict=True):
            _check_species(path, [a1], z1, numbers)
            _check_species(path, [a2], z2, numbers)
            rows = pair.reshape(2 * l1 + 1, 2 * l2 + 1, n1, n2).transpose(2, 0, 3, 1)
            r0, c0 = starts[(a1, l1)], starts[(a2, l2)]
            window = (slice(r0, r0 + n1 * (2 * l1 + 1)), slice(c0, c0 + n2 * (2 * l2 + 1)))
            overlap[window] = rows.reshape(n1 * (2 * l1 + 1), n2 * (2 * l2 + 1))
            filled[window] = True
    return _symmetrise(path, overlap, filled)


def _radial_count(path: Path, layout: BasisLayout, z: int, l: int) -> int:
    """Radial count of (Z, l) in the coefficients' layout; the overlap must agree."""
    counts = layout.nmax.get(z, ())
    if l >= len(counts) or counts[l] == 0:
        raise AimsFileError(
            path, f"has a block for {chemical_symbols[z]} l={l}, which ri_coeffs.npz lacks"
        )
    return counts[l]


def _rholearn_overlap(
    path: Path, layout: BasisLayout, numbers: np.ndarray, structure: int
) -> np.ndarray:
    """Dense S from atom-pair blocks (atom_1 <= atom_2); off-diagonal pairs are stored x2."""
    arrays = _load_npz(path)
    names = tuple(arrays["keys"].dtype.names or ())
    if names != ("center_1_type", "center_2_type"):
        raise AimsFileError(path, f"keys {names} are not rholearn's (center_1_type, center_2_type)")
    offsets = layout.atom_offsets(numbers)
    size = int(offsets[-1])
    overlap, filled = np.zeros((size, size)), np.zeros((size, size), dtype=bool)
    for i, (key, values, samples) in enumerate(_blocks(path, arrays)):
        z1, z2 = int(key[0]), int(key[1])
        expected = (layout.atom_size(z1), layout.atom_size(z2))
        if values.shape[1:] != expected:
            raise AimsFileError(
                path,
                f"block {i} {(z1, z2)} has values of shape {values.shape}, expected "
                f"(pairs, {expected[0]}, {expected[1]})",
            )
        _check_structure(path, _structure_of(path, samples), structure)
        for (_, a1, a2), pair in zip(samples.tolist(), values, strict=True):
            _check_species(path, [a1], z1, numbers)
            _check_species(path, [a2], z2, numbers)
            if a1 > a2:
                raise AimsFileError(path, f"block {i} stores atom pair ({a1}, {a2}) with a1 > a2")
            window = (slice(offsets[a1], offsets[a1 + 1]), slice(offsets[a2], offsets[a2 + 1]))
            overlap[window] = pair if a1 == a2 else 0.5 * pair
            filled[window] = True
    return _symmetrise(path, overlap, filled)


def _symmetrise(path: Path, overlap: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Fill entries the file leaves out by transposition; check the result is complete and
    symmetric."""
    complete = np.where(filled, overlap, overlap.T)
    if not (filled | filled.T).all():
        rows = np.unique(np.nonzero(~(filled | filled.T))[0])
        raise AimsFileError(
            path, f"lacks overlap elements of {rows.size} functions (first: index {rows[0]})"
        )
    asymmetry = np.abs(complete - complete.T).max()
    scale = np.abs(complete).max()
    if asymmetry > 1e-8 * scale:
        raise AimsFileError(
            path, f"overlap is not symmetric: max |S - S^T| = {asymmetry:.3g} (max |S| {scale:.3g})"
        )
    return 0.5 * (complete + complete.T)


def _check_same_layout(path: Path, found: BasisLayout, expected: BasisLayout) -> None:
    if found != expected:
        raise AimsFileError(
            path, f"basis layout {found.nmax} differs from ri_coeffs.npz's {expected.nmax}"
        )


def _cross_check_layout(
    folder: Path, layout: BasisLayout, calc_info: dict[str, Any], basis_set: dict | None
) -> None:
    """The npz-derived radial counts must match any lmax/nmax the metadata records."""
    candidates = [
        ("basis_set", basis_set),
        ("calc_info", calc_info),
        ("calc_info", (calc_info.get("basis_set") or {}).get("def")),
    ]
    for stem, record in candidates:
        if not record or "nmax" not in record:
            continue
        recorded = _layout_from_metadata(folder / f"{stem}.json", record)
        if recorded != layout:
            raise AimsFileError(
                folder / f"{stem}.json",
                f"lmax/nmax {recorded.nmax} differ from those of the npz blocks {layout.nmax}",
            )


def _layout_from_metadata(path: Path, record: dict[str, Any]) -> BasisLayout:
    """BasisLayout of metadata ``{"nmax": {"O,0": 9, ...}, "lmax": {"O": 5, ...}}``."""
    nmax: dict[int, dict[int, int]] = {}
    try:
        for key, count in record["nmax"].items():
            symbol, l = key.split(",")
            nmax.setdefault(atomic_numbers[symbol.strip()], {})[int(l)] = int(count)
        lmax = {atomic_numbers[s]: int(v) for s, v in record.get("lmax", {}).items()}
    except (KeyError, ValueError, AttributeError) as error:
        raise AimsFileError(path, f"cannot read its lmax/nmax ({error!r})") from None
    for z, top in lmax.items():
        if max(nmax.get(z, {0: 0})) != top:
            raise AimsFileError(path, f"lmax of {chemical_symbols[z]} is {top} but nmax disagrees")
    return BasisLayout(
        {z: tuple(per_l.get(l, 0) for l in range(max(per_l) + 1)) for z, per_l in nmax.items()}
    )
