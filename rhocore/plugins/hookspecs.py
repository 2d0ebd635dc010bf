"""The hooks through which plugins reach rhocore: the contract, apart from the manager.

A plugin module marks its functions with :data:`hookimpl` and is found through the
``rhocore`` entry-point group; :mod:`rhocore.plugins.registry` loads it. Every hook is
called once, when the plugin manager is built, except ``rhocore_register_commands``,
which the command line calls when it starts.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "rhocore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The contract between rhocore and its plugins."""

    @hookspec
    def rhocore_register_backends(self) -> list[type]:
        """Return the :class:`rhocore.qc.backend.QCBackend` subclasses this plugin provides.

        Called once when the plugin manager is built; each class needs a unique ``name``.
        """

    @hookspec
    def rhocore_register_targets(self) -> list[type]:
        """Return the :class:`rhocore.qc.target.Target` subclasses this plugin provides."""

    @hookspec
    def rhocore_register_models(self) -> list[type]:
        """Return the :class:`rhocore.models.Model` subclasses this plugin provides."""

    @hookspec
    def rhocore_register_scorers(self) -> list[type]:
        """Return validation scorer classes (a ``name``, an ``Options`` model; see
        :class:`rhocore.training.scorers.ValidationScorer`) that ``training.ridge_selection``
        may name to choose among ridge strengths on the validation structures."""

    @hookspec
    def rhocore_register_commands(self, cli: Any) -> None:
        """Add sub-commands to the ``rhocore`` click group ``cli`` (e.g. ``rhocore aims``)."""
