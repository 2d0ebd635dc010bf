"""Checks every plugin class passes: a name and a strict, documented Options model."""

from __future__ import annotations

from rhocore.plugins.options import PluginOptions


def check_plugin_class(cls: type) -> None:
    """A ``name`` and an ``Options`` model that forbids unknown fields and documents each."""
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__name__} has no string class attribute 'name'"
    assert issubclass(cls.Options, PluginOptions), (
        f"{cls.__name__}.Options must derive from rhocore.qc.backend.PluginOptions"
    )
    assert cls.Options.model_config.get("extra") == "forbid", (
        f"{cls.__name__}.Options must reject unknown fields (extra='forbid')"
    )
    assert cls.Options.__doc__, f"{cls.__name__}.Options needs a docstring"
    undocumented = [
        field for field, info in cls.Options.model_fields.items() if not info.description
    ]
    assert not undocumented, (
        f"{cls.__name__}.Options fields {undocumented} have no description; say what each "
        "does and its unit"
    )
