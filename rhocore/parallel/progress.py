"""Progress bars that redraw on a terminal and write a few plain lines into a log file.

Every progress bar of rhocore and its plugins comes from :func:`progress_bar`. On a
terminal (or in a notebook) it is an ordinary tqdm bar. When the output is a file or a
pipe (a batch job's log), a redrawn bar would fill the log with carriage-return updates,
so the bar writes a whole line only every 10 % of the total, or once a minute when
the steps are slow or the total is unknown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm

#: A log line is written each time this fraction of the total is passed ...
LOG_FRACTION = 0.1
#: ... and at least this often (seconds) while steps complete.
LOG_INTERVAL = 60.0


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: float | None = None,
    unit: str = "it",
    initial: float = 0,
    disable: bool = False,
    file: IO[str] | None = None,
) -> tqdm:
    """A tqdm bar over ``iterable`` (or updated by hand) that suits where output goes.

    ``file`` is the stream written to (default: standard error); the bar redraws when it
    is a terminal or a notebook runs, and writes :class:`LogLines` otherwise.
    """
    stream = sys.stderr if file is None else file
    options = {"desc": desc, "total": total, "unit": unit, "initial": initial, "disable": disable}
    if _interactive(stream):
        return auto_tqdm(iterable, file=file, **options)
    return LogLines(iterable, file=stream, **options)


def _interactive(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal, or a notebook shows the output."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) or "ipykernel" in sys.modules


class LogLines(tqdm):
    """A tqdm bar that writes one full line per :data:`LOG_FRACTION` or :data:`LOG_INTERVAL`.

    Nothing is written before the first step is done (a command that fails at once shows
    only its error); the last line says how the work ended. No carriage returns, so a log
    file reads top to bottom.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._logged_n: float | None = None
        self._logged_t = time.monotonic()
        # look at every step: display() decides what is written
        super().__init__(*args, mininterval=0.0, miniters=1, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Write the bar as one line when a step of the total or a minute has passed."""
        if self._logged_n is None:  # the bar's first display, before any work is done
            self._logged_n = self.n
            return False
        if msg is not None or not self._due():
            return False
        self._write()
        return True

    def _due(self) -> bool:
        if self.n == self._logged_n:
            return False
        if time.monotonic() - self._logged_t >= LOG_INTERVAL:
            return True
        if not self.total:
            return False
        step = LOG_FRACTION * self.total
        return self.n >= self.total or self.n // step > self._logged_n // step

    def _write(self) -> None:
        self._logged_n, self._logged_t = self.n, time.monotonic()
        self.fp.write(self.__str__().strip() + "\n")
        self.fp.flush()

    def close(self) -> None:
        """Write the last count (when not written yet) and stop, adding no blank line."""
        if not self.disable and self._logged_n is not None and self.n != self._logged_n:
            self._write()
        self.leave = False
        super().close()
