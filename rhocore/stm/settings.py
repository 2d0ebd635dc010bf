"""What STM image to make, and the bias whose image a field gives.

An STM image at bias V shows the integrated local density of states of the window from
the Fermi level E_F to E_F + V (ASE's sign convention): [E_F + V, E_F] for V < 0 (filled
states), [E_F, E_F + V] for V > 0 (empty states). A field is such an image's field when
its target reports that energy window (:attr:`rhocore.qc.target.Target.energy_window`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rhocore.data.dataset import DatasetMetadata
from rhocore.data.provenance import data_target
from rhocore.errors import InputError
from rhocore.plugins.registry import Registry
from rhocore.qc.target import Target
from rhocore.stm.images import CellGrid, constant_height

CONSTANT_HEIGHT = "constant-height"
CONSTANT_CURRENT = "constant-current"
MODES = (CONSTANT_HEIGHT, CONSTANT_CURRENT)
#: Largest difference (V) between the asked bias and the bias of the target's window.
BIAS_TOLERANCE = 1e-3


@dataclass
class StmSettings:
    """What image to make: bias (V), mode and its set point, grid and figure options.

    ``height`` is in angstrom above the topmost atom; ``isovalue`` in the field's unit
    (e/bohr^3). A constant-current image takes either: with ``height``, the isovalue is
    the mean field on the plane at that height.
    """

    bias: float
    mode: str
    height: float | None = None
    isovalue: float | None = None
    spacing: float = 0.15
    repeat: tuple[int, int] = (2, 2)
    top_layer: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown STM mode '{self.mode}': use one of {', '.join(MODES)}")
        if self.mode == CONSTANT_HEIGHT and (self.height is None or self.isovalue is not None):
            raise InputError(
                "a constant-height image takes --height (angstrom above the topmost atom) "
                "and no --isovalue"
            )
        if self.mode == CONSTANT_CURRENT and (self.height is None) == (self.isovalue is None):
            raise InputError(
                "a constant-current image takes either --isovalue (e/bohr^3) or --height "
                "(angstrom above the topmost atom; the mean field there becomes the isovalue)"
            )
        if self.spacing <= 0 or min(self.repeat) < 1:
            raise InputError("the grid spacing must be positive and the repeats at least 1")


def target_bias(target: Target) -> float:
    """The bias (V) whose ILDOS ``target`` describes, or an InputError saying why none."""
    window = target.energy_window
    if window is None:
        raise InputError(
            f"the field is the '{target.name}' target, not an ILDOS: STM images need a "
            "model or dataset of an ILDOS target (an energy window from the Fermi level) at "
            "the bias to image"
        )
    if window.reference != "fermi":
        raise InputError(
            f"the ILDOS window is relative to '{window.reference}', not to the Fermi level "
            "as an STM bias is"
        )
    low, high = window.lower, window.upper
    if abs(high) <= BIAS_TOLERANCE and low < 0:
        return float(low)
    if abs(low) <= BIAS_TOLERANCE and high > 0:
        return float(high)
    raise InputError(
        f"the ILDOS window [{low}, {high}] eV does not run from the Fermi level to a bias, "
        "so it is not the field of an STM image"
    )


def data_bias(metadata: DatasetMetadata, registry: Registry | None = None) -> float:
    """The bias (V) whose ILDOS the data of ``metadata`` hold (see :func:`target_bias`)."""
    return target_bias(data_target(metadata, registry))


def check_bias(metadata: DatasetMetadata, bias: float, registry: Registry | None = None) -> None:
    """An InputError unless the field of ``metadata`` is the ILDOS of ``bias`` (V)."""
    trained = data_bias(metadata, registry)
    if abs(trained - bias) > BIAS_TOLERANCE:
        raise InputError(
            f"the field is the ILDOS of bias {trained:+.3f} V, not {bias:+.3f} V: an image "
            "at another bias needs a model trained on the ILDOS of that bias"
        )


def resolve_isovalue(grid: CellGrid, settings: StmSettings, z_top: float) -> float | None:
    """The constant-current isovalue: given, or the mean field at ``height`` above the top."""
    if settings.mode != CONSTANT_CURRENT:
        return None
    if settings.isovalue is not None:
        return settings.isovalue
    assert settings.height is not None
    return float(constant_height(grid, z_top + settings.height).mean())
