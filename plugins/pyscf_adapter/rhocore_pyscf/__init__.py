"""rhocore QC backend on PySCF: Kohn-Sham SCF of molecules and cells, RI fits of their fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rhocore_pyscf.backend import PySCFBackend
from rhocore_pyscf.guess.pretrained import pretrained_model_path
from rhocore_pyscf.options import PySCFOptions

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    from pyscf import gto
    from pyscf.scf.hf import SCF

    from rhocore.api import ModelFile


def initial_guess(
    mol: gto.Mole | SCF, model: ModelFile | str | Path | None = None, **options: object
) -> np.ndarray:
    """SCF density matrix of a molecule (or of the SCF ``mf`` it starts, whose grid and
    density-fitting tensors it then reuses) from a trained density model, by default the
    pretrained one: see :func:`rhocore_pyscf.guess.model.initial_guess` (loads torch only
    when called)."""
    from rhocore_pyscf.guess.model import initial_guess as guess

    return guess(mol, model, **options)


__all__ = ["PySCFBackend", "PySCFOptions", "initial_guess", "pretrained_model_path"]
