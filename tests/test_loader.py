"""Data loading for training: batches bounded by atoms, lazy reading in worker processes,
and training on metric blocks giving what training on dense metrics gives.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch.utils.data
from hypothesis import given, settings
from hypothesis import strategies as st
from training_data import LAYOUT, linear_samples, make_descriptor

from rhocore.data.batching import AtomBatchSampler
from rhocore.data.dataset import DatasetWriter
from rhocore.data.loader import StructureData, load_samples
from rhocore.data.samples import Sample
from rhocore.models.linear import LinearModel
from rhocore.qc.metric import BlockMetric
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata
from rhocore.training.options import TrainingOptions
from rhocore.training.trainer import train


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=40),
    budget=st.integers(1, 100),
    seed=st.integers(0, 5),
)
def test_atom_batches_stay_within_the_budget_unless_one_structure_exceeds_it(sizes, budget, seed):
    sampler = AtomBatchSampler(sizes, batch_size=3, batch_atoms=budget, seed=seed)
    sampler.set_epoch(seed + 1)
    batches = list(sampler)
    assert sorted(index for batch in batches for index in batch) == list(range(len(sizes)))
    for batch in batches:
        atoms = sum(sizes[index] for index in batch)
        assert atoms <= budget or len(batch) == 1, (batch, atoms, budget)
    assert len(sampler) == len(batches)


def test_without_an_atom_budget_batches_hold_batch_size_structures_in_seeded_order():
    sampler = AtomBatchSampler([3] * 10, batch_size=4, seed=2)
    sampler.set_epoch(5)
    order = np.random.default_rng([2, 5]).permutation(10).tolist()
    assert list(sampler) == [order[:4], order[4:8], order[8:]]
    sampler.set_epoch(6)
    assert list(sampler) != [order[:4], order[4:8], order[8:]]


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("loader") / "dataset.h5"
    with DatasetWriter(path, synthetic_metadata()) as writer:
        for index in range(6):
            writer.write(synthetic_entry(index, n_molecules=1 + index % 3))
    return path


def test_two_workers_read_what_the_main_process_reads(dataset_path):
    indices = [5, 0, 3, 1]
    main = load_samples(dataset_path, indices, metric_cutoff=3.0)
    workers = load_samples(dataset_path, indices, metric_cutoff=3.0, num_workers=2)
    for one, other, index in zip(main, workers, indices, strict=True):
        expected = synthetic_entry(index, n_molecules=1 + index % 3)
        assert np.array_equal(one.atoms.positions, expected.atoms.positions)
        assert np.array_equal(other.coefficients, expected.fit.coefficients)
        assert isinstance(other.metric, BlockMetric) and other.metric.cutoff == 3.0
        assert np.array_equal(other.metric.values, one.metric.values)
    data = StructureData(dataset_path, range(6))
    sizes = [len(data.dataset.atoms(index)) for index in data.indices]
    sampler = AtomBatchSampler(sizes, batch_size=2, batch_atoms=7, seed=1)
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=sampler, num_workers=2, collate_fn=list
    )
    batches = list(loader)
    assert [len(batch) for batch in batches] == [len(batch) for batch in sampler]
    for batch, chosen in zip(batches, sampler, strict=True):
        assert sum(len(sample.atoms) for sample in batch) <= 7 or len(batch) == 1
        for sample, index in zip(batch, chosen, strict=True):
            assert np.array_equal(sample.metric.to_dense(), data.dataset.overlap(index))


def _as_blocks(samples: list[Sample]) -> list[Sample]:
    return [
        Sample(s.atoms, s.coefficients, BlockMetric.from_dense(s.metric, LAYOUT, s.atoms))
        for s in samples
    ]


def _train(samples, run_dir, **options):
    descriptor = make_descriptor()
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    settings = TrainingOptions(seed=0, ridge_warm_start=False, **options)
    return train(model, descriptor, samples[:10], samples[10:], settings, run_dir, progress=False)


def test_training_on_metric_blocks_follows_training_on_dense_metrics(tmp_path):
    samples = linear_samples(12, seed=5)
    for name, options in {
        "ridge": {"optimizer": "ridge", "ridge_regularizations": [1e-6, 1e-3]},
        "adam": {"epochs": 3, "batch_atoms": 7, "learning_rate": 0.05},
    }.items():
        dense = _train(samples, tmp_path / f"dense-{name}", **options)
        blocks = _train(_as_blocks(samples), tmp_path / f"blocks-{name}", **options)
        for one, other in zip(dense.history, blocks.history, strict=True):
            assert other["train_loss"] == pytest.approx(one["train_loss"], rel=1e-10)
            assert other["validation_loss"] == pytest.approx(one["validation_loss"], rel=1e-10)


def test_a_metric_cutoff_is_applied_and_its_error_logged(tmp_path):
    samples = linear_samples(12, seed=5)
    result = _train(samples, tmp_path, epochs=2, metric_cutoff=1.2)
    full = _train(samples, tmp_path / "full", epochs=2)
    assert result.history[0]["train_loss"] != pytest.approx(full.history[0]["train_loss"])
    log = (tmp_path / "train.log").read_text()
    assert "training metric cut off at 1.2 angstrom: d^T S d changes by" in log
