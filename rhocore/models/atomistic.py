"""A trained model as one metatomic ``AtomisticModel``: structures in, RI coefficients out.

:class:`CoefficientModel` chains systems -> spherical expansion -> lambda-SOAP -> model and
returns the predicted coefficients as output ``rhocore::<target>`` (per atom: keys
(o3_lambda, o3_sigma, center_type), samples (system, atom), components (o3_mu),
properties (n)). :func:`atomistic_model` wraps it with the metadata a user needs to map the
coefficients to basis functions without rhocore. The saved file is TorchScript and loads
with torch + metatensor-torch + metatomic-torch and the featomic-torch extension alone.

:func:`predict_coefficients` is rhocore's one prediction path: training validation, a
loaded model file and every command that takes a MODEL run a :class:`CoefficientModel` on
metatomic ``System`` objects through it.

The ``forward`` annotations use ``typing.List``/``Dict``/``Optional``: metatomic compares
them with exactly these types (see ``[tool.ruff.lint.per-file-ignores]``).
"""

import json
from collections.abc import Sequence
from typing import Any, Dict, List, Optional

import ase
import numpy as np
import torch
from metatensor.torch import Labels, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    System,
)

from rhocore.descriptors.features import PIECE_ATOMS, periodic_in_all_directions
from rhocore.descriptors.lambda_soap import LambdaSoapModule
from rhocore.descriptors.tensormaps import join_samples, tensormap_to_coefficients
from rhocore.qc.basis import BasisLayout

#: Namespace of rhocore's outputs in metatomic (non-standard outputs are ``namespace::name``).
OUTPUT_NAMESPACE = "rhocore"
#: Key of the rhocore metadata (JSON) in ``ModelMetadata.extra``.
METADATA_KEY = "rhocore"
#: Structures per call of the model in :func:`predict_coefficients`.
PREDICT_BATCH = 32


def output_name(target: str) -> str:
    """The metatomic output name of a target's coefficients: ``rhocore::<target>``."""
    return f"{OUTPUT_NAMESPACE}::{target}"


class CoefficientModel(torch.nn.Module):
    """metatomic model: ``output`` = RI coefficients of the selected atoms of ``systems``.

    Features are computed and passed through ``model`` in pieces of ``piece_atoms`` atoms
    per species, so the memory of one piece bounds the features held at a time.
    """

    output: str
    piece_atoms: int

    def __init__(
        self,
        descriptor: LambdaSoapModule,
        model: torch.nn.Module,
        output: str,
        piece_atoms: int = PIECE_ATOMS,
    ):
        super().__init__()
        self.descriptor = descriptor
        self.model = model
        self.output = output
        self.piece_atoms = piece_atoms

    @torch.jit.export
    def coefficients(self, systems: List[System], selected_atoms: Optional[Labels]) -> TensorMap:
        """Predicted coefficients of the atoms ``selected_atoms`` (all when None)."""
        expanded = self.descriptor.expand(systems, selected_atoms)
        largest = self.descriptor.largest(expanded)
        pieces: List[TensorMap] = []
        for start in range(0, max(largest, 1), self.piece_atoms):
            features = self.descriptor.couple(expanded, start, start + self.piece_atoms)
            pieces.append(self.model(features))
        return join_samples(pieces)

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        """The coefficients under ``self.output`` when it is requested (per atom only)."""
        result: Dict[str, TensorMap] = {}
        if self.output not in outputs:
            return result
        if outputs[self.output].sample_kind != "atom":
            raise ValueError(
                "output '" + self.output + "' holds coefficients of every atom's basis "
                "functions: request it per atom (sample_kind='atom', per_atom=True)"
            )
        result[self.output] = self.coefficients(systems, selected_atoms)
        return result


def atomistic_model(
    module: torch.nn.Module,
    output: str,
    species: List[int],
    cutoff: float,
    info: Dict[str, Any],
    name: str,
    description: str,
) -> AtomisticModel:
    """The metatomic model of a :class:`CoefficientModel` (or of a loaded metatomic model
    of one) with output ``output``, for ``species``; float64, angstrom.

    ``info`` (JSON-ready: layout, target, backend, units, ...) is stored as JSON under
    ``ModelMetadata.extra["rhocore"]``; ``cutoff`` (angstrom) is the interaction range.
    """
    target = output.split("::")[-1]
    capabilities = ModelCapabilities(
        outputs={
            output: ModelOutput(
                sample_kind="atom",
                description=f"RI coefficients of the {target} field, per atom (rhocore)",
            )
        },
        atomic_types=[int(z) for z in species],
        interaction_range=float(cutoff),
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    metadata = ModelMetadata(
        name=name,
        description=description,
        references={"implementation": ["rhocore"]},
        extra={METADATA_KEY: json.dumps(info)},
    )
    return AtomisticModel(module.eval(), metadata, capabilities)


def systems_of(
    frames: Sequence[ase.Atoms], cutoff: float, device: torch.device | str = "cpu"
) -> List[System]:
    """metatomic systems of ``frames`` (float64, angstrom) on ``device``.

    A slab becomes the equivalent fully periodic cell
    (:func:`rhocore.descriptors.features.periodic_in_all_directions`), so featomic builds
    its neighbour list itself and no engine is needed; ``cutoff`` is in angstrom.
    """
    systems = []
    for atoms in frames:
        atoms = periodic_in_all_directions(atoms, cutoff)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        systems.append(
            System(
                types=torch.tensor(atoms.numbers, dtype=torch.int32, device=device),
                positions=torch.tensor(atoms.positions, dtype=torch.float64, device=device),
                cell=torch.tensor(
                    atoms.cell.array * pbc[:, None], dtype=torch.float64, device=device
                ),
                pbc=torch.tensor(pbc, device=device),
            )
        )
    return systems


def predict_coefficients(
    module: torch.nn.Module,
    frames: Sequence[ase.Atoms],
    layout: BasisLayout,
    cutoff: float,
    batch_size: int = PREDICT_BATCH,
    device: torch.device | str = "cpu",
) -> List[np.ndarray]:
    """Flat canonical coefficient vectors a :class:`CoefficientModel` predicts for ``frames``.

    rhocore's one prediction path: ``module`` is the model of a model file (scripted) or
    one being trained (eager); ``cutoff`` (angstrom) is its descriptor's. Structures are
    run ``batch_size`` at a time on ``device``, where ``module`` must be.
    """
    frames = list(frames)
    species = [int(z) for z in module.descriptor.species]
    unknown = sorted({int(z) for atoms in frames for z in atoms.numbers} - set(species))
    if unknown:
        raise ValueError(
            f"structures contain species {unknown} that this model was not trained for "
            f"(species {species}); retrain with them in the training set"
        )
    vectors: List[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(frames), batch_size):
            chunk = frames[start : start + batch_size]
            output = module.coefficients(systems_of(chunk, cutoff, device), None)
            numbers = [atoms.numbers for atoms in chunk]
            vectors.extend(
                vector.detach().cpu().numpy().copy()
                for vector in tensormap_to_coefficients(output, numbers, layout)
            )
    return vectors
