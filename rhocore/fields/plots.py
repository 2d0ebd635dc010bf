"""Figures written by workflows and benchmarks.

Drawn through matplotlib's object API (``Figure``, ``savefig``), so a user's backend is never
switched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def coefficient_parity_plot(
    parity: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path
) -> None:
    """Predicted vs reference RI coefficients, coloured by angular momentum l."""
    reference = np.concatenate([r for r, _, _ in parity])
    predicted = np.concatenate([p for _, p, _ in parity])
    angular = np.concatenate([a for _, _, a in parity])
    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    for l in np.unique(angular):
        mask = angular == l
        axis.scatter(reference[mask], predicted[mask], s=4, alpha=0.6, label=f"l = {l}")
    low, high = (
        float(min(reference.min(), predicted.min())),
        float(max(reference.max(), predicted.max())),
    )
    axis.plot([low, high], [low, high], color="black", linewidth=0.8)
    axis.set_xlabel("reference coefficient (a.u.)")
    axis.set_ylabel("predicted coefficient (a.u.)")
    axis.set_title(f"RI coefficients of {len(parity)} held-out structures")
    axis.legend(markerscale=3, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


def learning_curve_plot(
    sizes: list[int], errors: dict[str, list[float]], ylabel: str, path: Path
) -> None:
    """Test error against training-set size on log-log axes, one line per model."""
    figure = Figure(figsize=(5, 4))
    axis = figure.subplots()
    for label, values in errors.items():
        axis.loglog(sizes, values, marker="o", label=label)
    axis.set_xlabel("training structures")
    axis.set_ylabel(ylabel)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=150)
