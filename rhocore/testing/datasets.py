"""Synthetic, self-consistent dataset entries for tests that need a dataset but no QC code.

Every array of :func:`synthetic_entry` is a deterministic function of the index, so a
test can rebuild an entry and compare it with what a file holds.
"""

from __future__ import annotations

from pathlib import Path

import ase
import h5py
import numpy as np

from rhocore.data.dataset import DatasetEntry, DatasetMetadata
from rhocore.qc.backend import OrbitalData, RIFit
from rhocore.qc.basis import BasisLayout

#: A small RI basis for H and O: radial counts per l.
SYNTHETIC_LAYOUT = BasisLayout({1: (3, 2, 1), 8: (4, 3, 2)})


def synthetic_metadata(**changes: object) -> DatasetMetadata:
    """Metadata of a synthetic HOMO dataset on :data:`SYNTHETIC_LAYOUT`; ``changes`` override."""
    values: dict[str, object] = {
        "backend_name": "synthetic",
        "backend_version": "1.0",
        "backend_options": {"xc": "pbe", "grid": [3, 4]},
        "target_name": "homo",
        "target_options": {"spin": "both"},
        "layout": SYNTHETIC_LAYOUT,
        "metric_kind": "overlap",
        "rhocore_version": "0.1.0",
    }
    values.update(changes)
    return DatasetMetadata(**values)  # type: ignore[arg-type]


def synthetic_entry(
    index: int, metadata: DatasetMetadata | None = None, *, n_molecules: int = 1
) -> DatasetEntry:
    """A done entry: ``n_molecules`` distorted waters, SPD metric, spin-unrestricted orbitals."""
    metadata = metadata or synthetic_metadata()
    rng = np.random.default_rng(index)
    water = np.array([[0.0, 0.0, 0.0], [0.76, 0.59, 0.0], [-0.76, 0.59, 0.0]])
    positions = np.concatenate([water + [0.0, 0.0, 3.0 * m] for m in range(n_molecules)])
    atoms = ase.Atoms(
        "OH2" * n_molecules,
        positions=positions + 0.05 * rng.standard_normal(positions.shape),
        cell=np.diag([8.0, 8.0, 3.0 * n_molecules + 5.0]),
        pbc=[True, False, index % 2 == 0],
    )
    layout = metadata.layout
    size = layout.size(atoms.numbers)
    random = rng.standard_normal((size, size))
    metric = random @ random.T / size + np.eye(size)
    coefficients = rng.standard_normal(size)
    integrals = np.where(layout.s_function_mask(atoms.numbers), rng.uniform(1, 2, size), 0.0)
    energies = np.sort(rng.uniform(-30.0, 5.0, (2, 1, 6)), axis=-1)
    occupations = np.zeros((2, 1, 6))
    occupations[0, 0, :3] = occupations[1, 0, :2] = 1.0
    weights = np.zeros_like(energies)
    weights[0, 0, 2] = 1.0
    fit = RIFit(
        coefficients=coefficients,
        projections=metric @ coefficients,
        metric=metric,
        metric_kind=metadata.metric_kind,  # type: ignore[arg-type]
        layout=layout,
        integrals=integrals,
        field_state={"density_matrix": rng.standard_normal((2, 5, 5)), "mask": np.arange(4)},
    )
    orbitals = OrbitalData(energies, occupations, np.ones(1), fermi_level=float(energies[0, 0, 2]))
    return DatasetEntry(
        index=index,
        atoms=atoms,
        fit=fit,
        orbitals=orbitals,
        weights=weights,
        total_energy=-2080.0 - index,
        scf_converged=True,
        status="done",
    )


def failed_entry(index: int, reason: str = "SCF did not converge") -> DatasetEntry:
    """A failed entry of the structure of :func:`synthetic_entry`."""
    return DatasetEntry.failed(index, synthetic_entry(index).atoms, reason)


def assert_entries_equal(
    stored: DatasetEntry, expected: DatasetEntry, *, fit_rtol: float = 0.0
) -> None:
    """Every stored array and attribute of ``stored`` equals those of ``expected``.

    Bit for bit, except that the RI fit arrays may differ by ``fit_rtol`` relative: the
    synthetic fit's matrix products differ in their last bits between BLAS kernels, so a
    file written on another machine matches only to rounding.
    """
    where = f"entry {expected.index}"
    assert stored.index == expected.index, where
    assert stored.status == expected.status and stored.reason == expected.reason, where
    assert stored.scf_converged == expected.scf_converged, where
    assert stored.total_energy == expected.total_energy, where
    for name in ("numbers", "positions", "cell", "pbc"):
        got = np.asarray(getattr(stored.atoms, name))
        assert np.array_equal(got, np.asarray(getattr(expected.atoms, name))), f"{where}: {name}"
    if expected.fit is None:
        assert stored.fit is None and stored.orbitals is None and stored.weights is None, where
        return
    assert stored.fit is not None and stored.orbitals is not None and expected.orbitals
    for name in ("coefficients", "projections", "metric", "integrals"):
        got, want = getattr(stored.fit, name), getattr(expected.fit, name)
        assert got.shape == want.shape and np.allclose(got, want, rtol=fit_rtol, atol=0), name
    assert stored.fit.metric_kind == expected.fit.metric_kind, where
    assert stored.fit.layout == expected.fit.layout, where
    assert stored.fit.field_state.keys() == expected.fit.field_state.keys(), where
    for key, value in expected.fit.field_state.items():
        assert np.array_equal(stored.fit.field_state[key], value), f"{where}: field_state {key}"
    for name in ("energies", "occupations", "k_weights"):
        got, want = getattr(stored.orbitals, name), getattr(expected.orbitals, name)
        assert np.array_equal(got, want), f"{where}: orbitals.{name}"
    assert stored.orbitals.fermi_level == expected.orbitals.fermi_level, where
    assert stored.orbitals.vacuum_level == expected.orbitals.vacuum_level, where
    assert np.array_equal(stored.weights, expected.weights), f"{where}: weights"


def file_contents(path: Path | str) -> dict[str, object]:
    """Every attribute and array under /structures, and the root attributes, by HDF5 path.

    Two runs that should write the same dataset compare equal with
    :func:`assert_same_file_contents`, whatever order their entries were written in.
    """
    found: dict[str, object] = {}
    with h5py.File(path, "r") as handle:
        found["/"] = dict(handle.attrs)

        def visit(name: str, item: h5py.Group | h5py.Dataset) -> None:
            if isinstance(item, h5py.Dataset):
                found[name] = item[()]
            found[f"{name}@"] = dict(item.attrs)

        handle["structures"].visititems(visit)
    return found


def assert_same_file_contents(got: dict[str, object], expected: dict[str, object]) -> None:
    """Same paths, attributes and arrays (NaN equal to NaN) in two :func:`file_contents`."""
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, dict):
            assert value.keys() == got[name].keys(), name
            for key, item in value.items():
                assert same(got[name][key], item), f"{name} {key}"
        else:
            assert same(got[name], value), name


def same(a: object, b: object) -> bool:
    """Equal values and shapes; NaN equals NaN (FHI-aims-style unknown integrals)."""
    a, b = np.asarray(a), np.asarray(b)
    floating = a.dtype.kind == "f" and b.dtype.kind == "f"
    return np.array_equal(a, b, equal_nan=floating)
