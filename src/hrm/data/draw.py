"""Terminal drawings of puzzles: Sudoku boards with box lines, mazes as text, ARC grids in colour.

`draw_example(kind, inputs, labels, ...)` is what `hrm data show` prints; `hrm solve` reuses the same
functions for a model's prediction. Every function returns a string.
"""
from __future__ import annotations

import math

import numpy as np

from hrm.data import arc, maze, sudoku
from hrm.data.sudoku_solver import Box

# ARC's usual palette (black, blue, red, green, yellow, grey, magenta, orange, sky, maroon) as xterm-256 colours.
ARC_PALETTE_256 = (16, 27, 196, 34, 226, 244, 201, 208, 51, 88)


def side_by_side(blocks: list[str], titles: list[str], gap: int = 4) -> str:
    """Lay out multi-line blocks next to each other, each under its title."""
    columns = [[title] + block.split("\n") for title, block in zip(titles, blocks)]
    widths = [max(_visible_len(line) for line in column) for column in columns]
    height = max(len(column) for column in columns)
    lines = []
    for i in range(height):
        parts = []
        for column, width in zip(columns, widths):
            line = column[i] if i < len(column) else ""
            parts.append(line + " " * (width - _visible_len(line)))
        lines.append((" " * gap).join(parts).rstrip())
    return "\n".join(lines)


def _visible_len(line: str) -> int:
    import re
    return len(re.sub(r"\x1b\[[0-9;]*m", "", line))


def draw_sudoku(values: np.ndarray, box: Box = Box()) -> str:
    """A board of values (0 = blank, shown '.') with lines between the boxes."""
    n = box.size
    grid = np.asarray(values).reshape(n, n)
    horizontal = "+" + "+".join("-" * (2 * box.cols + 1) for _ in range(n // box.cols)) + "+"
    lines = [horizontal]
    for r in range(n):
        cells = []
        for stack in range(n // box.cols):
            chunk = grid[r, stack * box.cols:(stack + 1) * box.cols]
            cells.append(" " + " ".join("." if v == 0 else str(int(v)) for v in chunk) + " ")
        lines.append("|" + "|".join(cells) + "|")
        if (r + 1) % box.rows == 0:
            lines.append(horizontal)
    return "\n".join(lines)


def draw_maze(tokens: np.ndarray) -> str:
    return "\n".join(maze.tokens_to_rows(tokens))


def draw_arc_grid(grid: np.ndarray, color: bool = True) -> str:
    """A colour grid: two-space blocks with background colours, or digits without colour."""
    grid = np.asarray(grid)
    if grid.size == 0:
        return "(empty grid)"
    if not color:
        return "\n".join("".join(str(int(v)) for v in row) for row in grid)
    return "\n".join("".join(f"\x1b[48;5;{ARC_PALETTE_256[int(v)]}m  " for v in row) + "\x1b[0m" for row in grid)


def default_box(n: int) -> Box:
    """The squarest r x c box with r * c = n (r <= c): 9 -> 3x3, 6 -> 2x3, 4 -> 2x2."""
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return Box(rows, n // rows)


def draw_example(kind: str, inputs: np.ndarray, labels: np.ndarray, box: Box | None = None, color: bool = True,
                 prediction: np.ndarray | None = None) -> str:
    """Input, label (and a prediction, if given) of one example, side by side. Token sequences in."""
    blocks, titles = [], ["input", "label"] + (["prediction"] if prediction is not None else [])
    sequences = [inputs, labels] + ([prediction] if prediction is not None else [])
    for seq in sequences:
        seq = np.asarray(seq)
        if kind == "sudoku":
            n = math.isqrt(len(seq))
            blocks.append(draw_sudoku(sudoku.decode_tokens(seq), box or default_box(n)))
        elif kind == "maze":
            blocks.append(draw_maze(seq))
        elif kind == "arc":
            grid = arc.locate_grid(np.where(seq < 0, arc.PAD_ID, seq))
            blocks.append(f"{grid.shape[0]}x{grid.shape[1]}\n" + draw_arc_grid(grid, color))
        else:
            raise ValueError(f"unknown puzzle kind {kind!r}")
    return side_by_side(blocks, titles)
