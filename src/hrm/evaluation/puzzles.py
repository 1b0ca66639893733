"""One puzzle for `hrm solve`: read it, check it against the model, encode it, and draw answers.

    Sudoku   a string of N*N characters, digits 1..N and '.' or '0' for blanks (whitespace ignored),
             or a file holding one
    maze     a text file (or a string) of N lines of N characters over "# SG": wall, free, start, goal
             (or one line of N*N characters, as the dataset CSVs hold them)
    ARC      a task JSON file (or dict): {"train": [{"input", "output"}...], "test": [{"input"}...]}

Every error names what is wrong and where (line, character, test input) and, where the model is the
limit, what the model takes. The encodings are the dataset builders' (hrm.data.sudoku, hrm.data.maze,
hrm.data.arc), so a puzzle is tokenised exactly as the model saw its training data.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("sudoku", "maze", "arc")


class PuzzleError(ValueError):
    """A puzzle that cannot be read, or that this model cannot take."""


@dataclass
class Puzzle:
    task: str
    source: str                                  # where it came from, for messages
    tokens: np.ndarray                           # (V, S) model inputs: one row per test input (ARC) or one row
    box: Any = None                              # Sudoku: hrm.data.sudoku_solver.Box
    arc_task: dict[str, Any] | None = None       # ARC: the task JSON
    name: str | None = None                      # ARC: the task name (file stem or "name")
    grids: list[np.ndarray] = field(default_factory=list)   # ARC: the test input grids


# ----------------------------------------------------------------------------------------------------
# Recognising the kind of input

def guess_kind(puzzle: Any) -> str:
    """'arc' for a dict or JSON text, 'maze' for text with walls, S or G, else 'sudoku'."""
    if isinstance(puzzle, dict):
        return "arc"
    text = _read_text(puzzle)[0]
    stripped = text.lstrip()
    if stripped.startswith("{") or str(puzzle).lower().endswith(".json"):
        return "arc"
    if any(ch in text for ch in "#SG"):          # walls, start, goal: never in a Sudoku
        return "maze"
    return "sudoku"


def _read_text(puzzle: Any) -> tuple[str, str]:
    """(text, source): a path's contents, or the string itself."""
    if isinstance(puzzle, Path) or (isinstance(puzzle, str) and "\n" not in puzzle and len(puzzle) < 4096
                                    and _is_file(puzzle)):
        path = Path(puzzle)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as e:
            raise PuzzleError(f"{path}: cannot read the puzzle file: {e}") from None
    if isinstance(puzzle, Path):
        raise PuzzleError(f"{puzzle}: no such puzzle file")
    return str(puzzle), "puzzle"


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------------
# Sudoku

def read_sudoku(puzzle: Any, seq_len: int, box: str | None = None) -> Puzzle:
    from hrm.data.sudoku import SudokuInputError, encode_board, parse_board
    from hrm.data.draw import default_box
    from hrm.data.sudoku_solver import Box

    text, source = _read_text(puzzle)
    side = math.isqrt(seq_len)
    shape = Box.parse(box) if box else default_box(side)
    cells = "".join(text.split())
    if len(cells) != shape.cells:
        raise PuzzleError(f"{source}: a Sudoku of {len(cells)} cells; this model solves {side}x{side} boards "
                          f"({shape.cells} cells: digits 1-{side}, '.' or '0' for blanks)")
    try:
        values = parse_board(cells, shape, where=source)
    except SudokuInputError as e:
        raise PuzzleError(str(e)) from None
    _check_givens(values, shape, source)
    return Puzzle("sudoku", source, encode_board(values)[None].astype(np.int32), box=shape)


def _check_givens(values: np.ndarray, box, source: str) -> None:
    """Two equal digits in a row, column or box make a puzzle without a solution: say where."""
    n = box.size
    board = values.reshape(n, n)
    units = [(f"row {r + 1}", board[r]) for r in range(n)] + [(f"column {c + 1}", board[:, c]) for c in range(n)]
    units += [(f"box {i + 1}", board[r:r + box.rows, c:c + box.cols].reshape(-1))
              for i, (r, c) in enumerate((r, c) for r in range(0, n, box.rows) for c in range(0, n, box.cols))]
    for name, unit in units:
        digits, counts = np.unique(unit[unit > 0], return_counts=True)
        if (counts > 1).any():
            raise PuzzleError(f"{source}: {name} holds the digit {int(digits[counts > 1][0])} more than once")


def sudoku_rows(tokens: np.ndarray, side: int) -> list[str]:
    from hrm.data.sudoku import board_to_string, decode_tokens

    text = board_to_string(decode_tokens(tokens))
    return [text[i * side:(i + 1) * side] for i in range(side)]


def draw_sudoku(tokens: np.ndarray, box) -> str:
    from hrm.data.draw import draw_sudoku as draw
    from hrm.data.sudoku import decode_tokens

    return draw(decode_tokens(tokens), box)


# ----------------------------------------------------------------------------------------------------
# Maze

def read_maze(puzzle: Any, seq_len: int) -> Puzzle:
    from hrm.data.maze import GOAL, PATH, START, MazeInputError, text_to_tokens

    text, source = _read_text(puzzle)
    side = math.isqrt(seq_len)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) == 1 and len(lines[0]) == seq_len:   # one row-major line, as the dataset CSVs hold mazes
        lines = [lines[0][i * side:(i + 1) * side] for i in range(side)]
    if len(lines) != side:
        raise PuzzleError(f"{source}: a maze of {len(lines)} lines; this model solves {side}x{side} mazes "
                          f"({side} lines of {side} characters over '# SG')")
    rows = []
    for number, line in enumerate(lines, start=1):
        if len(line) != side:
            hint = " (an editor may have removed trailing spaces)" if len(line) < side else ""
            raise PuzzleError(f"{source}, line {number}: {len(line)} characters, expected {side}{hint}")
        try:
            rows.append(text_to_tokens(line, where=f"{source}, line {number}"))
        except MazeInputError as e:
            raise PuzzleError(str(e)) from None
    tokens = np.concatenate(rows)
    if (tokens == PATH).any():
        r, c = divmod(int(np.argmax(tokens == PATH)), side)
        raise PuzzleError(f"{source}, line {r + 1}, character {c + 1}: 'o' marks a path cell; give the unsolved maze")
    for token, name in ((START, "S (start)"), (GOAL, "G (goal)")):
        count = int((tokens == token).sum())
        if count != 1:
            raise PuzzleError(f"{source}: a maze needs exactly one {name}, this one has {count}")
    return Puzzle("maze", source, tokens[None].astype(np.int32))


def maze_rows(tokens: np.ndarray) -> list[str]:
    from hrm.data.maze import tokens_to_rows

    return tokens_to_rows(tokens)


# ----------------------------------------------------------------------------------------------------
# ARC

ARC_MAX = 30


def read_arc(puzzle: Any, seq_len: int) -> Puzzle:
    if isinstance(puzzle, dict):
        task, source, name = puzzle, "task", puzzle.get("name")
    else:
        text, source = _read_text(puzzle)
        try:
            task = json.loads(text)
        except json.JSONDecodeError as e:
            raise PuzzleError(f"{source}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
        name = task.get("name") if isinstance(task, dict) else None
        if name is None and source != "puzzle":
            name = Path(source).stem
    if seq_len != ARC_MAX * ARC_MAX:
        raise PuzzleError(f"{source}: an ARC task, but this model takes sequences of {seq_len}, not ARC's 30x30 canvas")
    if not isinstance(task, dict) or not isinstance(task.get("test"), list) or not task["test"]:
        raise PuzzleError(f"{source}: an ARC task is a JSON object with a non-empty \"test\" list of {{\"input\": grid}}")
    for split in ("train", "test"):
        for i, pair in enumerate(task.get(split) or []):
            if not isinstance(pair, dict) or "input" not in pair:
                raise PuzzleError(f"{source}: {split}[{i}] is not an object with an \"input\" grid")
            for key in ("input", "output"):
                if key in pair:
                    check_arc_grid(pair[key], f"{source}: {split}[{i}].{key}")
    grids = [check_arc_grid(pair["input"], f"{source}: test[{i}].input") for i, pair in enumerate(task["test"])]
    return Puzzle("arc", source, np.zeros((0, seq_len), np.int32), arc_task=task, name=name, grids=grids)


def check_arc_grid(grid: Any, where: str) -> np.ndarray:
    from hrm.data.arc import ArcInputError, parse_grid

    try:
        return parse_grid(grid, where)
    except ArcInputError as e:
        raise PuzzleError(f"{e} (this model reads grids of 1x1 to {ARC_MAX}x{ARC_MAX}, its canvas size)"
                          if "larger than" in str(e) else str(e)) from None


def draw_arc(grid: np.ndarray, color: bool = False) -> str:
    from hrm.data.draw import draw_arc_grid

    return draw_arc_grid(np.asarray(grid), color)


# ----------------------------------------------------------------------------------------------------

def read_puzzle(puzzle: Any, task: str, seq_len: int, box: str | None = None) -> Puzzle:
    """Read `puzzle` as a `task` puzzle for a model of `seq_len`; an input of another kind is an error."""
    kind = guess_kind(puzzle)
    if kind != task:
        raise PuzzleError(f"this checkpoint solves {task} puzzles, but the input looks like {_a(kind)} "
                          f"({_describe(kind)}): give {_a(task)} ({_describe(task)}), or a checkpoint trained on {kind}")
    if task == "sudoku":
        return read_sudoku(puzzle, seq_len, box)
    if task == "maze":
        return read_maze(puzzle, seq_len)
    return read_arc(puzzle, seq_len)


def _a(kind: str) -> str:
    return {"arc": "an ARC task", "maze": "a maze", "sudoku": "a Sudoku"}[kind]


def _describe(kind: str) -> str:
    return {"arc": "a task JSON", "maze": "lines over '# SG'", "sudoku": "a string of digits and '.'"}[kind]
