"""The lambda-SOAP computation as one TorchScript-able module on metatomic ``System`` objects.

:class:`LambdaSoapModule` runs featomic-torch's spherical expansion and rhocore's
Clebsch-Gordan self-product (:class:`rhocore.descriptors.clebsch_gordan.SelfProduct`) per
centre type.
:class:`rhocore.descriptors.features.LambdaSoap` calls it on ASE structures inside rhocore, and an
exported model (:mod:`rhocore.models.atomistic`) carries the same module scripted, so both compute
the same features. Positions and cutoffs are in angstrom; features are float64.

No ``from __future__ import annotations`` here: TorchScript reads the class-level
attribute annotations as real types, and ``Optional[X]`` because metatensor's ``Labels``
(a TorchScript class) does not support ``Labels | None``.
"""

from typing import Optional

import torch
from featomic.torch import SphericalExpansion
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import System

from rhocore.descriptors.clebsch_gordan import (
    COMPRESSED_PAIR_NAMES,
    EXPANSION_PAIR_NAMES,
    SelfProduct,
    compressed_channels,
    expansion_channels,
    real_cg_coefficients,
)

#: What :meth:`LambdaSoapModule.expand` returns: per centre type, the expansion blocks
#: l = 0..max_angular (atoms, 2l + 1, neighbour types x radial) and their samples.
Expanded = dict[int, tuple[list[torch.Tensor], Labels]]


class LambdaSoapModule(torch.nn.Module):
    """lambda-SOAP features of keys ``keys`` = [(o3_lambda, center_type), ...].

    ``expansion`` holds the featomic hyper-parameters (cutoff, density, basis; lengths in
    angstrom), ``species`` the neighbour types of the properties. Output keys are
    (o3_lambda, o3_sigma = 1, center_type) in the order of ``keys``; every key is present,
    with zero samples when no selected atom has that centre type. featomic-torch asks the
    engine for its neighbour list (``requested_neighbor_lists`` of the expansion), or
    computes it itself when a ``System`` has none.

    With ``compression`` = K, the (neighbour type x radial) channels of every (centre
    type, l) block of the expansion are projected on K principal components before the
    product (all channels when there are fewer than K), so the product has K^2 channel
    pairs per (l_1, l_2). The projection, buffer ``projection`` of shape (species, l,
    channels, K), is data: :func:`rhocore.descriptors.compression.fit_projection` fits it
    and :meth:`set_projection` sets it; it acts on channels only, so the features stay
    equivariant.
    """

    species: list[int]
    keys: list[tuple[int, int]]
    normalize: bool
    max_angular: int
    compressed: bool
    _components: dict[int, Labels]
    _properties: dict[int, Labels]

    def __init__(
        self,
        expansion: dict,
        species: list[int],
        keys: list[tuple[int, int]],
        normalize: bool,
        compression: Optional[int] = None,
    ):
        super().__init__()
        self.species = sorted(int(z) for z in species)
        self.keys = [(int(l), int(z)) for l, z in keys]
        self.normalize = normalize
        self.max_angular = int(expansion["basis"]["max_angular"])
        max_radial = int(expansion["basis"]["radial"]["max_radial"])
        self.expansion = SphericalExpansion(**expansion)
        channels = expansion_channels(self.species, max_radial)
        pair_names = EXPANSION_PAIR_NAMES
        self.compressed = compression is not None
        shape = [0, 0, 0, 0]
        if compression is not None:
            width = min(int(compression), len(channels))
            shape = [len(self.species), self.max_angular + 1, len(channels), width]
            channels, pair_names = compressed_channels(width), COMPRESSED_PAIR_NAMES
        self.register_buffer("projection", torch.zeros(shape, dtype=torch.float64))
        self._neighbor_types = Labels(
            ["neighbor_type"], torch.tensor([[z] for z in self.species], dtype=torch.int32)
        )
        self._key_labels = Labels(
            ["o3_lambda", "o3_sigma", "center_type"],
            torch.tensor([[l, 1, z] for l, z in self.keys], dtype=torch.int32),
        )
        self._no_samples = Labels(["system", "atom"], torch.zeros((0, 2), dtype=torch.int32))
        coefficients = real_cg_coefficients(self.max_angular)
        self.products = torch.nn.ModuleDict(
            {
                str(z): SelfProduct(
                    [l for l, center in self.keys if center == z],
                    self.max_angular,
                    channels,
                    pair_names,
                    coefficients,
                )
                for z in sorted({z for _, z in self.keys})
            }
        )
        self._properties = {}
        for product in self.products.values():
            self._properties.update(product.properties)
        self._components = {
            l: Labels(["o3_mu"], torch.arange(-l, l + 1, dtype=torch.int32).reshape(-1, 1))
            for l, _ in self.keys
        }

    @torch.jit.export
    def properties(self, o3_lambda: int) -> Labels:
        """Property labels (l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2), or
        (l_1, l_2, k_1, k_2) with compression."""
        return self._properties[o3_lambda]

    def set_projection(self, projection: torch.Tensor) -> None:
        """Use ``projection`` (species, l, channels, K), fitted or loaded, from now on."""
        if not self.compressed:
            raise ValueError("this descriptor has no compression to set a projection of")
        if projection.shape != self.projection.shape:
            raise ValueError(
                f"projection of shape {tuple(projection.shape)} does not fit this descriptor "
                f"(shape {tuple(self.projection.shape)})"
            )
        with torch.no_grad():
            self.projection.copy_(projection)

    def project(self, values: list[torch.Tensor], center_type: int) -> list[torch.Tensor]:
        """Expansion blocks l = 0.. of ``center_type`` on their principal components."""
        projection = self.projection[self.species.index(center_type)]
        projected: list[torch.Tensor] = []
        for l in range(len(values)):
            projected.append(torch.matmul(values[l], projection[l]))
        return projected

    @torch.jit.export
    def expand(
        self,
        systems: list[System],
        selected_atoms: Optional[Labels],
    ) -> Expanded:
        """Spherical expansion of the atoms ``selected_atoms`` (all when None) by centre type.

        Centre types without a selected atom are left out. A system periodic along some
        directions only needs the neighbour list the model requests: featomic builds its
        own only for cells periodic in all or no directions.
        """
        for index, system in enumerate(systems):
            periodic = int(system.pbc.sum())
            if 0 < periodic < 3 and len(system.known_neighbor_lists()) == 0:
                raise ValueError(
                    "system "
                    + str(index)
                    + " is periodic along some directions only: add the neighbour list "
                    "the model requests (requested_neighbor_lists(), e.g. with "
                    "vesin.metatomic.neighbor_lists_for_model) before calling the model"
                )
        density = self.expansion.compute(systems, selected_samples=selected_atoms)
        density = density.keys_to_properties(self._neighbor_types.to(density.device))
        expanded: Expanded = {}
        for z in self.species:
            values: list[torch.Tensor] = []
            samples = self._no_samples
            present = True
            for l in range(self.max_angular + 1):
                position = density.keys.position([l, 1, z])
                if position is None:
                    present = False
                else:
                    block = density.block_by_id(position)
                    if l == 0:
                        samples = block.samples
                    elif not torch.equal(block.samples.values, samples.values):
                        raise RuntimeError(
                            "spherical expansion samples of o3_lambda="
                            + str(l)
                            + " and 0 differ for center_type "
                            + str(z)
                        )
                    values.append(block.values.to(torch.float64))
            if present:
                expanded[z] = (values, samples)
        return expanded

    @torch.jit.export
    def largest(self, expanded: Expanded) -> int:
        """Most atoms of one centre type in ``expanded``."""
        count = 0
        for values_samples in expanded.values():
            count = max(count, len(values_samples[1]))
        return count

    @torch.jit.export
    def couple(self, expanded: Expanded, start: int, stop: int) -> TensorMap:
        """Features of the atoms ``start`` to ``stop - 1`` (in sample order) of every
        centre type of ``expanded``; ``stop < 0`` means all atoms."""
        features: dict[int, dict[int, torch.Tensor]] = {}
        samples: dict[int, Labels] = {}
        for name, product in self.products.items():
            z = int(name)
            if z in expanded:
                values, labels = expanded[z]
                if start != 0 or stop >= 0:
                    end = len(labels) if stop < 0 else min(stop, len(labels))
                    values = [block[start:end] for block in values]
                    labels = Labels(labels.names, labels.values[start:end])
                if len(labels) > 0:
                    if self.compressed:
                        values = self.project(values, z)
                    features[z] = product(values, self.normalize)
                    samples[z] = labels
        device = torch.device("cpu")
        for values_samples in expanded.values():
            device = values_samples[0][0].device
        blocks: list[TensorBlock] = []
        for l, z in self.keys:
            properties = self._properties[l].to(device)
            if z in features:
                block_values = features[z][l]
                block_samples = samples[z]
            else:
                block_values = torch.zeros(
                    (0, 2 * l + 1, len(properties)), dtype=torch.float64, device=device
                )
                block_samples = self._no_samples.to(device)
            blocks.append(
                TensorBlock(
                    values=block_values,
                    samples=block_samples,
                    components=[self._components[l].to(device)],
                    properties=properties,
                )
            )
        return TensorMap(self._key_labels.to(device), blocks)

    def forward(
        self,
        systems: list[System],
        selected_atoms: Optional[Labels] = None,
    ) -> TensorMap:
        """Features of the atoms ``selected_atoms`` (all when None) of ``systems``."""
        return self.couple(self.expand(systems, selected_atoms), 0, -1)
