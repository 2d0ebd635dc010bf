"""The density model rhocore-pyscf ships: where it is, and what it covers.

The file is a plain ``model.pt`` (a metatomic model with rhocore's metadata): every rhocore
command that takes a MODEL takes its path, ``rhocore_pyscf.pretrained_model_path()``.
This module loads no torch, so ``import rhocore_pyscf`` stays light.
"""

from __future__ import annotations

from pathlib import Path

from rhocore.api import MissingFileError

#: The folder of the packaged model file (package data of rhocore-pyscf).
PRETRAINED_DIRECTORY = Path(__file__).resolve().parent.parent / "pretrained"
#: The packaged model: the total density of PBE/def2-SVP on def2-universal-jkfit.
PRETRAINED_FILE = "density-pbe-def2svp.pt"
#: How the errors name it.
PRETRAINED_LABEL = "the pretrained density model (PBE/def2-SVP)"


def pretrained_model_path() -> Path:
    """Path of the packaged density model; a :class:`MissingFileError` if it is absent."""
    path = PRETRAINED_DIRECTORY / PRETRAINED_FILE
    if not path.is_file():
        raise MissingFileError(
            f"this rhocore-pyscf installation has no pretrained density model: {path} is "
            "missing. Reinstall rhocore-pyscf from a release that ships it, or pass a model "
            "you trained: initial_guess(mf, 'runs/<name>')"
        )
    return path
