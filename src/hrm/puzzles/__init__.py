"""Puzzle families (Sudoku, mazes, ARC) as a small registry of objects, and the one task detector.

    from hrm.puzzles import detect, family, FAMILIES
    fam = detect(seq_len, vocab_size, manifest_builder)      # a Family, or None when it cannot tell
    fam.read(puzzle, seq_len, box) / fam.check(puzzle, answer) / fam.draw(fam.decode(tokens, box), box)

The interface is hrm.puzzles.base.Family. NumPy only: this package sits with hrm.data, below the models.
"""
from __future__ import annotations

from typing import Any

from hrm.puzzles.arc import ARC
from hrm.puzzles.base import Family, Puzzle, PuzzleError, TaskStyle, TokenStyle, apply, invert, read_text
from hrm.puzzles.maze import MAZE
from hrm.puzzles.sudoku import SUDOKU

# NOTE: the order is the detection order: ARC's sizes are exact; a 4x4 Sudoku (16 cells, vocab 6) has a
# maze's vocab, so Sudoku is tried before mazes.
FAMILIES: dict[str, Family] = {f.name: f for f in (ARC, SUDOKU, MAZE)}
UNKNOWN = "unknown"

__all__ = ["FAMILIES", "UNKNOWN", "Family", "Puzzle", "PuzzleError", "TaskStyle", "TokenStyle", "apply", "invert",
           "detect", "family", "family_name", "named", "read_puzzle", "ARC", "MAZE", "SUDOKU"]


def named(name: str | None) -> Family | None:
    """The family whose name `name` starts with (builders such as "sudoku-generated"), if any."""
    if isinstance(name, str):
        for fam in FAMILIES.values():
            if name.startswith(fam.name):
                return fam
    return None


def family(name: str) -> Family:
    """The family called `name`; a ValueError that lists the families otherwise."""
    fam = FAMILIES.get(name)
    if fam is None:
        raise ValueError(f"unknown puzzle family {name!r}; known: {', '.join(FAMILIES)}")
    return fam


def detect(seq_len: int, vocab_size: int, *names: str | None) -> Family | None:
    """The puzzle family of a dataset (or a model) of these sizes.

    `names` are what is known about it, most trusted first: a family the user gave, the dataset manifest's
    builder, a predictions file's task. The first that names a family wins. When one is given but names
    no family (a builder we do not know, e.g. a test dataset's), there is no guessing: None. With none
    given, the family whose sizes fit.
    """
    given = [n for n in names if isinstance(n, str) and n]
    for name in given:
        fam = named(name)
        if fam is not None:
            return fam
    if given:
        return None
    return next((fam for fam in FAMILIES.values() if fam.fits(seq_len, vocab_size)), None)


def family_name(fam: Family | None) -> str:
    return fam.name if fam is not None else UNKNOWN


def read_puzzle(puzzle: Any, fam: Family, seq_len: int, box: str | None = None) -> Puzzle:
    """Read `puzzle` as one of `fam`'s for a model of `seq_len`; an input of another family is an error."""
    text = "" if isinstance(puzzle, dict) else read_text(puzzle)[0]
    kind = next(f for f in (ARC, MAZE, SUDOKU) if f is SUDOKU or f.looks_like(puzzle, text))
    if kind is not fam:
        raise PuzzleError(f"this checkpoint solves {fam.name} puzzles, but the input looks like {kind.a_puzzle} "
                          f"({kind.input_hint}): give {fam.a_puzzle} ({fam.input_hint}), or a checkpoint trained on {kind.name}")
    return fam.read(puzzle, seq_len, box)
