"""How each puzzle family is drawn: grid shape, a colour and a label per token, and the visible region.

One description serves both the web page (sent as JSON by the server) and the matplotlib PNG, so the
two always agree. Token encodings are the dataset builders' (formats §2):

    sudoku  PAD 0, blank 1, digit d -> d + 1; an N x N board has vocab N + 2 and seq_len N^2
    maze    PAD 0, '#' 1 wall, ' ' 2 free, 'S' 3 start, 'G' 4 goal, 'o' 5 path; 30 x 30
    arc     PAD 0, EOS 1, colour c -> c + 2; a 30 x 30 canvas with the grid at its top-left
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

TASKS = ("sudoku", "maze", "arc", "unknown")
IGNORE_LABEL = -100

# The ARC colours everyone uses (the ARC-AGI testing interface).
ARC_COLOURS = ("#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25")
PAD_COLOUR = "#f2f2f2"


@dataclass(frozen=True)
class TokenStyle:
    colour: str         # cell background
    text: str = ""      # drawn in the cell
    ink: str = "#111111"


@dataclass(frozen=True)
class TaskStyle:
    task: str
    rows: int
    cols: int
    tokens: dict[int, TokenStyle]
    box: tuple[int, int] | None = None          # Sudoku box (rows, cols): thicker lines between boxes
    notes: dict[str, Any] = field(default_factory=dict)

    def style(self, token: int) -> TokenStyle:
        return self.tokens.get(int(token), TokenStyle("#cccccc", str(int(token))))

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "rows": self.rows, "cols": self.cols, "box": self.box,
                "tokens": {str(k): asdict(v) for k, v in self.tokens.items()}, **self.notes}


def sudoku_box(n: int) -> tuple[int, int]:
    """Box shape of an n x n Sudoku: the most square (r, c) with r * c = n and r <= c (6 -> 2 x 3)."""
    r = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return r, n // r


def _square_side(seq_len: int) -> int | None:
    side = math.isqrt(seq_len)
    return side if side * side == seq_len else None


def detect_task(seq_len: int, vocab_size: int, *hints: str | None) -> str:
    """The puzzle family: the first known hint (manifest builder, predictions' task), else from the sizes.

    A hint names a family when it starts with its name (builders such as "sudoku-generated").
    """
    for hint in hints:
        for task in ("sudoku", "maze", "arc"):
            if isinstance(hint, str) and hint.startswith(task):
                return task
    side = _square_side(seq_len)
    if side is not None and vocab_size == side + 2 and side >= 4:
        return "sudoku"
    if seq_len == 900 and vocab_size == 6:
        return "maze"
    if seq_len == 900 and vocab_size == 12:
        return "arc"
    return "unknown"


def task_style(task: str, seq_len: int, vocab_size: int, box: tuple[int, int] | None = None) -> TaskStyle:
    """The drawing of `task`; `box` is a Sudoku's box shape when known (the dataset manifest's --box)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    side = _square_side(seq_len)
    if task == "sudoku":
        if side is None or vocab_size != side + 2:
            raise ValueError(f"a Sudoku needs seq_len = N^2 and vocab = N + 2, got seq_len {seq_len}, vocab {vocab_size}")
        tokens = {0: TokenStyle(PAD_COLOUR), 1: TokenStyle("#ffffff")}
        # Boards over 9 x 9 use letters after 9, as hexadecimal Sudoku does.
        tokens |= {d + 1: TokenStyle("#ffffff", sudoku_symbol(d)) for d in range(1, side + 1)}
        if box is not None and box[0] * box[1] != side:
            raise ValueError(f"a {box[0]}x{box[1]} box does not fit a {side}x{side} Sudoku")
        return TaskStyle("sudoku", side, side, tokens, box=tuple(box) if box else sudoku_box(side))
    if task == "maze":
        if side is None:
            raise ValueError(f"a maze needs a square seq_len, got {seq_len}")
        tokens = {0: TokenStyle(PAD_COLOUR), 1: TokenStyle("#2b2b2b"), 2: TokenStyle("#ffffff"),
                  3: TokenStyle("#2ECC40", "S"), 4: TokenStyle("#FF4136", "G"), 5: TokenStyle("#0074D9")}
        return TaskStyle("maze", side, side, tokens)
    if task == "arc":
        if side is None:
            raise ValueError(f"an ARC canvas needs a square seq_len, got {seq_len}")
        tokens = {0: TokenStyle(PAD_COLOUR), 1: TokenStyle("#d9d9d9", "·", "#666666")}
        tokens |= {c + 2: TokenStyle(colour) for c, colour in enumerate(ARC_COLOURS)}
        return TaskStyle("arc", side, side, tokens)
    rows, cols = (side, side) if side is not None else (1, seq_len)
    greys = np.linspace(0.95, 0.35, max(vocab_size, 2))
    tokens = {t: TokenStyle("#%02x%02x%02x" % ((int(g * 255),) * 3), str(t), "#111111" if g > 0.6 else "#ffffff")
              for t, g in enumerate(greys)}
    return TaskStyle("unknown", rows, cols, tokens)


def sudoku_symbol(digit: int) -> str:
    return str(digit) if digit <= 9 else chr(ord("A") + digit - 10)


def view_box(style: TaskStyle, *sequences: np.ndarray | None) -> tuple[int, int, int, int]:
    """The region to draw, (row0, col0, rows, cols). Whole board except for ARC.

    NOTE: for ARC it is the bounding box of the colour tokens (2..11) of the given sequences (input and
    label), grown by one row and column so the EOS border stays visible. This also fits translated
    training examples, where the semantics §12.2 crop (anchored at the top-left) would not.
    """
    if style.task != "arc":
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
