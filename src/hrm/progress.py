"""One progress bar for the whole package: tqdm on a terminal, a line per interval in a log.

On a terminal tqdm redraws its bar in place. Written to a file or a pipe (`make demo > log`, CI), those
redraws are carriage-return-separated updates, many per second: a ten-minute demo left about 1 MB of them
on one "line". There the bar writes one ordinary line every LOG_INTERVAL seconds instead.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

LOG_INTERVAL = 30.0         # seconds between lines when the output is not a terminal


class _Lines:
    """A file for tqdm that turns each redraw into one line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.strip("\r\n")
        if text.strip():
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(stream: TextIO | None = None, **kwargs: Any):
    """tqdm(**kwargs) on `stream` (default stderr); in a log, one line per LOG_INTERVAL seconds."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    if hasattr(stream, "isatty") and stream.isatty():
        return tqdm(file=stream, dynamic_ncols=True, **kwargs)
    return tqdm(file=_Lines(stream), mininterval=LOG_INTERVAL, maxinterval=LOG_INTERVAL, ncols=100, **kwargs)
