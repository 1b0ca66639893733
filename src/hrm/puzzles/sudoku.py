"""Sudoku: an N x N board, PAD 0, blank 1, digit d -> d + 1 (vocab N + 2, seq_len N^2; formats §2).

    read     a string of N*N characters, digits 1..N and '.' or '0' for blanks (whitespace ignored), or a
             file holding one
    check    the rules and the givens, and the exact solver's answer (hrm.data.sudoku_solver)
    augment  hrm.data.sudoku's symmetries: digit relabelling, band/row and stack/column permutations,
             transposition for square boxes
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hrm.data.draw import default_box
from hrm.data.sudoku_solver import Box
from hrm.puzzles.base import PAD_COLOUR, Family, Puzzle, PuzzleError, TaskStyle, TokenStyle, read_text, square_side


def sudoku_box(n: int) -> tuple[int, int]:
    """Box shape of an n x n Sudoku: the most square (r, c) with r * c = n and r <= c (6 -> 2 x 3)."""
    box = default_box(n)
    return box.rows, box.cols


def parse_box(text: object) -> tuple[int, int] | None:
    """The Sudoku builder's --box argument ("2x3": boxes of 2 rows and 3 columns), if it is one."""
    if isinstance(text, str) and text.lower().count("x") == 1:
        rows, cols = text.lower().split("x")
        if rows.isdigit() and cols.isdigit():
            return int(rows), int(cols)
    return None


def symbol(digit: int) -> str:
    """Boards over 9 x 9 use letters after 9, as hexadecimal Sudoku does."""
    return str(digit) if digit <= 9 else chr(ord("A") + digit - 10)


def _box(box, side: int) -> Box:
    if isinstance(box, Box):
        return box
    if isinstance(box, str):
        return Box.parse(box)
    if isinstance(box, (tuple, list)):
        return Box(*box)
    return default_box(side)


@dataclass
class SudokuAugmenter:
    vocab_size: int
    box: Box

    def draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        from hrm.data.sudoku import random_symmetries

        mapping, digit_map = random_symmetries(self.box, count, rng)
        # Tokens are value + 1 (PAD 0 stays 0, blank 1 stays 1); labels and inputs share the map.
        token_map = np.tile(np.arange(self.vocab_size), (count, 1))
        token_map[:, 1:digit_map.shape[1] + 1] = digit_map + 1
        return mapping, token_map


class Sudoku(Family):
    name = "sudoku"
    a_puzzle = "a Sudoku"
    input_hint = "a string of digits and '.'"
    steps_inline = True

    def fits(self, seq_len: int, vocab_size: int) -> bool:
        side = square_side(seq_len)
        return side is not None and side >= 4 and vocab_size == side + 2

    def looks_like(self, puzzle: Any, text: str) -> bool:
        return not isinstance(puzzle, dict) and not any(ch in text for ch in "#SG{")

    def decode(self, tokens: np.ndarray, box=None) -> list[str]:
        from hrm.data.sudoku import board_to_string, decode_tokens

        side = math.isqrt(len(tokens))
        text = board_to_string(decode_tokens(np.asarray(tokens)))
        return [text[i * side:(i + 1) * side] for i in range(side)]

    def encode(self, grid: Any, box=None) -> np.ndarray:
        from hrm.data.sudoku import encode_board, parse_board

        cells = "".join(grid) if isinstance(grid, list) else "".join(str(grid).split())
        side = math.isqrt(len(cells))
        return encode_board(parse_board(cells, _box(box, side))).astype(np.int32)

    def draw(self, grid: Any, box=None) -> str:
        from hrm.data.draw import draw_sudoku

        cells = "".join(grid)
        values = np.array([0 if ch == "." else int(ch, 36) for ch in cells])
        return draw_sudoku(values, _box(box, math.isqrt(len(cells))))

    def style(self, seq_len: int, vocab_size: int, box: tuple[int, int] | None = None) -> TaskStyle:
        side = square_side(seq_len)
        if side is None or vocab_size != side + 2:
            raise ValueError(f"a Sudoku needs seq_len = N^2 and vocab = N + 2, got seq_len {seq_len}, vocab {vocab_size}")
        tokens = {0: TokenStyle(PAD_COLOUR), 1: TokenStyle("#ffffff")}
        tokens |= {d + 1: TokenStyle("#ffffff", symbol(d)) for d in range(1, side + 1)}
        if box is not None and box[0] * box[1] != side:
            raise ValueError(f"a {box[0]}x{box[1]} box does not fit a {side}x{side} Sudoku")
        return TaskStyle("sudoku", side, side, tokens, box=tuple(box) if box else sudoku_box(side), givens=True)

    def box_shape(self, seq_len: int, box: str | None = None) -> tuple[int, int]:
        """The dataset's recorded box ("2x3"), else the squarest that fits."""
        return parse_box(box) or sudoku_box(math.isqrt(seq_len))

    def read(self, puzzle: Any, seq_len: int, box: str | None = None) -> Puzzle:
        from hrm.data.sudoku import SudokuInputError, encode_board, parse_board

        text, source = read_text(puzzle)
        side = math.isqrt(seq_len)
        shape = _box(box, side)
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

    def check(self, puzzle: Puzzle, answer: np.ndarray, test_index: int = 0) -> dict[str, Any]:
        """The rules and the givens, and the exact solver's answer."""
        from hrm.data.sudoku import decode_tokens
        from hrm.data.sudoku_solver import solve as exact_solve

        box = puzzle.box or default_box(math.isqrt(puzzle.tokens.shape[1]))
        n = box.size
        values = decode_tokens(np.asarray(answer)).astype(np.int64)
        givens = decode_tokens(puzzle.tokens[0]).astype(np.int64)
        board = values.reshape(n, n)
        digits = set(range(1, n + 1))
        valid = all(set(u.tolist()) == digits for _, u in _units(board, box)) and bool(((givens == 0) | (givens == values)).all())
        reference = exact_solve(givens.astype(np.int8), box)
        matches = reference.count >= 1 and bool(np.array_equal(reference.solution.astype(np.int64), values))
        message = ("valid: every row, column and box holds each digit once and the givens are kept" if valid
                   else "NOT valid: " + _problem(board, givens, box))
        if reference.count == 1:
            message += "; " + ("matches the unique solution" if matches else "differs from the unique solution (exact solver)")
        elif reference.count == 0:
            message += "; the puzzle has no solution (exact solver)"
        else:
            message += "; the puzzle has several solutions (exact solver)"
        return {"valid": valid, "matches_solver": matches if reference.count == 1 else None, "message": message}

    def augmenter(self, seq_len: int, vocab_size: int, box: str | None = None) -> SudokuAugmenter:
        """A Sudoku's box shape comes from its manifest, else from its size."""
        side = square_side(seq_len)
        if side is None:
            raise ValueError(f"seq_len {seq_len} is not a square board")
        shape = _box(box, side)
        if shape.size != side:
            raise ValueError(f"box {shape} does not fit a {side}x{side} board")
        return SudokuAugmenter(vocab_size, shape)


def _units(board: np.ndarray, box: Box) -> list[tuple[str, np.ndarray]]:
    n = box.size
    units = [(f"row {r + 1}", board[r]) for r in range(n)] + [(f"column {c + 1}", board[:, c]) for c in range(n)]
    units += [(f"box {i + 1}", board[r:r + box.rows, c:c + box.cols].reshape(-1))
              for i, (r, c) in enumerate((r, c) for r in range(0, n, box.rows) for c in range(0, n, box.cols))]
    return units


def _check_givens(values: np.ndarray, box: Box, source: str) -> None:
    """Two equal digits in a row, column or box make a puzzle without a solution: say where."""
    for name, unit in _units(values.reshape(box.size, box.size), box):
        digits, counts = np.unique(unit[unit > 0], return_counts=True)
        if (counts > 1).any():
            raise PuzzleError(f"{source}: {name} holds the digit {int(digits[counts > 1][0])} more than once")


def _problem(board: np.ndarray, givens: np.ndarray, box: Box) -> str:
    if ((givens != 0) & (givens != board.reshape(-1))).any():
        return "a given was changed"
    for name, unit in _units(board, box):
        if sorted(unit.tolist()) != list(range(1, box.size + 1)):
            return f"{name} does not hold each digit once"
    return "a unit does not hold each digit once"


SUDOKU = Sudoku()
