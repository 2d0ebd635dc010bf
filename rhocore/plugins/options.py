"""The base of every plugin's validated ``Options``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PluginOptions(BaseModel):
    """Base of every plugin's ``Options``: unknown fields and NaN or infinite numbers are
    errors, not ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
