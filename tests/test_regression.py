"""Fixed-seed regression of every built-in model: the same numbers as when they were recorded.

Each model is built on the battery's small basis and descriptor
(:mod:`rhocore.testing.models`), given seeded parameters, trained for a few Adam steps on
seeded targets, and its predictions on fixed structures are compared with
``tests/data/regression/<model>.json``. The physics of the models is proven elsewhere
(equivariance battery, exactly learnable data, water benchmarks); this test catches any
unintended change of their numbers: a refactor must leave them equal to 1e-10.

After an intended change, rerun with ``RHOCORE_WRITE_REGRESSION=1`` and commit the files
with a message saying why the numbers moved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rhocore.descriptors.features import LambdaSoap
from rhocore.descriptors.tensormaps import tensormap_to_coefficients
from rhocore.plugins.registry import get_registry
from rhocore.testing.models import CHECK_DESCRIPTOR, CHECK_LAYOUT, random_waters

REFERENCES = Path(__file__).parent / "data" / "regression"
CASES = {
    "linear": {},
    "kernel": {},
    "nonlinear": {"hidden_sizes": [8, 8], "activation": "silu"},
}


def seeded_predictions(name: str, options: dict) -> list[list[float]]:
    """Predictions of model ``name`` after a seeded start and five seeded Adam steps."""
    layout = CHECK_LAYOUT
    descriptor = LambdaSoap(CHECK_DESCRIPTOR, layout, layout.species)
    model = get_registry().get("model", name)(options, layout, descriptor.feature_sizes())
    training = random_waters(3, seed=21)
    model.prepare([descriptor.compute(training)])
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in model.parameters():
            shape, dtype = parameter.shape, parameter.dtype
            parameter.copy_(torch.randn(shape, generator=generator, dtype=dtype) * 0.1)
    numbers = [atoms.numbers for atoms in training]
    targets = [
        torch.randn(layout.size(z), generator=generator, dtype=torch.float64) for z in numbers
    ]
    features = descriptor.compute(training)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(5):
        optimizer.zero_grad()
        predicted = tensormap_to_coefficients(model(features), numbers, layout)
        loss = sum(torch.sum((p - t) ** 2) for p, t in zip(predicted, targets, strict=True))
        loss.backward()
        optimizer.step()
    unseen = random_waters(2, seed=22)
    with torch.no_grad():
        output = model(descriptor.compute(unseen))
    vectors = tensormap_to_coefficients(output, [atoms.numbers for atoms in unseen], layout)
    return [vector.numpy().tolist() for vector in vectors]


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_model_predicts_the_recorded_numbers(name):
    predictions = seeded_predictions(name, CASES[name])
    path = REFERENCES / f"{name}.json"
    if os.environ.get("RHOCORE_WRITE_REGRESSION"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"options": CASES[name], "predictions": predictions}))
    recorded = json.loads(path.read_text())
    assert recorded["options"] == CASES[name]
    for got, expected in zip(predictions, recorded["predictions"], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
