"""The prediction path: features and model run in pieces of atoms give the one-piece
prediction, eager and scripted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.models.atomistic import CoefficientModel, output_name, predict_coefficients
from rhocore.models.linear.model import LinearModel
from rhocore.qc.basis import BasisLayout
from rhocore.testing.models import random_waters

LAYOUT = BasisLayout({8: (3, 2, 1), 1: (2, 1)})
OPTIONS = DescriptorOptions(cutoff=3.5, max_radial=2, max_angular=2)


@pytest.mark.parametrize("scripted", [False, True])
def test_pieces_predict_what_one_piece_predicts(scripted):
    descriptor = LambdaSoap(OPTIONS, LAYOUT, [1, 8])
    torch.manual_seed(0)
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes()).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    frames = random_waters(2, seed=3, molecules=3)  # 6 O and 12 H atoms

    def predicted(piece_atoms: int) -> list[np.ndarray]:
        module = CoefficientModel(descriptor.module, model, output_name("test"), piece_atoms)
        if scripted:
            module = torch.jit.script(module)
        return predict_coefficients(module, frames, LAYOUT, OPTIONS.cutoff)

    for pieces, whole in zip(predicted(2), predicted(64), strict=True):
        np.testing.assert_allclose(pieces, whole, rtol=0, atol=1e-13)
