"""ARC: a colour grid at the top-left of a 30 x 30 canvas, PAD 0, EOS 1, colour c -> c + 2 (formats §2).

    read     a task JSON file (or dict): {"train": [{"input", "output"}...], "test": [{"input"}...]}
    check    the answer matches the task's expected test output, when the task gives one
    augment  none at test time: the dataset's test split already holds each task's augmented versions,
             which evaluation de-augments and votes (semantics §12); `version`/`unversion` are those maps
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hrm.data import arc as arc_data
from hrm.puzzles.base import PAD_COLOUR, Family, Puzzle, PuzzleError, TaskStyle, TokenStyle, read_text, square_side

# The ARC colours everyone uses (the ARC-AGI testing interface).
ARC_COLOURS = ("#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00",
               "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25")
ARC_MAX = arc_data.MAX_GRID


class Arc(Family):
    name = "arc"
    a_puzzle = "an ARC task"
    input_hint = "a task JSON"
    dataset_versions = True

    def fits(self, seq_len: int, vocab_size: int) -> bool:
        return seq_len == arc_data.SEQ_LEN and vocab_size == arc_data.VOCAB_SIZE

    def looks_like(self, puzzle: Any, text: str) -> bool:
        return isinstance(puzzle, dict) or text.lstrip().startswith("{") or str(puzzle).lower().endswith(".json")

    def decode(self, tokens: np.ndarray, box=None) -> list[list[int]]:
        """The grid at the canvas's top-left (semantics §12.2), as lists of colours."""
        return arc_data.crop(np.asarray(tokens)).tolist()

    def encode(self, grid: Any, box=None) -> np.ndarray:
        return arc_data.grid_to_seq(np.asarray(grid, dtype=np.uint8)).astype(np.int32)

    def draw(self, grid: Any, box=None, color: bool = False) -> str:
        from hrm.data.draw import draw_arc_grid

        return draw_arc_grid(np.asarray(grid), color) if len(grid) and len(grid[0]) else "(empty grid)"

    def style(self, seq_len: int, vocab_size: int, box: tuple[int, int] | None = None) -> TaskStyle:
        side = square_side(seq_len)
        if side is None:
            raise ValueError(f"an ARC canvas needs a square seq_len, got {seq_len}")
        tokens = {0: TokenStyle(PAD_COLOUR), 1: TokenStyle("#d9d9d9", "·", "#666666")}
        tokens |= {c + 2: TokenStyle(colour) for c, colour in enumerate(ARC_COLOURS)}
        return TaskStyle("arc", side, side, tokens, crop=True)

    def read(self, puzzle: Any, seq_len: int, box: str | None = None) -> Puzzle:
        if isinstance(puzzle, dict):
            task, source, name = puzzle, "task", puzzle.get("name")
        else:
            text, source = read_text(puzzle)
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
                        check_grid(pair[key], f"{source}: {split}[{i}].{key}")
        grids = [check_grid(pair["input"], f"{source}: test[{i}].input") for i, pair in enumerate(task["test"])]
        return Puzzle("arc", source, np.zeros((0, seq_len), np.int32), arc_task=task, name=name, grids=grids)

    def check(self, puzzle: Puzzle, answer: np.ndarray, test_index: int = 0) -> dict[str, Any]:
        """Whether `answer` (a grid) is the task's expected output for test input `test_index`; {} if none is given."""
        expected = ((puzzle.arc_task or {}).get("test") or [{}])[test_index] or {}
        if expected.get("output") is None:
            return {}
        right = bool(np.array_equal(np.asarray(expected["output"]), np.asarray(answer)))
        return {"valid": right, "matches_solver": None,
                "message": "correct: matches the task's test output" if right else
                "NOT correct: differs from the task's test output"}

    def augmenter(self, seq_len: int, vocab_size: int, box: str | None = None):
        raise ValueError("test-time augmentation (tta=K) is for Sudoku and maze datasets; this one is 'arc' "
                         "(ARC datasets carry their augmented versions in the test split already)")

    def version(self, grid: np.ndarray, version_name: str) -> np.ndarray:
        """The grid as the dataset's version `version_name` ("<task>_t<tid>_<colour map>") shows it."""
        aug = arc_data.parse_aug_name(version_name)
        return np.asarray(grid) if aug is None else arc_data.apply_aug(np.asarray(grid), aug[1], aug[2])

    def unversion(self, version_name: str, grid: np.ndarray) -> np.ndarray:
        """The de-augmentation: a grid of version `version_name` back in the task's own frame."""
        return arc_data.inverse_aug(version_name, np.asarray(grid))


def check_grid(grid: Any, where: str) -> np.ndarray:
    try:
        return arc_data.parse_grid(grid, where)
    except arc_data.ArcInputError as e:
        raise PuzzleError(f"{e} (this model reads grids of 1x1 to {ARC_MAX}x{ARC_MAX}, its canvas size)"
                          if "larger than" in str(e) else str(e)) from None


ARC = Arc()
