"""The arena's tasks: datasets generated here, nothing downloaded, built once and reused.

    sudoku6   the demo's 6x6 Sudoku (hrm.training.demo.DEMO_DATA: boxes 2x3, 14-24 blanks, 50,000 training
              puzzles x 16 versions, 1,000 held-out puzzles)
    maze10    10x10 mazes with a unique shortest path of 10+ moves (loops included, so the path must be
              found, not followed), 50,000 training mazes x 8 dihedral versions, 1,000 held-out mazes

Both builders draw the held-out puzzles first and then refuse every training puzzle equivalent to one
already drawn under the augmentation symmetries (Sudoku: hrm.data.sudoku.generate_puzzles, exactly up to
6x6; mazes: the 8 dihedral transforms, hrm.data.maze.generate_mazes), so no held-out puzzle is a training
puzzle or one of its augmented versions.

NOTE: why 10x10 mazes for the harder task: generating 9x9 Sudoku of rated difficulty is slow (about 40
"easy" puzzles with 45+ blanks per second), and a 9x9 board is more than twice the demo's sequence; 10x10
mazes generate at thousands per second and still need a search along the whole path (16 moves on average),
which one forward pass does not do.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The maze task's generator arguments (a test shrinks them, as tests/training/test_demo.py shrinks DEMO_DATA).
MAZE_DATA = dict(size=10, n_train=50000, n_test=1000, min_path_length=10, aug=True, seed=0)


@dataclass(frozen=True)
class Task:
    name: str
    title: str                                   # what the table's heading says
    build: Callable[[Path, Callable[[str], None]], Path]
    arguments: Callable[[], dict]                # the generator's arguments (read when called: tests shrink them)


def build_sudoku6(path: Path, log) -> Path:
    from hrm.training.demo import build_data
    return build_data(path, log=log)


def sudoku6_arguments() -> dict:
    from hrm.training import demo
    return dict(demo.DEMO_DATA)


def build_maze10(path: Path, log) -> Path:
    """Generate the maze task once; reused when its generator arguments match, refused when another
    builder made the folder."""
    from hrm.data import read_manifest
    from hrm.data.maze import build_generated

    manifest = read_manifest(path) if path.exists() else None
    if manifest is not None and manifest.get("arguments", {}).get("arena") == MAZE_DATA:
        log(f"data: reusing {path}")
        return path
    if path.exists():
        raise FileExistsError(f"{path} exists but was not made by the arena's maze generator; remove it or choose "
                              "another out=")
    args = MAZE_DATA
    return build_generated(path, args["n_train"], args["n_test"], size=args["size"],
                           min_path_length=args["min_path_length"], aug=args["aug"], seed=args["seed"],
                           builder_args={"arena": dict(args)}, log=lambda m: log(f"data: {m}"))


TASKS = {
    "sudoku6": Task("sudoku6", "6x6 Sudoku (the demo's: boxes 2x3, 14-24 blanks, unique solutions)",
                    build_sudoku6, sudoku6_arguments),
    "maze10": Task("maze10", "10x10 mazes (a unique shortest path of 10+ moves, loops included)",
                   build_maze10, lambda: dict(MAZE_DATA)),
}


def describe_data(path: Path) -> str:
    """'50,000 training puzzles x 16 versions, 1,000 held-out' from the dataset on disk."""
    from hrm.data import load_metadata
    from hrm.evaluation.loop import split_size

    train, test = load_metadata(path, "train"), load_metadata(path, "test")
    versions = split_size(path, "train", train.sets) / train.total_groups      # a group: a puzzle and its versions
    return (f"{train.total_groups:,} training puzzles x {versions:g} versions, {test.total_groups:,} "
            "held-out puzzles, none equivalent to a training puzzle")
