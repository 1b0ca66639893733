"""What every puzzle family shares: the Family interface, a parsed puzzle, drawing styles, augmentation.

A family knows one kind of puzzle end to end, in the dataset builders' token encoding (formats §2):

    fits(seq_len, vocab_size)      whether a dataset of these sizes can hold this family (detection)
    decode(tokens, box) / encode   tokens <-> the family's grid (rows of text, or a colour grid)
    draw(grid, box)                the grid as text, as `hrm solve` prints it
    style(seq_len, vocab, box)     colours and labels per token, as the visualiser and the PNG draw it
    read(puzzle, seq_len, box)     one puzzle for `hrm solve` (a string, a file, a task JSON)
    check(puzzle, answer)          whether an answer solves the puzzle, with a sentence that says why
    augmenter(seq_len, vocab, box) the test-time transforms (semantics §11.2), or an error saying why none

Everything here is NumPy: the families sit with hrm.data, below the models.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class PuzzleError(ValueError):
    """A puzzle that cannot be read, or that this model cannot take."""


@dataclass
class Puzzle:
    task: str                                    # the family's name
    source: str                                  # where it came from, for messages
    tokens: np.ndarray                           # (V, S) model inputs: one row per test input (ARC) or one row
    box: Any = None                              # Sudoku: hrm.data.sudoku_solver.Box
    arc_task: dict[str, Any] | None = None       # ARC: the task JSON
    name: str | None = None                      # ARC: the task name (file stem or "name")
    grids: list[np.ndarray] = field(default_factory=list)   # ARC: the test input grids


# ----------------------------------------------------------------------------------------------------
# Drawing styles (one description for the web page and the PNG, so the two agree)

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
    crop: bool = False                          # draw only the region that holds the puzzle (ARC's canvas)
    givens: bool = False                        # input tokens >= 2 are givens, drawn as such (Sudoku)

    def style(self, token: int) -> TokenStyle:
        return self.tokens.get(int(token), TokenStyle("#cccccc", str(int(token))))

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "rows": self.rows, "cols": self.cols, "box": self.box,
                "tokens": {str(k): asdict(v) for k, v in self.tokens.items()}, **self.notes}


def square_side(seq_len: int) -> int | None:
    side = math.isqrt(seq_len)
    return side if side * side == seq_len else None


# ----------------------------------------------------------------------------------------------------
# Test-time augmentation: a version is a cell permutation and a token relabelling (semantics §11.2)

def apply(tokens: np.ndarray, mapping: np.ndarray, token_map: np.ndarray) -> np.ndarray:
    """version[b, j] = token_map[b, tokens[b, mapping[b, j]]] for (B, S) tokens; -100 labels stay -100."""
    gathered = np.take_along_axis(tokens, mapping, axis=1)
    ignored = gathered < 0
    out = np.take_along_axis(token_map, np.where(ignored, 0, gathered), axis=1)
    return np.where(ignored, gathered, out)


def invert(tokens: np.ndarray, mapping: np.ndarray, token_map: np.ndarray) -> np.ndarray:
    """The inverse of `apply`: original[b, mapping[b, j]] = inverse_token_map[b, version[b, j]]."""
    inverse_map = np.argsort(token_map, axis=1)
    relabelled = np.take_along_axis(inverse_map, np.clip(tokens, 0, token_map.shape[1] - 1), axis=1)
    relabelled = np.where(tokens < 0, tokens, relabelled)
    out = np.empty_like(tokens)
    np.put_along_axis(out, mapping, relabelled, axis=1)
    return out


# ----------------------------------------------------------------------------------------------------
# Reading puzzle text

def read_text(puzzle: Any) -> tuple[str, str]:
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

class Family:
    """One puzzle family; see the module docstring. Subclasses fill in every method."""
    name: str = ""
    a_puzzle: str = ""          # "a Sudoku", for messages
    input_hint: str = ""        # what `hrm solve` takes, for messages
    steps_inline: bool = False  # `hrm solve` prints each step's prediction on its step line (else drawn)
    dataset_versions: bool = False   # the test split holds each puzzle's augmented versions (ARC: pass@k, semantics §12)

    def fits(self, seq_len: int, vocab_size: int) -> bool:
        raise NotImplementedError

    def looks_like(self, puzzle: Any, text: str) -> bool:
        """Whether an input given to `hrm solve` is of this family (no model needed)."""
        raise NotImplementedError

    def decode(self, tokens: np.ndarray, box=None) -> list:
        raise NotImplementedError

    def encode(self, grid: Any, box=None) -> np.ndarray:
        raise NotImplementedError

    def draw(self, grid: Any, box=None) -> str:
        raise NotImplementedError

    def style(self, seq_len: int, vocab_size: int, box: tuple[int, int] | None = None) -> TaskStyle:
        raise NotImplementedError

    def box_shape(self, seq_len: int, box: str | None = None) -> tuple[int, int] | None:
        """(rows, cols) of the boxes the board is drawn in (Sudoku's); None for families without boxes."""
        return None

    def read(self, puzzle: Any, seq_len: int, box: str | None = None) -> Puzzle:
        raise NotImplementedError

    def check(self, puzzle: Puzzle, answer: np.ndarray, test_index: int = 0) -> dict[str, Any]:
        raise NotImplementedError

    def augmenter(self, seq_len: int, vocab_size: int, box: str | None = None):
        """An object with draw(rng, count) -> (mapping (count, S), token_map (count, vocab)); see `apply`."""
        raise ValueError(f"test-time augmentation (tta=K) is for Sudoku and maze datasets; this one is {self.name!r}")

    def __repr__(self) -> str:
        return f"<puzzle family {self.name}>"
