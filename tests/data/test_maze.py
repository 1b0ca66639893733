"""Mazes: generator, encoding, validation of the original CSV, augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.data import maze
from hrm.data.maze import MazeInputError


def test_generated_mazes_have_unique_long_shortest_paths():
    rng = np.random.default_rng(0)
    inputs, labels = maze.generate_mazes(6, 30, rng, min_path_length=111)
    for tokens, label in zip(inputs, labels):
        assert (tokens == maze.START).sum() == 1 and (tokens == maze.GOAL).sum() == 1
        solved, paths = maze.solve_maze(tokens)
        assert paths == 1 and np.array_equal(solved, label)
        assert maze.path_length(label) >= 111
    assert len({maze.canonical_key(t) for t in inputs}) == 6


def test_generated_dataset_is_byte_identical_on_rebuild(tmp_path):
    first = maze.build_generated(tmp_path / "a", 6, 2, size=11, min_path_length=12, aug=True, seed=4, log=lambda *_: None)
    second = maze.build_generated(tmp_path / "b", 6, 2, size=11, min_path_length=12, aug=True, seed=4, log=lambda *_: None)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 14
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_text_round_trip_and_errors():
    text = "#S #\n# G#".replace("\n", "  ")[:16]
    assert maze.tokens_to_text(maze.text_to_tokens(text)) == text
    with pytest.raises(MazeInputError, match="character 2: 'x'"):
        maze.text_to_tokens("#x")


def write_csv(path, rows):
    path.write_text("source,question,answer,rating\n" + "".join(f"gen,{q},{a},0\n" for q, a in rows))


def test_import_original_csv_with_dihedral_augmentation(tmp_path):
    rng = np.random.default_rng(1)
    inputs, labels = maze.generate_mazes(12, 10, rng, min_path_length=8)
    rows = [(maze.tokens_to_text(q), maze.tokens_to_text(a)) for q, a in zip(inputs, labels)]
    write_csv(tmp_path / "m.csv", rows)
    out = maze.build_from_files(tmp_path / "d", [tmp_path / "m.csv"], test_size=2, aug=True, log=lambda *_: None)
    train_in = np.load(out / "train" / "all__inputs.npy")
    train_labels = np.load(out / "train" / "all__labels.npy")
    assert train_in.shape == (10 * 8, 100)
    assert np.load(out / "train" / "all__group_indices.npy").tolist() == list(range(0, 81, 8))
    for tokens, label in zip(train_in, train_labels):             # every dihedral version is a valid maze
        solved, paths = maze.solve_maze(tokens)
        assert paths == 1 and np.array_equal(solved, label)


def test_invalid_maze_rows_name_the_line(tmp_path):
    inputs, labels = maze.generate_mazes(3, 8, np.random.default_rng(2), min_path_length=6)
    rows = [(maze.tokens_to_text(q), maze.tokens_to_text(a)) for q, a in zip(inputs, labels)]
    broken = rows[1][1].replace("o", " ", 1)                       # a gap in the path
    write_csv(tmp_path / "m.csv", [rows[0], (rows[1][0], broken), rows[2]])
    with pytest.raises(MazeInputError, match=r"m.csv:3: the answer's 'o' cells are not a shortest path"):
        maze.build_from_files(tmp_path / "d", [tmp_path / "m.csv"], test_size=1, log=lambda *_: None)
    messages = []
    maze.build_from_files(tmp_path / "d", [tmp_path / "m.csv"], test_size=1, skip_invalid=True, log=messages.append)
    assert "2 mazes kept" in messages[0] and "1 rejected" in messages[0]
