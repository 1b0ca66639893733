"""Property-based tests: random and mutated input to every parser of hrm.data.

Whatever the input, a parser returns, or raises the project's own error (SudokuInputError, MazeInputError,
ArcInputError, DatasetFormatError) with one line that names the file; no other exception escapes.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrm.data import arc, maze, sudoku
from hrm.data.check import check_dataset
from hrm.data.commands import main
from hrm.data.format import DatasetFormatError
from hrm.data.sudoku_solver import Box

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BOX = Box.parse("2x2")


@pytest.fixture(scope="module")
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="hrm-props-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _assert_own_error(error: Exception, kind: type[Exception], path: Path) -> None:
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message and message.startswith(str(path)), message


def _mutate(data: bytes, draw) -> bytes:
    """Flip, delete, insert or truncate a few bytes."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "delete" and data:
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[at:]
    return bytes(data)


# ---------------------------------------------------------------------------------------------------
# Sudoku

SUDOKU_CSV = ("source,question,answer,rating\n"
              "a,1.3.3.1.2.4.4.2.,1234341221434321,0\n"
              "b,.2.4...2.1.3.3.1,1234341221434321,1\n")


@SETTINGS
@given(text=st.text(alphabet="0123456789.xX #,|\t", max_size=24))
def test_parse_board_random_strings(text):
    try:
        values = sudoku.parse_board(text, BOX, "board")
    except sudoku.SudokuInputError as error:
        assert "\n" not in str(error) and str(error).startswith("board")
    else:
        assert values.shape == (16,) and values.min() >= 0 and values.max() <= 4


@SETTINGS
@given(data=st.data())
def test_sudoku_files_mutated(workdir, data):
    suffix = data.draw(st.sampled_from([".csv", ".txt"]))
    path = workdir / f"puzzles{suffix}"
    source = SUDOKU_CSV.encode() if suffix == ".csv" else b"1.3.3.1.2.4.4.2. 1234341221434321\n.2.4...2.1.3.3.1\n"
    path.write_bytes(_mutate(source, data.draw))
    try:
        records = sudoku.read_sudoku_file(path, BOX)
    except sudoku.SudokuInputError as error:
        _assert_own_error(error, sudoku.SudokuInputError, path)
    else:
        assert all(r.puzzle.shape == (16,) for r in records)


# ---------------------------------------------------------------------------------------------------
# Mazes

_MAZE, _LABEL = maze.generate_maze(5, np.random.default_rng(0))
MAZE_CSV = f"source,question,answer,rating\nm,{maze.tokens_to_text(_MAZE)},{maze.tokens_to_text(_LABEL)},0\n"


@SETTINGS
@given(data=st.data())
def test_maze_csv_mutated(workdir, data):
    question = data.draw(st.text(alphabet="# SGo", min_size=0, max_size=20))
    answer = data.draw(st.one_of(st.just(question), st.text(alphabet="# SGo", max_size=20)))
    base = (MAZE_CSV + f"r,{question},{answer},0\n").encode()
    path = workdir / "mazes.csv"
    path.write_bytes(_mutate(base, data.draw) if data.draw(st.booleans()) else base)
    try:
        mazes = maze.read_maze_csv(path, skip_invalid=data.draw(st.booleans()), report=maze.MazeReport())
    except maze.MazeInputError as error:
        _assert_own_error(error, maze.MazeInputError, path)
    else:
        assert all(len(tokens) == len(label) for tokens, label, _ in mazes)


# ---------------------------------------------------------------------------------------------------
# ARC task JSON: real-looking tasks with subtrees replaced by random JSON values

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 12) | st.floats(allow_nan=True) | st.text(max_size=3),
                           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
                           max_leaves=10)
TASK = {"train": [{"input": [[0, 1], [2, 3]], "output": [[3, 2], [1, 0]]}], "test": [{"input": [[4]], "output": [[5]]}]}


def _replace_subtree(value, draw, depth=0):
    if draw(st.integers(0, 3)) == 0 or depth > 4:
        return draw(JSON_VALUES)
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        return dict(value, **{key: _replace_subtree(value[key], draw, depth + 1)})
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return value[:i] + [_replace_subtree(value[i], draw, depth + 1)] + value[i + 1:]
    return draw(JSON_VALUES)


@SETTINGS
@given(data=st.data())
def test_arc_task_json_mutated(workdir, data):
    path = workdir / "task.json"
    text = json.dumps(_replace_subtree(TASK, data.draw))
    path.write_bytes(_mutate(text.encode(), data.draw) if data.draw(st.booleans()) else text.encode())
    try:
        task = arc.read_task_file(path, evaluation=False)
    except arc.ArcInputError as error:
        _assert_own_error(error, arc.ArcInputError, path)
    else:
        assert task.name == "task"


@SETTINGS
@given(data=st.data())
def test_kaggle_files_mutated(workdir, data):
    challenges, solutions = workdir / "k_evaluation_challenges.json", workdir / "k_evaluation_solutions.json"
    task = {"train": TASK["train"], "test": [{"input": [[4]]}]}
    challenges.write_text(json.dumps(_replace_subtree({"t1": task}, data.draw)))
    solutions.write_text(json.dumps(_replace_subtree({"t1": [[[5]]]}, data.draw)))
    try:
        arc.read_kaggle(challenges)
    except arc.ArcInputError as error:
        assert type(error) is arc.ArcInputError and "\n" not in str(error)
        assert str(error).startswith((str(challenges), str(solutions)))


# ---------------------------------------------------------------------------------------------------
# `hrm data check` / `show` on a real dataset with one file mutated

@pytest.fixture(scope="module")
def dataset(workdir):
    out = workdir / "built"
    assert main(["sudoku", "--generate", "6", "--box", "2x2", "--test-size", "2", "--output-dir", str(out)]) == 0
    return out


FILES = ["manifest.json", "identifiers.json", "train/dataset.json", "train/all__inputs.npy", "train/all__labels.npy",
         "train/all__puzzle_indices.npy", "train/all__group_indices.npy", "test/all__puzzle_identifiers.npy"]


@SETTINGS
@given(data=st.data())
def test_check_and_show_on_mutated_files(workdir, dataset, capsys, data):
    copy = workdir / "mutated"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(dataset, copy)
    name = data.draw(st.sampled_from(FILES))
    path = copy / name
    original = path.read_bytes()
    if name.endswith(".npy") and data.draw(st.booleans()):  # mutate inside the header, where the shape is
        end = original.index(b"\n") + 1
        path.write_bytes(_mutate(original[:end], data.draw) + original[end:])
    else:
        path.write_bytes(_mutate(original, data.draw))
    try:
        check_dataset(copy, "full")
    except DatasetFormatError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(str(copy)), message
    capsys.readouterr()
    rc = main(["show", str(copy), "--index", "0"])
    err = capsys.readouterr().err
    assert rc in (0, 1) and (rc == 0 or (err.count("\n") == 1 and "Traceback" not in err))
