"""The progress bar in a log: a line per interval, not a redraw per step."""
from __future__ import annotations

import io

from hrm.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_the_bar_writes_whole_lines_and_few_of_them():
    log = io.StringIO()
    bar = progress_bar(stream=log, total=5000, desc="train", unit="step")
    for _ in range(5000):
        bar.update(1)
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3 and "5000/5000" in lines[-1], lines      # start and end, no per-step redraws


def test_on_a_terminal_it_is_tqdms_bar():
    screen = Terminal()
    bar = progress_bar(stream=screen, total=50, desc="train")
    for _ in range(50):
        bar.update(1)
    bar.close()
    assert "\r" in screen.getvalue() and "50/50" in screen.getvalue()

