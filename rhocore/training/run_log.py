"""The log of a training run: what training logs, and ``train.log`` in the run directory.

Training's modules log through :data:`log` and :data:`epoch_log`, so that
:func:`logging_into` sends all of their lines to one file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from rhocore.training import distributed

LOG_FILE = "train.log"

log = logging.getLogger(__name__)
#: Per-epoch lines go to ``train.log`` only; the progress bar shows them on the terminal.
epoch_log = logging.getLogger(f"{__name__}.epochs")
epoch_log.propagate = False


@contextlib.contextmanager
def logging_into(run_dir: Path) -> Iterator[None]:
    """Send training's log lines (per-epoch ones included) to ``run_dir/train.log``."""
    if not distributed.is_main():
        yield
        return
    handler = logging.FileHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    for logger in (log, epoch_log):
        logger.addHandler(handler)
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger in (log, epoch_log):
            logger.removeHandler(handler)
        handler.close()
