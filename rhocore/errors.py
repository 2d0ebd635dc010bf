"""The family of errors that are the user's to fix.

A :class:`RhocoreError` says what is wrong with an input (a config, a file, an option)
and what to do; the ``rhocore`` command prints it as one line without a traceback.
Any other exception is a bug and keeps its traceback. This module imports nothing from
rhocore, so every layer and every plugin can use it.
"""

import difflib
from collections.abc import Iterable


class RhocoreError(Exception):
    """An error in the user's input, shown as one line by the ``rhocore`` command."""


class InputError(RhocoreError, ValueError):
    """An option, argument or file content that cannot be used, and what to give instead."""


class MissingFileError(RhocoreError, FileNotFoundError):
    """A file or folder the user named that does not exist (or not yet: e.g. no model.pt)."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ " Did you mean 'x'?" for the known name closest to ``name``, or "" if none is close."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""
