"""Bad input to `hrm data ...` is one line naming the file (and line or key), never a traceback."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hrm.data.commands import main

SUDOKU = ["sudoku", "--generate", "6", "--box", "2x2", "--test-size", "2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "s"
    assert main([*SUDOKU, "--output-dir", str(out)]) == 0
    return out


@pytest.fixture
def dataset(built, tmp_path):
    copy = tmp_path / "d"
    shutil.copytree(built, copy)
    return copy


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("command", ["check", "show"])
@pytest.mark.parametrize("damage", ["empty", "magic only", "half header", "truncated data"])
def test_truncated_npy(dataset, capsys, command, damage):
    path = dataset / "train" / "all__inputs.npy"
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "magic only": data[:6], "half header": data[:40], "truncated data": data[:-5]}[damage])
    assert main([command, str(dataset)]) == 1
    _one_line_error(capsys, str(path))


@pytest.mark.parametrize("command", ["check", "show"])
@pytest.mark.parametrize("name", ["all__inputs.npy", "all__puzzle_indices.npy"])
def test_npy_header_that_lies_about_its_shape_is_refused_before_allocating(dataset, capsys, command, name):
    path = dataset / "train" / name
    data = bytearray(path.read_bytes())
    header_end = data.index(b"\n") + 1
    header = data[:header_end].decode("latin1")
    shape = header[header.index("(") : header.index(")") + 1]
    # ~4 TiB claimed in a file of a few hundred bytes: loading it would try to allocate that.
    lie = "(4398046511104, 1)" if "," in shape.strip("(),") else "(4398046511104,)"
    new_header = header.replace(shape, lie)
    body = new_header[10:].rstrip("\n")
    body = body.ljust(len(header) - 11) + "\n"
    data[:header_end] = (header[:10] + body).encode("latin1")
    path.write_bytes(bytes(data))
    assert main([command, str(dataset)]) == 1
    _one_line_error(capsys, str(path), "4398046511104")


@pytest.mark.parametrize("command", ["check", "show"])
@pytest.mark.parametrize("edit,needle", [
    (lambda m: m["files"]["train/all__labels.npy"].pop("sha256"), "'sha256'"),
    (lambda m: m.update(files=[1, 2]), "'files'"),
    (lambda m: m["files"].update({"identifiers.json": "abc"}), "identifiers.json"),
    (lambda m: m.update(dataset_hash=7), "dataset_hash"),
    (lambda m: m.update(arguments=[1]), "arguments"),
])
def test_malformed_manifest(dataset, capsys, command, edit, needle):
    path = dataset / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    assert main([command, str(dataset)]) == 1
    _one_line_error(capsys, str(path), needle)


@pytest.mark.parametrize("edit,needle", [
    (lambda m: m["arguments"].update(box="axb"), "box"),
    (lambda m: m["arguments"].update(box="3x3"), "seq_len"),
    (lambda m: m.update(builder="arc"), "seq_len"),
])
def test_show_refuses_a_manifest_that_contradicts_the_shape(dataset, capsys, edit, needle):
    # The builder and box only steer the drawing (check does not use them), but they must fit the data.
    path = dataset / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    assert main(["show", str(dataset)]) == 1
    _one_line_error(capsys, str(path), needle)


def test_show_refuses_out_of_range_index_tables_and_tokens(dataset, capsys):
    pi = dataset / "train" / "all__puzzle_indices.npy"
    values = np.load(pi)
    values[-1] += 5
    np.save(pi, values)
    assert main(["show", str(dataset)]) == 1
    _one_line_error(capsys, "all__puzzle_indices.npy")


def test_show_refuses_tokens_outside_the_vocabulary(dataset, capsys):
    inputs = dataset / "train" / "all__inputs.npy"
    values = np.load(inputs)
    values[0, 0] = 200
    np.save(inputs, values)
    assert main(["show", str(dataset), "--index", "0"]) == 1
    _one_line_error(capsys, "all__inputs.npy", "example 0")


def _arc_dirs(tmp_path):
    good = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3]], "output": [[4]]}]}
    for folder in ("training", "evaluation"):
        (tmp_path / "arc" / folder).mkdir(parents=True)
        (tmp_path / "arc" / folder / f"{folder}1.json").write_text(json.dumps(good))
    return tmp_path / "arc"


def test_arc_task_nested_thousands_deep(tmp_path, capsys):
    root = _arc_dirs(tmp_path)
    deep = root / "evaluation" / "deep.json"
    deep.write_text('{"train": ' + "[" * 100_000 + "]" * 100_000 + ', "test": []}')
    assert main(["arc", "--output-dir", str(tmp_path / "o"), "--dataset-dirs", str(root), "--workers", "1",
                 "--num-aug", "0"]) == 1
    _one_line_error(capsys, str(deep), "nested too deeply")


@pytest.mark.parametrize("challenges", [
    {"t1": [1, 2]},
    {"t1": {"train": [], "test": [1]}},
    {"t1": {"train": [1], "test": [{"input": [[1]]}]}},
    {"t1": {"train": {"a": 1}, "test": [{"input": [[1]]}]}},
    [1, 2],
])
def test_kaggle_entries_that_are_not_lists_or_objects(tmp_path, capsys, challenges):
    path = tmp_path / "arc-agi_evaluation_challenges.json"
    path.write_text(json.dumps(challenges))
    (tmp_path / "arc-agi_evaluation_solutions.json").write_text(json.dumps({"t1": [[[1]]]}))
    assert main(["arc", "--output-dir", str(tmp_path / "o"), "--dataset-dirs", str(path), "--workers", "1"]) == 1
    _one_line_error(capsys, str(path))


def test_output_dir_under_a_regular_file_is_refused_before_building(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["arc", "--output-dir", str(tmp_path / "file" / "out"), "--dataset-dirs", str(tmp_path)]) == 1
    _one_line_error(capsys, "not a directory", str(tmp_path / "file"))


def test_more_4x4_sudoku_than_exist_is_refused_at_once(tmp_path, capsys):
    assert main(["sudoku", "--generate", "5000", "--box", "2x2", "--output-dir", str(tmp_path / "o")]) == 1
    _one_line_error(capsys, "4,710 distinct puzzles", "5,500")


def test_generation_that_stalls_says_so(tmp_path, capsys, monkeypatch):
    # 2x3 (6x6) has no precomputed bound; with a short stall window and the blanks pinned to a value with
    # few distinct puzzles, the stall detector is what stops it.
    from hrm.data import sudoku
    monkeypatch.setattr(sudoku, "STALL_DUPLICATES", 50)
    assert main(["sudoku", "--generate", "4000", "--box", "2x2", "--min-blanks", "1", "--max-blanks", "1",
                 "--output-dir", str(tmp_path / "o")]) == 1
    _one_line_error(capsys, "distinct 4x4 puzzles", "repeats")


def test_small_maze_boards_run_out_of_distinct_mazes(tmp_path, capsys):
    assert main(["maze", "--generate", "500", "--size", "4", "--output-dir", str(tmp_path / "o")]) == 1
    _one_line_error(capsys, "distinct 4x4 mazes", "repeats")
