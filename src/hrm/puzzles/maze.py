"""Mazes: an N x N board, PAD 0, '#' 1 wall, ' ' 2 free, 'S' 3 start, 'G' 4 goal, 'o' 5 path (formats §2).

    read     a text file (or a string) of N lines of N characters over "# SG": wall, free, start, goal
             (or one line of N*N characters, as the dataset CSVs hold them)
    check    the shortest path from S to G, as the dataset labels mark it (hrm.data.maze.solve_maze)
    augment  the eight dihedral transforms (hrm.data.transforms)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hrm.data import maze as maze_data
from hrm.puzzles.base import PAD_COLOUR, Family, Puzzle, PuzzleError, TaskStyle, TokenStyle, read_text, square_side


@dataclass
class MazeAugmenter:
    seq_len: int
    vocab_size: int

    def draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        from hrm.data.transforms import NUM_DIHEDRAL, dihedral_transform

        side = math.isqrt(self.seq_len)
        cells = np.arange(self.seq_len).reshape(side, side)
        tids = rng.integers(1, NUM_DIHEDRAL, size=count)        # never the identity: that is version 0
        mapping = np.stack([dihedral_transform(cells, int(t)).reshape(-1) for t in tids])
        return mapping, np.tile(np.arange(self.vocab_size), (count, 1))


class Maze(Family):
    name = "maze"
    a_puzzle = "a maze"
    input_hint = "lines over '# SG'"

    def fits(self, seq_len: int, vocab_size: int) -> bool:
        return vocab_size == maze_data.VOCAB_SIZE and square_side(seq_len) is not None

    def looks_like(self, puzzle: Any, text: str) -> bool:
        return not isinstance(puzzle, dict) and not text.lstrip().startswith("{") and any(ch in text for ch in "#SG")

    def decode(self, tokens: np.ndarray, box=None) -> list[str]:
        return maze_data.tokens_to_rows(np.asarray(tokens))

    def encode(self, grid: Any, box=None) -> np.ndarray:
        rows = grid if isinstance(grid, list) else str(grid).splitlines()
        return np.concatenate([maze_data.text_to_tokens(row) for row in rows]).astype(np.int32)

    def draw(self, grid: Any, box=None) -> str:
        return "\n".join(grid)

    def style(self, seq_len: int, vocab_size: int, box: tuple[int, int] | None = None) -> TaskStyle:
        side = square_side(seq_len)
        if side is None:
            raise ValueError(f"a maze needs a square seq_len, got {seq_len}")
        tokens = {0: TokenStyle(PAD_COLOUR), 1: TokenStyle("#2b2b2b"), 2: TokenStyle("#ffffff"),
                  3: TokenStyle("#2ECC40", "S"), 4: TokenStyle("#FF4136", "G"), 5: TokenStyle("#0074D9")}
        return TaskStyle("maze", side, side, tokens)

    def read(self, puzzle: Any, seq_len: int, box: str | None = None) -> Puzzle:
        from hrm.data.maze import GOAL, PATH, START, MazeInputError, text_to_tokens

        text, source = read_text(puzzle)
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

    def check(self, puzzle: Puzzle, answer: np.ndarray, test_index: int = 0) -> dict[str, Any]:
        """The shortest path from S to G, as the dataset labels mark it; walls, S and G kept."""
        answer = np.asarray(answer)
        label, count = maze_data.solve_maze(puzzle.tokens[0].astype(np.uint8))
        if label is None:
            return {"valid": False, "matches_solver": None, "message": "the maze has no path from S to G"}
        matches = bool(np.array_equal(label.astype(np.int64), answer.astype(np.int64)))
        kept = bool(np.array_equal(np.where(answer == maze_data.PATH, 2, answer), puzzle.tokens[0]))
        if count == 1:
            message = "correct: the marked path is the shortest path from S to G" if matches else \
                "NOT correct: the marked path is not the shortest path from S to G"
        else:
            message = "the maze has several shortest paths; the dataset marks one of them"
        if not kept:
            message += " (and walls, S or G were changed)"
        return {"valid": matches and kept, "matches_solver": matches, "message": message}

    def augmenter(self, seq_len: int, vocab_size: int, box: str | None = None) -> MazeAugmenter:
        if square_side(seq_len) is None:
            raise ValueError(f"seq_len {seq_len} is not a square board")
        return MazeAugmenter(seq_len, vocab_size)


MAZE = Maze()
