"""The metric loss against a direct NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhocore.training.loss import metric_loss, metric_loss_per_structure


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = [5, 9, 3]
    predictions = [rng.normal(size=n) for n in sizes]
    references = [rng.normal(size=n) for n in sizes]
    metrics = []
    for n in sizes:
        a = rng.normal(size=(n, n))
        metrics.append(a @ a.T + n * np.eye(n))
    return predictions, references, metrics


def _torch(arrays):
    return [torch.tensor(a) for a in arrays]


def test_loss_equals_numpy_quadratic_form():
    predictions, references, metrics = _problem()
    expected = [
        (p - r) @ s @ (p - r) for p, r, s in zip(predictions, references, metrics, strict=True)
    ]
    per_structure = metric_loss_per_structure(
        _torch(predictions), _torch(references), _torch(metrics)
    )
    np.testing.assert_allclose(per_structure.numpy(), expected, rtol=1e-13)
    total = metric_loss(_torch(predictions), _torch(references), _torch(metrics))
    assert total.item() == pytest.approx(sum(expected), rel=1e-13)


def test_gradient_is_two_s_delta():
    predictions, references, metrics = _problem(1)
    leaves = [p.requires_grad_(True) for p in _torch(predictions)]
    metric_loss(leaves, _torch(references), _torch(metrics)).backward()
    for leaf, p, r, s in zip(leaves, predictions, references, metrics, strict=True):
        np.testing.assert_allclose(leaf.grad.numpy(), 2 * s @ (p - r), rtol=1e-12)


def test_mismatched_shapes_name_the_structure():
    predictions, references, metrics = _problem()
    metrics[1] = metrics[1][:4, :4]
    with pytest.raises(ValueError, match="structure 1"):
        metric_loss(_torch(predictions), _torch(references), _torch(metrics))
    with pytest.raises(ValueError, match="one of each per structure"):
        metric_loss(_torch(predictions), _torch(references[:2]), _torch(metrics))
