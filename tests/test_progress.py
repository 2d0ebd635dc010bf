"""Progress bars write a few whole lines, not redraws, when the output is a log file."""

from __future__ import annotations

import io

from rhocore.parallel.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_thousand_steps_into_a_log_file_are_a_few_lines():
    log = io.StringIO()
    for _ in progress_bar(range(1000), desc="generate", unit="structure", file=log):
        pass
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")
    assert len(lines) == 10
    assert lines[0].startswith("generate:  10%") and "1000/1000" in lines[-1]


def test_a_bar_updated_by_hand_writes_its_last_count_when_closed():
    log = io.StringIO()
    bar = progress_bar(desc="training", total=1000, initial=10, file=log)
    for _ in range(15):
        bar.update(1)
        bar.set_postfix(train="1.0e-03")
    bar.close()
    lines = log.getvalue().splitlines()
    assert lines == [lines[0]] and "25/1000" in lines[0] and "train=1.0e-03" in lines[0]


def test_a_bar_that_fails_before_its_first_step_writes_nothing():
    log = io.StringIO()
    bar = progress_bar(desc="predict", total=2, file=log)
    bar.close()
    assert log.getvalue() == ""


def test_a_terminal_gets_a_redrawn_bar():
    terminal = Terminal()
    for _ in progress_bar(range(1000), desc="steps", file=terminal):
        pass
    assert "\r" in terminal.getvalue()


def test_a_disabled_bar_writes_nothing():
    log = io.StringIO()
    for _ in progress_bar(range(10), desc="steps", disable=True, file=log):
        pass
    assert log.getvalue() == ""
