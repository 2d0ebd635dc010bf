"""The metric as atom-pair blocks: the same loss and gradient as the dense matrix, and a
distance cutoff whose error is the one a dense computation with the far pairs removed gives.
"""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rhocore.cli import cli
from rhocore.data.dataset import Dataset, DatasetWriter
from rhocore.qc.basis import BasisLayout
from rhocore.qc.metric import BlockMetric
from rhocore.testing.datasets import SYNTHETIC_LAYOUT, synthetic_entry, synthetic_metadata
from rhocore.training.loss import TorchBlockMetric, metric_loss, metric_loss_per_structure

DATA = Path(__file__).parent / "data"
#: s functions only: two on H, three on O, with these Gaussian exponents (bohr^-2).
S_LAYOUT = BasisLayout({1: (2,), 8: (3,)})
EXPONENTS = {1: [0.4, 2.0], 8: [0.15, 0.9, 5.0]}


def gaussian_overlap(atoms: ase.Atoms) -> np.ndarray:
    """Overlap of normalised s Gaussians on the atoms: a metric that decays with distance."""
    centres, exponents = [], []
    for position, z in zip(atoms.positions / ase.units.Bohr, atoms.numbers, strict=True):
        for alpha in EXPONENTS[int(z)]:
            centres.append(position)
            exponents.append(alpha)
    centres, a = np.array(centres), np.array(exponents)
    squared = np.sum((centres[:, None] - centres[None]) ** 2, axis=-1)
    total = a[:, None] + a[None]
    return (2 * np.sqrt(np.outer(a, a)) / total) ** 1.5 * np.exp(-np.outer(a, a) / total * squared)


def water_chain(molecules: int = 6, spacing: float = 2.8) -> ase.Atoms:
    rng = np.random.default_rng(7)
    water = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    positions = np.concatenate([water + [spacing * m, 0.0, 0.0] for m in range(molecules)])
    return ase.Atoms(
        "OH2" * molecules, positions=positions + 0.05 * rng.normal(size=(3 * molecules, 3))
    )


def random_problem(seed: int = 0):
    """A 4-water synthetic entry (random SPD metric), a prediction and its reference."""
    entry = synthetic_entry(seed, n_molecules=4)
    rng = np.random.default_rng(seed + 100)
    reference = entry.fit.coefficients
    prediction = reference + rng.normal(size=reference.shape)
    return entry, prediction, reference


def test_blocks_without_cutoff_give_the_dense_matrix_and_loss():
    entry, prediction, reference = random_problem()
    blocks = BlockMetric.from_dense(entry.fit.metric, SYNTHETIC_LAYOUT, entry.atoms)
    assert len(blocks.pairs) == 12 * 13 // 2
    assert np.array_equal(blocks.to_dense(), entry.fit.metric)
    assert np.array_equal(TorchBlockMetric.from_blocks(blocks).to_dense(), entry.fit.metric)
    delta = prediction - reference
    dense_loss = delta @ entry.fit.metric @ delta
    assert blocks.quadratic(delta) == pytest.approx(dense_loss, rel=1e-12)
    dense = metric_loss_per_structure(
        [torch.tensor(prediction)], [torch.tensor(reference)], [torch.tensor(entry.fit.metric)]
    )
    blockwise = metric_loss_per_structure(
        [torch.tensor(prediction)],
        [torch.tensor(reference)],
        [TorchBlockMetric.from_blocks(blocks)],
    )
    assert blockwise.item() == pytest.approx(dense.item(), rel=1e-12, abs=0)


def test_blockwise_gradient_equals_the_dense_gradient():
    entry, prediction, reference = random_problem(1)
    blocks = BlockMetric.from_dense(entry.fit.metric, SYNTHETIC_LAYOUT, entry.atoms)
    gradients = []
    for metric in (torch.tensor(entry.fit.metric), TorchBlockMetric.from_blocks(blocks)):
        leaf = torch.tensor(prediction, requires_grad=True)
        metric_loss([leaf], [torch.tensor(reference)], [metric]).backward()
        gradients.append(leaf.grad.numpy())
    np.testing.assert_allclose(gradients[1], gradients[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        gradients[0], 2 * entry.fit.metric @ (prediction - reference), rtol=1e-12
    )


def test_cutoff_error_is_that_of_the_dense_metric_without_far_pairs_and_decreases():
    atoms = water_chain()
    metric = gaussian_overlap(atoms)
    coefficients = np.random.default_rng(3).uniform(0.5, 1.5, len(metric))
    full = BlockMetric.from_dense(metric, S_LAYOUT, atoms, coefficients=coefficients)
    atom_of = S_LAYOUT.function_table(atoms.numbers)[:, 0]
    distances = atoms.get_all_distances()[np.ix_(atom_of, atom_of)]
    errors = []
    for cutoff in (1.5, 3.0, 5.0, 8.0):
        cut = full.truncated(cutoff)
        kept = np.where(distances <= cutoff, metric, 0.0)
        norm = coefficients @ metric @ coefficients
        expected = abs(coefficients @ kept @ coefficients / norm - 1)
        assert cut.cutoff_error(coefficients) == pytest.approx(expected, rel=1e-10)
        np.testing.assert_array_equal(cut.to_dense(), kept)
        errors.append(cut.cutoff_error(coefficients))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[0] > 1e-2 and full.truncated(20.0).cutoff_error(coefficients) < 1e-14
    assert len(full.truncated(3.0).pairs) < len(full.pairs) / 2


def test_periodic_pairs_are_cut_by_their_minimum_image_distance():
    atoms = ase.Atoms("H2O", positions=[[0.3, 5, 5], [9.7, 5, 5], [5, 5, 5]], cell=[10] * 3)
    metric = gaussian_overlap(atoms)
    open_pairs = BlockMetric.from_dense(metric, S_LAYOUT, atoms, cutoff=2.0).pairs.tolist()
    atoms.pbc = [True, False, False]
    periodic = BlockMetric.from_dense(metric, S_LAYOUT, atoms, cutoff=2.0).pairs.tolist()
    assert [0, 1] in periodic and [0, 1] not in open_pairs
    assert sorted(open_pairs) == [[0, 0], [1, 1], [2, 2]]


def test_the_dataset_reads_the_pairs_within_a_cutoff(tmp_path):
    path = tmp_path / "dataset.h5"
    entry = synthetic_entry(0, n_molecules=4)
    with DatasetWriter(path, synthetic_metadata()) as writer:
        writer.write(entry)
    dataset = Dataset(path)
    metric, coefficients = entry.fit.metric, entry.fit.coefficients
    expected = BlockMetric.from_dense(
        metric, SYNTHETIC_LAYOUT, entry.atoms, coefficients=coefficients
    )
    for cutoff in (None, 0.5, 3.5, 100.0):
        read = dataset.metric_blocks(0, cutoff)
        wanted = expected.truncated(cutoff)
        assert np.array_equal(read.pairs, wanted.pairs) and read.cutoff == wanted.cutoff
        assert np.array_equal(read.values, wanted.values)
        assert read.cutoff_error(coefficients) == pytest.approx(
            wanted.cutoff_error(coefficients), rel=1e-12, abs=1e-15
        )
    assert len(dataset.metric_blocks(0, 0.5).pairs) == 12  # atoms with themselves only
    assert np.array_equal(dataset.overlap(0), metric)


def test_a_format_1_dataset_gives_the_blocks_of_its_dense_overlap():
    dataset = Dataset(DATA / "dataset_v1.h5")
    assert dataset.format_version == 1
    dense = dataset.overlap(0)
    blocks = dataset.metric_blocks(0)
    assert np.array_equal(blocks.to_dense(), dense)
    coefficients = dataset.coefficients(0)
    assert blocks.norm == pytest.approx(coefficients @ dense @ coefficients, rel=1e-12)
    assert dataset.metric_blocks(0, 0.5).cutoff_error(coefficients) > 0
    assert np.array_equal(dataset.entry(0).fit.metric, dense)


def test_dataset_info_reports_what_a_metric_cutoff_keeps_and_its_error(tmp_path):
    path = tmp_path / "dataset.h5"
    entries = [synthetic_entry(index, n_molecules=3) for index in range(2)]
    with DatasetWriter(path, synthetic_metadata()) as writer:
        for entry in entries:
            writer.write(entry)
    errors, kept = [], 0
    for entry in entries:
        atom_of = SYNTHETIC_LAYOUT.function_table(entry.atoms.numbers)[:, 0]
        distances = entry.atoms.get_all_distances(mic=True)
        near = distances[np.ix_(atom_of, atom_of)] <= 2.0
        d, metric = entry.fit.coefficients, entry.fit.metric
        errors.append(abs(d @ np.where(near, metric, 0.0) @ d / (d @ metric @ d) - 1))
        kept += np.sum(np.triu(distances <= 2.0))
    result = CliRunner().invoke(cli, ["dataset", "info", str(path), "--metric-cutoff", "2"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "metric cutoff" in line)
    assert line.strip() == (
        f"metric cutoff 2 angstrom keeps {100 * kept / 90:.1f} % of the atom pairs; d^T S d "
        f"changes by {np.mean(errors):.2e} on average, {np.max(errors):.2e} at most (relative)"
    )
