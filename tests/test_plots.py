"""Figures are drawn through matplotlib's object API and leave the user's backend alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# runs in a fresh interpreter: a module that switches the backend does so when imported
_DRAW = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import matplotlib

    matplotlib.use("pdf")
    import ase
    import numpy as np

    from rhocore.fields.plots import coefficient_parity_plot, learning_curve_plot
    from rhocore.stm.plots import stm_comparison_plot, stm_image_plot

    out = Path(sys.argv[1])
    values = np.linspace(-1.0, 1.0, 12)
    coefficient_parity_plot([(values, 1.1 * values, np.arange(12) % 3)], out / "parity.png")
    learning_curve_plot([1, 2, 4], {"linear": [3.0, 2.0, 1.0]}, "error (%)", out / "lc.png")
    slab = ase.Atoms("Si2", positions=[(0, 0, 5), (2, 2, 6)], cell=[4, 4, 12], pbc=True)
    image = np.random.default_rng(0).random((8, 8))
    stm_image_plot(out / "image.png", image, slab, colorbar_label="z (Å)", title="one")
    stm_comparison_plot(out / "both.png", image, image.T, slab, colorbar_label="z", title="two")
    print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
    """
)


def test_drawing_figures_does_not_switch_the_matplotlib_backend(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _DRAW, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pdf", "False"]
    for name in ("parity", "lc", "image", "both"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
