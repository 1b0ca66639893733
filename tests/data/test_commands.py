"""`hrm data ...` as a user runs it: build, check, show, and errors."""
from __future__ import annotations

import json

import numpy as np

from hrm.data import PuzzleDataset, dataset_hash
from hrm.data.commands import main


def test_maze_build_check_show_and_loader(tmp_path, capsys):
    out = tmp_path / "maze"
    assert main(["maze", "--output-dir", str(out), "--generate", "24", "--test-size", "4", "--size", "9",
                 "--min-path-length", "10", "--seed", "3"]) == 0
    assert main(["check", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "builder maze" in printed and printed.strip().endswith("OK") and dataset_hash(out) in printed
    assert main(["show", str(out), "--index", "2", "--split", "test"]) == 0
    shown = capsys.readouterr().out
    assert "S" in shown and "G" in shown and "o" in shown
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arguments"]["min_path_length"] == 10 and manifest["seed"] == 3
    ds = PuzzleDataset(out, "train", global_batch_size=8)
    (_, batch, _), *_ = list(ds)
    assert batch["inputs"].shape == (8, 81)


def test_check_detects_a_changed_array(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sudoku", "--output-dir", str(out), "--generate", "10", "--box", "2x2", "--test-size", "2"]) == 0
    labels = np.load(out / "train" / "all__labels.npy")
    labels[0, 0] = 2 if labels[0, 0] != 2 else 3
    np.save(out / "train" / "all__labels.npy", labels)
    assert main(["check", str(out)]) == 1
    assert "all__labels.npy: content hash differs" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["sudoku", "--output-dir", str(tmp_path), "--generate", "3"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["sudoku", "--output-dir", str(tmp_path / "x"), "--input", str(tmp_path / "none.txt")]) == 1
    assert "none.txt: file not found" in capsys.readouterr().err
    assert main(["arc", "--output-dir", str(tmp_path / "y"), "--dataset-dirs", str(tmp_path / "nowhere")]) == 1
    assert "dataset dir not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
