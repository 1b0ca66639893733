"""`hrm data ...`: build, check and show puzzle datasets.

    hrm data sudoku output_dir=DIR (input=FILE,... | generate=N) [box=3x3] [num_aug=N] ...
    hrm data maze   output_dir=DIR (input=FILE,... | generate=N) [size=30] [min_path_length=L] [aug=true]
    hrm data arc    output_dir=DIR dataset_dirs=DIR,... [num_aug=1000] [strict=true] [workers=N]
    hrm data check  PATH
    hrm data show   PATH index=I [split=train|test]

Options keep the original builders' names (output_dir, subsample_size, num_aug, dataset_dirs,
min_difficulty, aug), and their spellings work too (`--output-dir DIR`, `--input A B`, `--aug`; see
hrm.cli_args); every build takes seed and gives identical bytes for identical arguments.
"""
from __future__ import annotations

import os
import sys

from hrm.cli_args import Args, Command, Option
from hrm.data.format import DatasetFormatError, check_output_dir

# OSErrors (full disk, a file where a folder should be) are reported apart, by hrm.files.describe_os_error.
_USER_ERRORS: tuple[type[BaseException], ...] = (DatasetFormatError, ValueError, RuntimeError)


def _common(seed: int = 0, seed_help: str = "seed of every random draw of the build") -> list[Option]:
    return [Option("output_dir", required=True, metavar="DIR", help="dataset folder to create (must not exist)"),
            Option("seed", int, seed, help=seed_help)]


def _sources(noun: str) -> list[Option]:
    return [
        Option("input", many=True, metavar="FILE...", help=f"{noun} files in the original CSV format"
               + (" or plain lists" if noun == "puzzle" else "")),
        Option("generate", int, metavar="N", help=f"generate N training {noun}s"),
        Option("test_input", many=True, default=[], metavar="FILE...",
               help="test split source (default: hold out test_size of input)"),
        Option("test_size", int, help="test puzzles held out of input (default: a tenth) or generated "
               "(default: N // 10, at least 1)"),
        Option("subsample_size", int, help="draw this many training puzzles of input"),
        Option("skip_invalid", bool, False, help="drop invalid puzzles (counted) instead of failing"),
    ]


def spec() -> Command:
    sudoku = Command("hrm data sudoku", "build a Sudoku dataset from files or by generating puzzles", [
        *_common(), *_sources("puzzle"),
        Option("box", default="3x3", help="box shape RxC: 3x3 (9x9 board), 2x3 (6x6), 2x2 (4x4) ..."),
        Option("num_aug", int, 0, help="augmented versions per training puzzle"),
        Option("min_difficulty", float,
               help="keep puzzles rated at least this (the CSV rating column, else the solver's branch points)"),
        Option("difficulty", default="any",
               help="generated puzzles: easy (no search), medium (1-4 branch points), hard (5+), any, or MIN[:MAX]"),
        Option("min_blanks", int, 0, help="generated puzzles: fewest blanks"),
        Option("max_blanks", int, help="generated puzzles: most blanks (default: as many as stay unique)"),
    ], one_of=[("input", "generate")])
    maze = Command("hrm data maze", "build a maze dataset from files or by generating mazes", [
        *_common(), *_sources("maze"),
        Option("size", int, 30, help="generated mazes: N x N"),
        Option("min_path_length", int, 0,
               help="keep mazes whose shortest path has at least this many moves (Maze-30x30-Hard: 111)"),
        Option("aug", bool, False, help="add the 8 dihedral versions of each training maze"),
    ], one_of=[("input", "generate")])
    arc = Command("hrm data arc", "build an ARC dataset from ARC-AGI / ConceptARC folders or Kaggle files", [
        *_common(42, "seed (42 is the original's)"),
        Option("dataset_dirs", many=True, required=True, metavar="DIR...",
               help="ARC-AGI / ConceptARC folders (repository roots or task folders) or Kaggle *_challenges.json files"),
        Option("num_aug", int, 1000, help="augmented versions per task"),
        Option("strict", bool, False, help="keep evaluation tasks' demonstration pairs out of training"),
        Option("workers", int, min(8, os.cpu_count() or 1),
               help="worker processes (default: the cores, up to 8; the bytes do not depend on it)"),
    ])
    check = Command("hrm data check", "validate a dataset's format and manifest and print a summary", [
        Option("path", positional=True, required=True, help="the dataset folder"),
        Option("quick", bool, False, help="hash only the small files (the index tables, metadata)"),
    ])
    show = Command("hrm data show", "draw puzzles of a dataset in the terminal", [
        Option("path", positional=True, required=True, help="the dataset folder"),
        Option("index", int, [0], many=True, help="example index (or indices) in the split"),
        Option("split", default="train", choices=("train", "test"), help="the split to draw from"),
        Option("color", default="auto", choices=("auto", "always", "never"), help="ARC colours"),
    ])
    return Command("hrm data", "Build, check and show puzzle datasets.",
                   commands={"sudoku": sudoku, "maze": maze, "arc": arc, "check": check, "show": show})


def _build_args(args: Args) -> dict:
    return {k: v for k, v in args.values().items() if k != "output_dir"}


def _sudoku(args: Args) -> None:
    from hrm.data import sudoku
    from hrm.data.sudoku_solver import Box

    box = Box.parse(args.box)
    if args.generate is not None:
        n_test = args.test_size if args.test_size is not None else max(1, args.generate // 10)
        sudoku.build_generated_dataset(args.output_dir, args.generate, n_test, box, args.min_blanks, args.max_blanks,
                                       args.difficulty, args.num_aug, args.seed, _build_args(args))
    else:
        sudoku.build_from_files(args.output_dir, args.input, args.test_input, box, args.test_size, args.subsample_size,
                                args.num_aug, args.min_difficulty, args.skip_invalid, args.seed, _build_args(args))


def _maze(args: Args) -> None:
    from hrm.data import maze

    if args.generate is not None:
        n_test = args.test_size if args.test_size is not None else max(1, args.generate // 10)
        maze.build_generated(args.output_dir, args.generate, n_test, args.size, args.min_path_length, args.aug,
                             args.seed, _build_args(args))
    else:
        maze.build_from_files(args.output_dir, args.input, args.test_input, args.test_size, args.subsample_size,
                              args.min_path_length, args.aug, args.skip_invalid, args.seed, _build_args(args))


def _arc(args: Args) -> None:
    from hrm.data import arc

    arc.build(args.output_dir, args.dataset_dirs, args.num_aug, args.seed, args.strict, args.workers, _build_args(args))


def _check(args: Args) -> None:
    from hrm.data.check import check_dataset

    print("\n".join(check_dataset(args.path, "quick" if args.quick else "full")))
    print("OK")


def _show_kind(path: str, seq_len: int, vocab_size: int):
    """(kind, box) to draw a dataset with: the manifest's builder (and Sudoku box) when they fit the
    dataset's shape, else a guess from the shape. A manifest that contradicts the shape is refused, so
    that drawing never indexes out of range."""
    import math
    from pathlib import Path

    from hrm.data import draw
    from hrm.data.manifest import MANIFEST, read_manifest
    from hrm.data.sudoku_solver import Box
    from hrm.puzzles import SUDOKU, detect, named

    manifest = read_manifest(path) or {}
    where = Path(path) / MANIFEST
    # NOTE: a builder that names no family (a test dataset's) is drawn as its shape says, not refused.
    family = named(manifest.get("builder")) or detect(seq_len, vocab_size)
    if family is None:
        raise ValueError(f"cannot tell the puzzle kind of seq_len {seq_len}, vocab {vocab_size}")
    box = None
    fits = family.fits(seq_len, vocab_size)
    if family is SUDOKU:
        box_text = (manifest.get("arguments") or {}).get("box")
        try:
            box = Box.parse(box_text) if isinstance(box_text, str) else draw.default_box(math.isqrt(seq_len))
        except (ValueError, ZeroDivisionError):
            raise DatasetFormatError(f"{where}: argument box {box_text!r} is not a Sudoku box shape") from None
        fits = box.rows > 0 and box.cols > 0 and box.cells == seq_len and vocab_size == box.size + 2
    kind = family.name
    if not fits:
        raise DatasetFormatError(f"{where}: a {kind} dataset cannot have seq_len {seq_len} and vocab_size {vocab_size}")
    return kind, box


def _show(args: Args) -> None:
    import numpy as np

    from hrm.data import draw
    from hrm.data.format import array_path, load_identifiers, load_metadata, load_set_arrays, validate_set_structure

    metadata = load_metadata(args.path, args.split)
    kind, box = _show_kind(args.path, metadata.seq_len, metadata.vocab_size)
    identifiers = load_identifiers(args.path)
    if metadata.num_puzzle_identifiers != len(identifiers):
        raise DatasetFormatError(f"{args.path}/{args.split}/dataset.json: num_puzzle_identifiers "
                                 f"{metadata.num_puzzle_identifiers}, identifiers.json has {len(identifiers)} names")
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    arrays = load_set_arrays(args.path, args.split, metadata.sets[0])
    # The index tables are checked (cheap) so that the look-ups below stay in range; only the shown rows'
    # tokens are checked, not the whole split (that is `hrm data check`).
    validate_set_structure(arrays, metadata, str(array_path(args.path, args.split, metadata.sets[0], "")).removesuffix("__.npy"))
    for index in args.index:
        if not 0 <= index < len(arrays["inputs"]):
            raise ValueError(f"--index {index} is outside 0..{len(arrays['inputs']) - 1} ({args.split} split)")
        for field_name in ("inputs", "labels"):
            row = np.asarray(arrays[field_name][index])
            if ((row < 0) | (row >= metadata.vocab_size)).any():
                raise DatasetFormatError(f"{array_path(args.path, args.split, metadata.sets[0], field_name)}: example "
                                         f"{index} holds tokens outside 0..{metadata.vocab_size - 1} (vocab_size)")
        puzzle = int(np.searchsorted(arrays["puzzle_indices"], index, side="right") - 1)
        group = int(np.searchsorted(arrays["group_indices"], puzzle, side="right") - 1)
        name = identifiers[int(arrays["puzzle_identifiers"][puzzle])]
        print(f"{args.split} example {index}: puzzle {puzzle} ({name}), group {group}")
        print(draw.draw_example(kind, arrays["inputs"][index], arrays["labels"][index], box=box, color=color))
        print()


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)
    handlers = {"sudoku": _sudoku, "maze": _maze, "arc": _arc, "check": _check, "show": _show}
    try:
        if args.command in ("sudoku", "maze", "arc"):  # refuse a bad --output-dir before the work, not after
            check_output_dir(args.output_dir)
        handlers[args.command](args)
    except OSError as error:  # a full disk, a read-only or missing folder: one line, no traceback
        from hrm.files import describe_os_error
        where = getattr(args, "output_dir", None) or getattr(args, "path", None)
        print(f"hrm data {args.command}: error: {describe_os_error(error, where)}", file=sys.stderr)
        return 1
    except _USER_ERRORS as error:
        print(f"hrm data {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0
