"""Figures of STM images, through matplotlib's object API (a user's backend is never switched).

Images are drawn over ``repeat`` tiled copies of the surface cell so that rows and
corrugation are visible, with the atoms of the top layer outlined as circles.
"""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
from ase.data import covalent_radii
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection, QuadMesh
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from rhocore.stm.images import plane_coordinates

IMAGE_CMAP = "afmhot"
DIFFERENCE_CMAP = "RdBu_r"
#: Percentile below which image values share the darkest colour: the deep holes of a
#: constant-current image (trenches between dimer rows) would otherwise take most of
#: the colour scale and hide the corrugation of the rows.
DARKEST_PERCENTILE = 5.0


def top_layer_positions(
    atoms: ase.Atoms, depth: float = 1.0, repeat: tuple[int, int] = (1, 1)
) -> tuple[np.ndarray, np.ndarray]:
    """xy (angstrom) and atomic numbers of atoms within ``depth`` of the topmost one.

    Positions are wrapped into the cell in the surface plane and tiled ``repeat`` times.
    """
    heights = atoms.positions[:, 2]
    top = heights >= heights.max() - depth
    cell = np.asarray(atoms.cell)
    fractions = np.linalg.solve(cell[:2, :2].T, atoms.positions[top, :2].T).T % 1.0
    shifts = np.array([(i, j) for i in range(repeat[0]) for j in range(repeat[1])])
    tiled = (fractions[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    numbers = np.tile(atoms.numbers[top], len(shifts))
    return tiled @ cell[:2, :2], numbers


def draw_image(
    axis: Axes,
    image: np.ndarray,
    atoms: ase.Atoms,
    *,
    repeat: tuple[int, int] = (2, 2),
    top_layer: float = 1.0,
    cmap: str = IMAGE_CMAP,
    limits: tuple[float, float] | None = None,
) -> QuadMesh:
    """Draw one (nx, ny) image of the cell of ``atoms`` tiled ``repeat`` times on ``axis``."""
    tiled = np.tile(image, repeat)
    x, y = plane_coordinates(np.asarray(atoms.cell), image.shape, repeat)
    vmin, vmax = limits if limits is not None else (np.nanmin(image), np.nanmax(image))
    mesh = axis.pcolormesh(
        x,
        y,
        np.ma.masked_invalid(tiled),
        shading="nearest" if np.isnan(tiled).any() else "gouraud",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        rasterized=True,
    )
    xy, numbers = top_layer_positions(atoms, top_layer, repeat)
    circles = [Circle(tuple(p), 0.5 * covalent_radii[z]) for p, z in zip(xy, numbers, strict=True)]
    axis.add_collection(
        PatchCollection(circles, facecolor="none", edgecolor="cyan", linewidth=0.6, alpha=0.8)
    )
    axis.set_aspect("equal")
    axis.set_xlabel("x (Å)")
    axis.set_ylabel("y (Å)")
    return mesh


def stm_image_plot(
    path: Path,
    image: np.ndarray,
    atoms: ase.Atoms,
    *,
    colorbar_label: str,
    title: str,
    repeat: tuple[int, int] = (2, 2),
    top_layer: float = 1.0,
) -> None:
    """One STM image with a colour bar, written to a PNG file."""
    figure = Figure(figsize=(_panel_width(atoms, repeat), 5), layout="constrained")
    axis = figure.subplots()
    limits = _image_limits(image)
    mesh = draw_image(axis, image, atoms, repeat=repeat, top_layer=top_layer, limits=limits)
    figure.colorbar(mesh, ax=axis, label=colorbar_label, extend=_extend(image, limits))
    axis.set_title(title, fontsize=10)
    figure.savefig(path, dpi=150)


def _panel_width(atoms: ase.Atoms, repeat: tuple[int, int]) -> float:
    """Figure width (inches) of one 4-inch-high image panel with its colour bar."""
    cell = np.asarray(atoms.cell)
    width = repeat[0] * abs(cell[0, 0]) + repeat[1] * abs(cell[1, 0])
    height = repeat[0] * abs(cell[0, 1]) + repeat[1] * abs(cell[1, 1])
    return float(np.clip(4.0 * width / height, 2.5, 9.0)) + 2.0


def _image_limits(values: np.ndarray) -> tuple[float, float]:
    """Colour limits of an image: its DARKEST_PERCENTILE percentile to its maximum."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    low, high = float(np.percentile(finite, DARKEST_PERCENTILE)), float(finite.max())
    return (low, high) if high > low else (float(finite.min()), high)


def _extend(values: np.ndarray, limits: tuple[float, float]) -> str:
    """'min' when some values lie below the colour scale (shown as an arrow), else 'neither'."""
    return "min" if np.nanmin(values) < limits[0] else "neither"


def _symmetric_span(values: np.ndarray) -> float:
    """Largest finite |value|, or 1 when there is none, for a colour scale centred on 0."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def stm_comparison_plot(
    path: Path,
    predicted: np.ndarray,
    reference: np.ndarray,
    atoms: ase.Atoms,
    *,
    colorbar_label: str,
    title: str,
    repeat: tuple[int, int] = (2, 2),
    top_layer: float = 1.0,
) -> None:
    """Predicted | reference | difference, the first two on one colour scale, to a PNG."""
    figure = Figure(figsize=(3 * _panel_width(atoms, repeat), 5), layout="constrained")
    axes = figure.subplots(1, 3)
    both = np.concatenate([predicted.ravel(), reference.ravel()])
    limits = _image_limits(both)
    difference = predicted - reference
    span = _symmetric_span(difference)
    panels = (
        (predicted, "predicted", IMAGE_CMAP, limits),
        (reference, "reference", IMAGE_CMAP, limits),
        (difference, "predicted − reference", DIFFERENCE_CMAP, (-span, span)),
    )
    for axis, (image, name, cmap, panel_limits) in zip(axes, panels, strict=True):
        mesh = draw_image(
            axis,
            image,
            atoms,
            repeat=repeat,
            top_layer=top_layer,
            cmap=cmap,
            limits=panel_limits,
        )
        label = colorbar_label if name != panels[2][1] else f"difference, {colorbar_label}"
        extend = _extend(image, panel_limits) if cmap == IMAGE_CMAP else "neither"
        figure.colorbar(mesh, ax=axis, label=label, extend=extend)
        axis.set_title(name)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=150)
