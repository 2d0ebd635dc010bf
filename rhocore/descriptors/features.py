"""lambda-SOAP descriptors of atomic environments, one block per coefficient block.

A model predicts the RI coefficients of block (l, Z) from the lambda-SOAP features of key
(o3_lambda = l, o3_sigma = +1, center_type = Z): both transform with the same Wigner-D
matrix, so any linear map over the feature properties is equivariant. featomic-torch
expands the neighbour density on spherical harmonics; ``rhocore.descriptors.clebsch_gordan``
takes its
Clebsch-Gordan self-product with coefficient tensors prepared once, so a call costs no
per-call metadata work. The real spherical harmonics are rhocore's canonical convention.
With ``compression`` the expansion's channels are first projected on principal
components fitted on the training structures (:mod:`rhocore.descriptors.compression`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import ase
import numpy as np
import torch
from featomic.torch import systems_to_torch
from metatensor.torch import TensorMap
from pydantic import Field

from rhocore.descriptors.compression import fit_projection
from rhocore.descriptors.lambda_soap import Expanded, LambdaSoapModule
from rhocore.errors import InputError
from rhocore.plugins.options import PluginOptions
from rhocore.qc.basis import BasisLayout

#: Atoms per species in a piece of :meth:`LambdaSoap.compute_chunks`: with the water
#: benchmark's descriptor (0.55 MB per O atom) the blocks of a piece stay below 32 MB, the
#: largest block the C allocator keeps for reuse after it is freed.
PIECE_ATOMS = 64
#: Structures expanded at a time while fitting the compression.
FIT_BATCH = 64


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
    compression: int | None = Field(
        None,
        ge=1,
        description=(
            "Number of principal components of the (neighbour type x radial) channels of "
            "the density expansion kept per centre type and angular channel l before the "
            "Clebsch-Gordan product, fitted on the training structures (uncentred PCA "
            "over atoms and m components, so features stay equivariant). Features shrink "
            "from (types x (max_radial + 1))^2 to compression^2 per (l_1, l_2) pair: use "
            "it with many species. None keeps the channels as they are; a value at or "
            "above their count keeps them all (rotated onto the principal axes)."
        ),
    )


class LambdaSoap:
    """lambda-SOAP features for exactly the (l, Z) blocks of a basis layout.

    Keys are (o3_lambda, o3_sigma = 1, center_type) for every (l, Z) of ``layout`` plus
    (0, Z) for every species (the invariants that normalisation and gated models use);
    samples (system, atom); components (o3_mu); properties the unique pairs
    (l_1, l_2, neighbor_1_type, n_1, neighbor_2_type, n_2) of the power spectrum, or
    (l_1, l_2, k_1, k_2) of principal components with ``options.compression``. Every
    key is present in every output, with zero samples when no atom of Z is in the frames.
    A descriptor with compression computes features once its projection is fitted
    (:meth:`fit_compression`) or loaded (:meth:`load_projection`).
    """

    def __init__(self, options: DescriptorOptions, layout: BasisLayout, species: Sequence[int]):
        self.options = options
        self.layout = layout
        self.species = sorted({int(z) for z in species})
        missing = [z for z in self.species if z not in layout.species]
        if missing:
            raise InputError(
                f"species {missing} have no RI basis functions in the layout (it covers "
                f"{layout.species}); use a basis set that includes them"
            )
        self.max_angular = (
            max(layout.max_lmax, 4) if options.max_angular is None else options.max_angular
        )
        if self.max_angular < layout.max_lmax:
            raise InputError(
                f"descriptor max_angular={self.max_angular} is below the RI basis lmax "
                f"{layout.max_lmax}; set descriptor.max_angular >= {layout.max_lmax}"
            )
        wanted = {(l, z) for l, z in layout.keys() if z in self.species}
        wanted |= {(0, z) for z in self.species}
        self.keys: list[tuple[int, int]] = sorted(wanted, key=lambda key: (key[1], key[0]))
        self.module = LambdaSoapModule(
            {
                "cutoff": {
                    "radius": options.cutoff,
                    "smoothing": {"type": "ShiftedCosine", "width": options.cutoff_smoothing},
                },
                "density": {"type": "Gaussian", "width": options.density_width},
                "basis": {
                    "type": "TensorProduct",
                    "max_angular": self.max_angular,
                    "radial": {"type": "Gto", "max_radial": options.max_radial},
                },
            },
            self.species,
            self.keys,
            options.normalize,
            options.compression,
        )
        self._expansion = self.module.expansion
        self._properties = {l: self.module.properties(l) for l, _ in self.keys}
        self._fitted = options.compression is None

    @property
    def projection(self) -> torch.Tensor | None:
        """The compression's projection (species, l, channels, K), None without one: the
        state that checkpoints and model files keep besides the options."""
        return self.module.projection.clone() if self.module.compressed else None

    def load_projection(self, projection: torch.Tensor) -> None:
        """Use a projection from :attr:`projection` (of a checkpoint or model file)."""
        self.module.set_projection(projection)
        self._fitted = True

    def fit_compression(self, frames: Sequence[ase.Atoms], seed: int = 0) -> None:
        """Fit the compression's projection on ``frames`` (the training structures).

        The structures are read in an order drawn from ``seed``, until every species has
        :data:`rhocore.descriptors.compression.FIT_ATOMS` atoms or none is left.
        """
        frames = list(frames)
        order = np.random.default_rng(seed).permutation(len(frames))
        batches = (
            self._expand([frames[i] for i in order[start : start + FIT_BATCH]], fitting=True)
            for start in range(0, len(frames), FIT_BATCH)
        )
        _, _, channels, count = self.module.projection.shape
        self.module.set_projection(
            fit_projection(batches, self.species, self.max_angular, channels, count)
        )
        self._fitted = True

    def feature_sizes(self) -> dict[tuple[int, int], int]:
        """Number of feature properties of every (l, Z) key."""
        return {(l, z): len(self._properties[l]) for l, z in self.keys}

    def compute(self, frames: Sequence[ase.Atoms]) -> TensorMap:
        """Float64 features of all atoms of ``frames``; ``system`` is the index in ``frames``."""
        return self._couple(self._expand(frames), slice(None))

    def compute_chunks(
        self, frames: Sequence[ase.Atoms], atoms: int = PIECE_ATOMS
    ) -> Iterator[TensorMap]:
        """The features of :meth:`compute` in pieces of at most ``atoms`` atoms per species.

        Piece k holds atoms k * atoms to (k + 1) * atoms - 1 (in sample order) of every
        species, so consumers that work atom by atom (models) need the memory of one
        piece only; small pieces also reuse the memory of the previous one instead of
        page-faulting fresh memory. Every piece has every key (zero samples where a
        species has no atom left); there is at least one piece.
        """
        if atoms < 1:
            raise ValueError(f"atoms per piece must be at least 1, got {atoms}")
        expanded = self._expand(frames)
        largest = max((len(samples) for _, samples in expanded.values()), default=0)
        for start in range(0, max(largest, 1), atoms):
            yield self._couple(expanded, slice(start, start + atoms))

    def _expand(self, frames: Sequence[ase.Atoms], fitting: bool = False) -> Expanded:
        """Density blocks l = 0..max_angular and samples of every species present."""
        if not (self._fitted or fitting):
            raise RuntimeError(
                "the descriptor's compression has no projection yet: fit_compression() on "
                "the training structures or load_projection() first"
            )
        frames = list(frames)
        unknown = sorted({int(z) for atoms in frames for z in atoms.numbers} - set(self.species))
        if unknown:
            raise InputError(
                f"structures contain species {unknown} that this descriptor was not built "
                f"for (species {self.species}); retrain with them in the training set"
            )
        systems = [periodic_in_all_directions(atoms, self.options.cutoff) for atoms in frames]
        return self.module.expand(systems_to_torch(systems), None)

    def _couple(self, expanded: Expanded, rows: slice) -> TensorMap:
        """Features of the atoms ``rows`` (of every species) of expanded densities."""
        if rows == slice(None):
            return self.module.couple(expanded, 0, -1)
        return self.module.couple(expanded, rows.start, rows.stop)


def periodic_in_all_directions(atoms: ase.Atoms, cutoff: float) -> ase.Atoms:
    """A slab (periodic along some axes only) as an equivalent fully periodic cell.

    (A molecule that carries a cell gets it removed: featomic ignores it, with a warning.)

    featomic takes cells periodic along all axes or none. Along each non-periodic axis the
    cell vector is replaced by the surface normal, long enough that no atom sees its
    image within ``cutoff``: the environments, hence the descriptor, are unchanged.
    """
    if atoms.pbc.all():
        return atoms
    if not atoms.pbc.any():  # a molecule: its cell, if any, means nothing
        if not atoms.cell.any():
            return atoms
        isolated = atoms.copy()
        isolated.set_cell(np.zeros((3, 3)))
        return isolated
    cell = atoms.cell.array.copy()
    for axis in np.nonzero(~atoms.pbc)[0]:
        periodic = [cell[other] for other in range(3) if other != axis]
        normal = np.cross(periodic[0], periodic[1])
        normal /= np.linalg.norm(normal)
        extent = float(np.ptp(atoms.positions @ normal))
        cell[axis] = normal * (extent + 2.0 * cutoff + 1.0)
    periodic_copy = atoms.copy()
    periodic_copy.set_cell(cell, scale_atoms=False)
    periodic_copy.pbc = True
    return periodic_copy
