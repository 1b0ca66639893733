"""The arena's tasks: datasets generated here, nothing downloaded, built once and reused.

    sudoku6   the demo's 6x6 Sudoku (hrm.training.demo.DEMO_DATA: boxes 2x3, 14-24 blanks, 50,000 training
              puzzles x 16 versions, 1,000 held-out puzzles)
    sudoku9   9x9 Sudoku rated easy (36-45 blanks, every one found by naked or hidden singles, no
              branching: hrm.data.sudoku's rating), 50,000 training puzzles x 8 versions, 1,000 held-out
    maze10    10x10 mazes with a unique shortest path of 10+ moves (loops included, so the path must be
              found, not followed), 50,000 training mazes x 8 dihedral versions, 1,000 held-out mazes

Every builder draws the held-out puzzles first and then refuses every training puzzle equivalent to one
already drawn (Sudoku: hrm.data.sudoku.generate_puzzles, under every symmetry up to 6x6 and under digit
relabelling for 9x9; mazes: the 8 dihedral transforms, hrm.data.maze.generate_mazes), so no held-out
puzzle is a training puzzle or one of its augmented versions (for 9x9, up to the remaining symmetries: two
random 9x9 puzzles being equivalent under them is vanishingly unlikely, but it is not checked).

NOTE: the harder task by default is sudoku9, not maze10. Measured on this project's 2-core machine (one
thread per entry), TRM trained 450 steps on 8x8 mazes in four minutes with its held-out exact accuracy at 0%
and its cell accuracy near what copying the walls gives, so mazes of these sizes teach nothing in a CPU
budget of minutes; maze10 stays for longer budgets (`hrm arena tasks=maze10 minutes=60`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The 9x9 Sudoku task's generator arguments (rated: "easy" is 0 branch points, hrm.data.sudoku.parse_difficulty).
SUDOKU9_DATA = dict(box="3x3", n_train=50000, n_test=1000, min_blanks=36, max_blanks=45, difficulty="easy",
                    num_aug=7, seed=0)
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


def build_sudoku9(path: Path, log) -> Path:
    """Generate the 9x9 task once; reused when its generator arguments match, refused when another builder
    made the folder."""
    from hrm.data.sudoku import build_generated_dataset

    if _reusable(path, SUDOKU9_DATA, log):
        return path
    args = SUDOKU9_DATA
    return build_generated_dataset(path, args["n_train"], args["n_test"], box=args["box"], min_blanks=args["min_blanks"],
                                   max_blanks=args["max_blanks"], difficulty=args["difficulty"], num_aug=args["num_aug"],
                                   seed=args["seed"], builder_args={"arena": dict(args)}, log=lambda m: log(f"data: {m}"))


def _reusable(path: Path, arguments: dict, log) -> bool:
    """True if `path` holds the dataset these generator arguments make; an error if it holds another one."""
    from hrm.data import read_manifest

    manifest = read_manifest(path) if path.exists() else None
    if manifest is not None and manifest.get("arguments", {}).get("arena") == arguments:
        log(f"data: reusing {path}")
        return True
    if path.exists():
        raise FileExistsError(f"{path} exists but was not made by the arena's generator with these arguments; "
                              "remove it or choose another out=")
    return False


def build_maze10(path: Path, log) -> Path:
    """Generate the maze task once; reused when its generator arguments match, refused when another
    builder made the folder."""
    from hrm.data.maze import build_generated

    if _reusable(path, MAZE_DATA, log):
        return path
    args = MAZE_DATA
    return build_generated(path, args["n_train"], args["n_test"], size=args["size"],
                           min_path_length=args["min_path_length"], aug=args["aug"], seed=args["seed"],
                           builder_args={"arena": dict(args)}, log=lambda m: log(f"data: {m}"))


TASKS = {
    "sudoku6": Task("sudoku6", "6x6 Sudoku (the demo's: boxes 2x3, 14-24 blanks, unique solutions)",
                    build_sudoku6, sudoku6_arguments),
    "sudoku9": Task("sudoku9", "9x9 Sudoku, rated easy (36-45 blanks, singles suffice, unique solutions)",
                    build_sudoku9, lambda: dict(SUDOKU9_DATA)),
    "maze10": Task("maze10", "10x10 mazes (a unique shortest path of 10+ moves, loops included)",
                   build_maze10, lambda: dict(MAZE_DATA)),
}

DEFAULT_TASKS = ["sudoku6", "sudoku9"]


def describe_data(path: Path) -> str:
    """'50,000 training puzzles x 16 versions, 1,000 held-out' from the dataset on disk."""
    from hrm.data import load_metadata, read_manifest
    from hrm.evaluation.loop import split_size

    train, test = load_metadata(path, "train"), load_metadata(path, "test")
    versions = split_size(path, "train", train.sets) / train.total_groups      # a group: a puzzle and its versions
    box = (read_manifest(path) or {}).get("arguments", {}).get("box")
    checked = " under digit relabelling" if box == "3x3" else ""          # see the module's docstring
    return (f"{train.total_groups:,} training puzzles x {versions:g} versions, {test.total_groups:,} "
            f"held-out puzzles, none equivalent to a training puzzle{checked}")
