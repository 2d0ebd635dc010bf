"""lambda-SOAP descriptors of atomic environments, one block per coefficient block.

A model predicts the RI coefficients of block (l, Z) from the lambda-SOAP features of key
(o3_lambda = l, o3_sigma = +1, center_type = Z): both transform with the same Wigner-D
matrix, so any linear map over the feature properties is equivariant. Features come from
featomic-torch (a spherical expansion of the neighbour density, then its Clebsch-Gordan
self-product); their real spherical harmonics are rhocore's canonical convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import torch
from featomic.torch import SphericalExpansion, systems_to_torch
from featomic.torch.clebsch_gordan import EquivariantPowerSpectrum
from metatensor.torch import Labels, TensorBlock, TensorMap
from pydantic import Field

from rhocore.backend import PluginOptions
from rhocore.basis import BasisLayout
from rhocore.tensormaps import SAMPLE_NAMES, key_labels, mu_labels


class DescriptorOptions(PluginOptions):
    """Hyper-parameters of the lambda-SOAP descriptor."""

    cutoff: float = Field(4.0, gt=0, description="Radius of the atomic environment, angstrom.")
    cutoff_smoothing: float = Field(
        0.5, gt=0, description="Width of the shifted-cosine switch to zero at the cutoff, angstrom."
    )
    density_width: float = Field(
        0.3, gt=0, description="Width of the Gaussian placed on every neighbour, angstrom."
    )
    max_radial: int = Field(
        5, ge=0, description="Largest radial index of the GTO expansion (max_radial + 1 functions)."
    )
    max_angular: int | None = Field(
        None,
        ge=0,
        description=(
            "Largest angular momentum of the density expansion. At least the RI basis lmax; "
            "None means max(basis lmax, 4). Output o3_lambda never exceeds the basis lmax."
        ),
    )
    normalize: bool = Field(
        True,
        description=(
            "Divide every atom's features by the norm of its invariant (o3_lambda = 0) "
            "features: a rotation-invariant scale that is never zero (the central atom "
            "contributes to its own density), so features of all environments share one "
            "magnitude and stay smooth and equivariant."
        ),
    )


class LambdaSoap:
    """lambda-SOAP features for exactly the (l, Z) blocks of a basis layout.

    Keys are (o3_lambda, o3_sigma = 1, center_type) for every (l, Z) of ``layout`` plus
    (0, Z) for every species (the invariants that normalisation and gated models use);
    samples (system, atom); components (o3_mu); properties the unique pairs
    (l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2) of the power spectrum. Every
    key is present in every output, with zero samples when no atom of Z is in the frames.
    """

    def __init__(self, options: DescriptorOptions, layout: BasisLayout, species: Sequence[int]):
        self.options = options
        self.layout = layout
        self.species = sorted({int(z) for z in species})
        missing = [z for z in self.species if z not in layout.species]
        if missing:
            raise ValueError(
                f"species {missing} have no RI basis functions in the layout (it covers "
                f"{layout.species}); use a basis set that includes them"
            )
        self.max_angular = (
            max(layout.max_lmax, 4) if options.max_angular is None else options.max_angular
        )
        if self.max_angular < layout.max_lmax:
            raise ValueError(
                f"descriptor max_angular={self.max_angular} is below the RI basis lmax "
                f"{layout.max_lmax}; set descriptor.max_angular >= {layout.max_lmax}"
            )
        wanted = {(l, z) for l, z in layout.keys() if z in self.species}
        wanted |= {(0, z) for z in self.species}
        self.keys: list[tuple[int, int]] = sorted(wanted, key=lambda key: (key[1], key[0]))
        expansion = SphericalExpansion(
            cutoff={
                "radius": options.cutoff,
                "smoothing": {"type": "ShiftedCosine", "width": options.cutoff_smoothing},
            },
            density={"type": "Gaussian", "width": options.density_width},
            basis={
                "type": "TensorProduct",
                "max_angular": self.max_angular,
                "radial": {"type": "Gto", "max_radial": options.max_radial},
            },
        )
        self._calculator = EquivariantPowerSpectrum(
            expansion, neighbor_types=self.species, dtype=torch.float64
        )
        self._selected_keys = key_labels(self.keys)
        self._properties, self._unique = self._probe_properties()

    def feature_sizes(self) -> dict[tuple[int, int], int]:
        """Number of feature properties of every (l, Z) key."""
        return {(l, z): len(self._properties[l]) for l, z in self.keys}

    def compute(self, frames: Sequence[ase.Atoms]) -> TensorMap:
        """Float64 features of all atoms of ``frames``; ``system`` is the index in ``frames``."""
        frames = list(frames)
        unknown = sorted({int(z) for atoms in frames for z in atoms.numbers} - set(self.species))
        if unknown:
            raise ValueError(
                f"structures contain species {unknown} that this descriptor was not built "
                f"for (species {self.species}); retrain with them in the training set"
            )
        raw = self._calculator.compute(
            systems_to_torch(frames),
            selected_keys=self._selected_keys,
            neighbors_to_properties=True,
        )
        blocks = {}
        for l, z in self.keys:
            position = raw.keys.position(key_labels([(l, z)])[0])
            if position is None:
                blocks[(l, z)] = self._empty_block(l)
            else:
                block = raw.block(position)
                blocks[(l, z)] = (block.values[..., self._unique[l]], block.samples)
        if self.options.normalize:
            blocks = self._normalized(blocks)
        return TensorMap(
            self._selected_keys,
            [
                TensorBlock(
                    values=values,
                    samples=samples,
                    components=[mu_labels(l)],
                    properties=self._properties[l],
                )
                for (l, _), (values, samples) in blocks.items()
            ],
        )

    def _normalized(
        self, blocks: dict[tuple[int, int], tuple[torch.Tensor, Labels]]
    ) -> dict[tuple[int, int], tuple[torch.Tensor, Labels]]:
        out = {}
        for (l, z), (values, samples) in blocks.items():
            invariant, invariant_samples = blocks[(0, z)]
            if samples != invariant_samples:
                raise RuntimeError(
                    f"lambda-SOAP samples of o3_lambda={l} and o3_lambda=0 differ for Z={z}"
                )
            norm = torch.linalg.vector_norm(invariant, dim=(1, 2)).clamp_min(1e-12)
            out[(l, z)] = (values / norm[:, None, None], samples)
        return out

    def _probe_properties(self) -> tuple[dict[int, Labels], dict[int, torch.Tensor]]:
        """Property labels per o3_lambda and which of featomic's properties are unique.

        The self-product lists every pair twice: (l_1, a, n_1; l_2, b, n_2) and its swap
        are equal for o3_sigma = +1, so only l_1 < l_2, or l_1 = l_2 with
        (a, n_1) <= (b, n_2), are kept. Labels do not depend on the centre, so one probe
        structure holding every species gives them for all keys.
        """
        probe = ase.Atoms(
            numbers=self.species, positions=[[0.0, 0.0, 0.7 * i] for i in range(len(self.species))]
        )
        raw = self._calculator.compute(
            systems_to_torch([probe]),
            selected_keys=self._selected_keys,
            neighbors_to_properties=True,
        )
        properties: dict[int, Labels] = {}
        unique: dict[int, torch.Tensor] = {}
        for l, z in self.keys:
            if l in properties:
                continue
            block = raw.block(raw.keys.position(key_labels([(l, z)])[0]))
            labels = block.properties
            values = labels.values.to(torch.int64)
            l1, l2, a, n1, b, n2 = values.T
            first = a * (self.options.max_radial + 1) + n1
            second = b * (self.options.max_radial + 1) + n2
            keep = (l1 < l2) | ((l1 == l2) & (first <= second))
            index = torch.nonzero(keep).reshape(-1)
            unique[l] = index
            properties[l] = Labels(labels.names, labels.values[index])
        return properties, unique

    def _empty_block(self, l: int) -> tuple[torch.Tensor, Labels]:
        values = torch.zeros((0, 2 * l + 1, len(self._properties[l])), dtype=torch.float64)
        return values, Labels(SAMPLE_NAMES, torch.zeros((0, 2), dtype=torch.int32))
