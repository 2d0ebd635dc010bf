"""A trained model as one metatomic ``AtomisticModel``: structures in, RI coefficients out.

:class:`CoefficientModel` chains systems -> spherical expansion -> lambda-SOAP -> model and
returns the predicted coefficients as output ``rhocore::<target>`` (per atom: keys
(o3_lambda, o3_sigma, center_type), samples (system, atom), components (o3_mu),
properties (n)). :func:`atomistic_model` wraps it with the metadata a user needs to map the
coefficients to basis functions without rhocore. The saved file is TorchScript and loads
with torch + metatensor-torch + metatomic-torch + featomic-torch alone.

The ``forward`` annotations use ``typing.List``/``Dict``/``Optional``: metatomic compares
them with exactly these types (see ``[tool.ruff.lint.per-file-ignores]``).
"""

import json
from typing import Any, Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    System,
)

from rhocore.descriptors.features import PIECE_ATOMS
from rhocore.descriptors.lambda_soap import LambdaSoapModule
from rhocore.descriptors.tensormaps import join_samples

#: Namespace of rhocore's outputs in metatomic (non-standard outputs are ``namespace::name``).
OUTPUT_NAMESPACE = "rhocore"
#: Key of the rhocore metadata (JSON) in ``ModelMetadata.extra``.
METADATA_KEY = "rhocore"
EXPORT_FORMAT = "rhocore-exported-model"
EXPORT_FORMAT_VERSION = 1


def output_name(target: str) -> str:
    """The metatomic output name of a target's coefficients: ``rhocore::<target>``."""
    return f"{OUTPUT_NAMESPACE}::{target}"


class CoefficientModel(torch.nn.Module):
    """metatomic model: ``output`` = RI coefficients of the selected atoms of ``systems``.

    Features are computed and passed through ``model`` in pieces of ``piece_atoms`` atoms
    per species (as in :meth:`rhocore.models.file.ModelFile.predict`), so the memory of one
    piece bounds the features held at a time.
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
    descriptor: LambdaSoapModule,
    model: torch.nn.Module,
    target: str,
    cutoff: float,
    info: Dict[str, Any],
    name: str,
    description: str,
) -> AtomisticModel:
    """The metatomic model of ``model`` on ``descriptor``'s features, float64, angstrom.

    ``info`` (JSON-ready: layout, target, backend, units, ...) is stored as JSON under
    ``ModelMetadata.extra["rhocore"]``; ``cutoff`` (angstrom) is the interaction range.
    """
    module = CoefficientModel(descriptor, model, output_name(target)).eval()
    capabilities = ModelCapabilities(
        outputs={
            output_name(target): ModelOutput(
                sample_kind="atom",
                description=f"RI coefficients of the {target} field, per atom (rhocore)",
            )
        },
        atomic_types=list(descriptor.species),
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
    return AtomisticModel(module, metadata, capabilities)
