"""Validation scorers: what else than the validation loss may choose among ridge strengths.

Training knows no application. A scorer (e.g. the STM image score of :mod:`rhocore.stm`)
is a class with a ``name``, its own pydantic ``Options`` and a constructor taking the
dataset, the validation indices and those options; the layer that knows the scorers hands
them to training as a :class:`Scorers` catalogue. A configuration picks one with
``training.ridge_selection: <name>`` and gives its options as
``training.ridge_selection_options``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import ValidationError

from rhocore.descriptors.features import LambdaSoap
from rhocore.errors import InputError, did_you_mean
from rhocore.models.base import Model
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import Registry

#: ``training.ridge_selection`` that keeps the strength of lowest validation loss.
LOSS = "loss"


class ValidationScore(Protocol):
    """Scores of a trained model on the validation structures; the lowest "score" wins."""

    def __call__(self, model: Model, descriptor: LambdaSoap) -> dict[str, float]: ...


class ValidationScorer(Protocol):
    """A class of validation scores, chosen by ``name`` and configured by its ``Options``."""

    name: ClassVar[str]
    Options: ClassVar[type[PluginOptions]]

    def __call__(
        self,
        dataset_path: Path,
        indices: list[int],
        options: Any,
        registry: Registry | None = None,
    ) -> ValidationScore: ...


class Scorers:
    """The validation scorers a run may choose from, by name."""

    def __init__(self, scorers: Iterable[ValidationScorer]):
        self._by_name = {scorer.name: scorer for scorer in scorers}
        if LOSS in self._by_name:
            raise ValueError(f"a validation scorer cannot be named '{LOSS}'")

    def names(self) -> list[str]:
        """'loss' and every scorer's name."""
        return [LOSS, *self._by_name]

    def get(self, name: str) -> ValidationScorer:
        """The scorer ``name``; an InputError listing the known names otherwise."""
        try:
            return self._by_name[name]
        except KeyError:
            raise InputError(
                f"training.ridge_selection: unknown choice '{name}'; choose one of "
                f"{', '.join(self.names())}.{did_you_mean(name, self.names())}"
            ) from None

    def options(self, name: str, options: dict[str, Any]) -> PluginOptions | None:
        """``options`` validated by scorer ``name``'s ``Options``; None for 'loss'."""
        if name == LOSS:
            return None
        try:
            return self.get(name).Options.model_validate(options)
        except ValidationError as error:
            problems = "; ".join(
                f"training.ridge_selection_options.{'.'.join(map(str, item['loc']))}: {item['msg']}"
                for item in error.errors()
            )
            raise InputError(f"invalid options of ridge_selection '{name}': {problems}") from None

    def build(
        self,
        name: str,
        options: dict[str, Any],
        dataset_path: Path,
        indices: list[int],
        registry: Registry | None = None,
    ) -> ValidationScore | None:
        """The score ``name`` of the validation entries ``indices``; None for 'loss'."""
        validated = self.options(name, options)
        if validated is None:
            return None
        return self.get(name)(Path(dataset_path), indices, validated, registry)
