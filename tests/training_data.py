"""Synthetic training data whose coefficients are an exact linear map of the descriptor."""

from __future__ import annotations

import numpy as np
import torch

from rhocore.data.samples import Sample
from rhocore.descriptors.features import DescriptorOptions, LambdaSoap
from rhocore.models.linear import LinearModel
from rhocore.qc.basis import BasisLayout
from rhocore.testing.models import random_waters
from rhocore.training.trainer import predict

LAYOUT = BasisLayout({8: (3, 2, 1), 1: (2, 1)})
DESCRIPTOR_OPTIONS = DescriptorOptions(cutoff=3.5, max_radial=2, max_angular=2)


def make_descriptor() -> LambdaSoap:
    return LambdaSoap(DESCRIPTOR_OPTIONS, LAYOUT, [1, 8])


def linear_samples(count: int, seed: int = 0) -> list[Sample]:
    """Water molecules, coefficients from a random linear model, random SPD metrics."""
    descriptor = make_descriptor()
    teacher = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in teacher.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    frames = random_waters(count, seed=seed, molecules=1)
    rng = np.random.default_rng(seed)
    samples = []
    for atoms, coefficients in zip(frames, predict(teacher, descriptor, frames), strict=True):
        a = rng.normal(size=(len(coefficients),) * 2)
        metric = a @ a.T / len(coefficients) + np.eye(len(coefficients))
        samples.append(Sample(atoms=atoms, coefficients=coefficients, metric=metric))
    return samples
