"""Plugin hooks and the registries of backends, targets and models.

Every QC backend, target field and model architecture reaches rhocore through the
hooks declared here, found through the ``rhocore`` entry-point group. The core's own
models register through the same hooks, as an internal plugin.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Literal

import pluggy

from rhocore.errors import RhocoreError, did_you_mean
from rhocore.plugins.hookspecs import PROJECT, HookSpecs

ENTRY_POINT_GROUP = "rhocore"
#: Modules of the core's own plugins: the models, and the STM validation scorer.
BUILTIN_PLUGINS = ("rhocore.models.builtin", "rhocore.stm.plugin")

Kind = Literal["backend", "target", "model", "scorer"]
KINDS: tuple[Kind, ...] = ("backend", "target", "model", "scorer")

#: Where each well-known plugin name comes from, for the "pip install" hint.
KNOWN_PROVIDERS: dict[tuple[Kind, str], str] = {
    ("backend", "pyscf"): "rhocore-pyscf",
    ("backend", "aims"): "rhocore-aims",
    ("backend", "cclib"): "rhocore-pyscf",
    ("target", "density"): "rhocore-targets",
    ("target", "homo"): "rhocore-targets",
    ("target", "lumo"): "rhocore-targets",
    ("target", "orbital"): "rhocore-targets",
    ("target", "ldos"): "rhocore-targets",
    ("target", "ildos"): "rhocore-targets",
}


class PluginError(RhocoreError, LookupError):
    """A plugin name that is unknown or provided twice."""


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin class and the distribution that provides it."""

    kind: Kind
    name: str
    cls: type
    distribution: str
    version: str


class Registry:
    """Name -> class lookup for backends, targets, models and scorers, built from the hooks."""

    def __init__(self, manager: pluggy.PluginManager):
        self.manager = manager
        self._entries: dict[Kind, dict[str, PluginInfo]] = {kind: {} for kind in KINDS}
        hooks = {
            "backend": manager.hook.rhocore_register_backends,
            "target": manager.hook.rhocore_register_targets,
            "model": manager.hook.rhocore_register_models,
            "scorer": manager.hook.rhocore_register_scorers,
        }
        for kind, hook in hooks.items():
            for impl in hook.get_hookimpls():
                distribution, version = _distribution_of(manager, impl.plugin)
                for cls in impl.function() or []:
                    self._add(PluginInfo(kind, cls.name, cls, distribution, version))

    def _add(self, info: PluginInfo) -> None:
        known = self._entries[info.kind]
        if info.name in known and known[info.name].cls is not info.cls:
            other = known[info.name]
            raise PluginError(
                f"two {info.kind} plugins are named '{info.name}': "
                f"{other.cls.__module__}.{other.cls.__qualname__} from distribution "
                f"'{other.distribution}' and {info.cls.__module__}."
                f"{info.cls.__qualname__} from distribution '{info.distribution}'. "
                "Uninstall one of them or rename one class."
            )
        known[info.name] = info

    def names(self, kind: Kind) -> list[str]:
        """Sorted names of all registered plugins of one kind."""
        return sorted(self._entries[kind])

    def entries(self, kind: Kind) -> list[PluginInfo]:
        """All registered plugins of one kind, sorted by name."""
        return [self._entries[kind][name] for name in self.names(kind)]

    def classes(self, kind: Kind) -> list[type]:
        """The classes of every registered plugin of one kind, sorted by name."""
        return [info.cls for info in self.entries(kind)]

    def info(self, kind: Kind, name: str) -> PluginInfo:
        """The plugin ``name`` of ``kind``, or a :class:`PluginError` that helps the user."""
        try:
            return self._entries[kind][name]
        except KeyError:
            raise PluginError(unknown_name_message(kind, name, self.names(kind))) from None

    def get(self, kind: Kind, name: str) -> type:
        """The class of plugin ``name`` of ``kind``."""
        return self.info(kind, name).cls


def unknown_name_message(kind: Kind, name: str, known: list[str]) -> str:
    """Error text for an unknown plugin name: the known names, a guess, an install hint."""
    message = f"unknown {kind} '{name}'. Known {kind}s: {', '.join(known) or '(none)'}."
    message += did_you_mean(name, known)
    provider = KNOWN_PROVIDERS.get((kind, name))
    if provider:
        message += f" '{name}' is provided by `pip install {provider}`."
    return message


def _distribution_of(manager: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    for loaded, entry_point in manager.list_plugin_distinfo():
        if loaded is plugin:
            return entry_point.project_name, entry_point.version
    module = getattr(plugin, "__name__", type(plugin).__module__).split(".")[0]
    try:
        return module, importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return module, "unknown"


def get_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the core's built-ins and the installed plugins."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(HookSpecs)
    # the core's own plugins, found by name like any entry point
    for module in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module), name=module)
    if load_entry_points:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return manager


def get_registry(manager: pluggy.PluginManager | None = None) -> Registry:
    """Registry over ``manager`` (a fresh one with all installed plugins by default)."""
    return Registry(manager or get_plugin_manager())
