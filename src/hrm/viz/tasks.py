"""How each puzzle family is drawn: grid shape, a colour and a label per token, and the visible region.

One description serves both the web page (sent as JSON by the server) and the matplotlib PNG, so the
two always agree; each family's style is its own (hrm.puzzles: `family.style`), an unknown dataset is
drawn in greys. Token encodings are the dataset builders' (formats §2):

    sudoku  PAD 0, blank 1, digit d -> d + 1; an N x N board has vocab N + 2 and seq_len N^2
    maze    PAD 0, '#' 1 wall, ' ' 2 free, 'S' 3 start, 'G' 4 goal, 'o' 5 path; 30 x 30
    arc     PAD 0, EOS 1, colour c -> c + 2; a 30 x 30 canvas with the grid at its top-left
"""
from __future__ import annotations

import math

import numpy as np

from hrm.puzzles import FAMILIES, UNKNOWN, TaskStyle, TokenStyle
from hrm.puzzles.arc import ARC_COLOURS
from hrm.puzzles.sudoku import sudoku_box, symbol as sudoku_symbol

__all__ = ["TASKS", "IGNORE_LABEL", "ARC_COLOURS", "TaskStyle", "TokenStyle", "task_style", "sudoku_box",
           "sudoku_symbol", "view_box"]

TASKS = (*FAMILIES, UNKNOWN)
IGNORE_LABEL = -100


def task_style(task: str, seq_len: int, vocab_size: int, box: tuple[int, int] | None = None) -> TaskStyle:
    """The drawing of `task` (its family's style); `box` is a Sudoku's box shape when known (the manifest's --box)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task in FAMILIES:
        return FAMILIES[task].style(seq_len, vocab_size, box)
    side = math.isqrt(seq_len)
    rows, cols = (side, side) if side * side == seq_len else (1, seq_len)
    greys = np.linspace(0.95, 0.35, max(vocab_size, 2))
    tokens = {t: TokenStyle("#%02x%02x%02x" % ((int(g * 255),) * 3), str(t), "#111111" if g > 0.6 else "#ffffff")
              for t, g in enumerate(greys)}
    return TaskStyle(UNKNOWN, rows, cols, tokens)


def view_box(style: TaskStyle, *sequences: np.ndarray | None) -> tuple[int, int, int, int]:
    """The region to draw, (row0, col0, rows, cols). The whole board unless the style crops (ARC).

    NOTE: for ARC it is the bounding box of the colour tokens (2..11) of the given sequences (input and
    label), grown by one row and column so the EOS border stays visible. This also fits translated
    training examples, where the semantics §12.2 crop (anchored at the top-left) would not.
    """
    if not style.crop:
        return 0, 0, style.rows, style.cols
    mask = np.zeros((style.rows, style.cols), dtype=bool)
    for seq in sequences:
        if seq is not None:
            grid = np.asarray(seq).reshape(style.rows, style.cols)
            mask |= (grid >= 2) & (grid <= 11)
    if not mask.any():
        return 0, 0, style.rows, style.cols
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, c0 = int(rows[0]), int(cols[0])
    r1, c1 = min(int(rows[-1]) + 2, style.rows), min(int(cols[-1]) + 2, style.cols)
    return r0, c0, r1 - r0, c1 - c0
