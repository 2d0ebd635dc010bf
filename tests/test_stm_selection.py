"""Choosing the ridge strength on STM images: what it refuses, before any training."""

from __future__ import annotations

import pytest

from rhocore.data.dataset import DatasetWriter
from rhocore.stm.selection import StmImageScore
from rhocore.testing.datasets import synthetic_entry, synthetic_metadata
from rhocore.training.trainer import StmSelectionOptions


def test_image_selection_refuses_data_that_are_not_an_ildos_and_names_the_file(tmp_path):
    path = tmp_path / "homo.h5"
    with DatasetWriter(path, synthetic_metadata()) as writer:
        writer.write(synthetic_entry(0))
    with pytest.raises(ValueError, match=rf"STM images of the data in {path}: .* not an ILDOS"):
        StmImageScore(path, [0], StmSelectionOptions())


def test_image_selection_without_validation_structures_says_how_to_get_them(tmp_path):
    with pytest.raises(ValueError, match="split.validation_fraction > 0"):
        StmImageScore(tmp_path / "any.h5", [], StmSelectionOptions())
