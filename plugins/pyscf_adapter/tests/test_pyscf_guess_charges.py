"""A dataset of structures with their own charges records them, through training, in the
model file; the guess checks a molecule's charge against them."""

from __future__ import annotations

import ase
import pytest
from rhocore_pyscf import PySCFBackend, PySCFOptions

import rhocore
from rhocore.data.dataset import Dataset, DatasetMetadata, DatasetWriter
from rhocore.plugins.registry import get_registry
from rhocore.workflows.generate import compute_entry
from rhocore.workflows.train import net_charges

pytestmark = pytest.mark.dft  # runs real PySCF SCFs


def ions() -> list[ase.Atoms]:
    """Water, hydronium (info charge +1) and hydroxide (-1): ten electrons each."""
    water = ase.Atoms("OH2", positions=[(0, 0, 0), (0.96, 0, 0), (-0.24, 0.93, 0)])
    hydronium = ase.Atoms(
        "OH3", positions=[(0, 0, 0.1), (0.95, 0, -0.2), (-0.47, 0.82, -0.2), (-0.47, -0.82, -0.2)]
    )
    hydroxide = ase.Atoms("OH", positions=[(0, 0, 0), (0.97, 0, 0)])
    hydronium.info["charge"], hydroxide.info["charge"] = 1, -1
    return [water, hydronium, hydroxide]


def test_each_structures_own_charge_is_recorded_for_the_model_file(tmp_path):
    options = PySCFOptions(basis="sto-3g", grid_level=1, constrain_charge=True)
    backend = PySCFBackend(options)
    target = get_registry().get("target", "density")({})
    metadata = DatasetMetadata(
        backend_name=backend.name,
        backend_version=backend.version,
        backend_options=options.model_dump(mode="json"),
        target_name=target.name,
        target_options={},
        layout=backend.basis_layout(ions()[0]),
        metric_kind=backend.metric_kind,
        rhocore_version=rhocore.__version__,
    )
    with DatasetWriter(tmp_path / "data.h5", metadata) as writer:
        for index, atoms in enumerate(ions()):
            writer.write(compute_entry(index, atoms, backend, target))
    dataset = Dataset(tmp_path / "data.h5")
    assert net_charges(dataset, [0, 1, 2]) == [-1, 0, 1]
    assert net_charges(dataset, [0]) == [0]
