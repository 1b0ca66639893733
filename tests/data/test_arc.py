"""ARC: readers and their errors, encoding and inverse transforms, the build from the shared data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hrm.data import arc
from hrm.data.arc import ArcInputError
from hrm.data.transforms import DIHEDRAL_INVERSE, dihedral_transform, inverse_dihedral_transform

from reference_helpers import REPO, require_shared


def test_dihedral_inverse_table_round_trips():
    grid = np.arange(12).reshape(3, 4)
    for tid in range(8):
        assert np.array_equal(inverse_dihedral_transform(dihedral_transform(grid, tid), tid), grid)
        assert np.array_equal(dihedral_transform(dihedral_transform(grid, tid), DIHEDRAL_INVERSE[tid]), grid)
    assert np.array_equal(dihedral_transform(grid, 7), np.fliplr(np.rot90(grid)))


def test_canvas_crop_and_inverse_aug_round_trip():
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (3, 7), (30, 30), (29, 30), (30, 2)]:
        grid = rng.integers(0, 10, (h, w)).astype(np.uint8)
        seq = arc.grid_to_seq(grid)
        canvas = seq.reshape(30, 30)
        if h < 30:
            assert (canvas[h, :w] == arc.EOS_ID).all()
        if w < 30:
            assert (canvas[:h, w] == arc.EOS_ID).all()
        if h < 30 and w < 30:
            assert canvas[h, w] == arc.PAD_ID                         # the corner stays PAD
        assert np.array_equal(arc.crop(seq), grid)
        assert np.array_equal(arc.locate_grid(arc.grid_to_canvas(grid, 30 - h, 30 - w).reshape(-1)), grid)
        tid, colours = int(rng.integers(8)), np.concatenate([[0], 1 + rng.permutation(9)]).astype(np.uint8)
        name = arc.aug_name("007bbfb7", tid, colours)
        assert arc.parse_aug_name(name)[0] == "007bbfb7"
        assert np.array_equal(arc.inverse_aug(name, arc.apply_aug(grid, tid, colours)), grid)
    assert np.array_equal(arc.inverse_aug("007bbfb7", grid), grid)
    assert arc.crop(np.zeros(900, np.uint8)).shape == (0, 0)


@pytest.mark.parametrize("content, message", [
    ('{"train": [}', r"t.json: malformed JSON at line 1, column 12"),
    ('{"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": []}', r"train\[0\].input, row 1: 1 cells, row 0 has 2"),
    ('{"train": [{"input": [[1, 12]], "output": [[1]]}], "test": []}', r"train\[0\].input, row 0, column 1: colour 12"),
    ('{"train": [{"input": ' + json.dumps([[0] * 31]) + ', "output": [[1]]}], "test": []}', r"1x31, larger than 30x30"),
    ('{"train": [{"input": [[1]]}], "test": []}', r"train\[0\] needs an 'input' and an 'output'"),
])
def test_bad_task_files_are_named(tmp_path, content, message):
    folder = tmp_path / "evaluation"
    folder.mkdir()
    (folder / "t.json").write_text(content)
    with pytest.raises(ArcInputError, match=message):
        arc.read_dataset_dirs([tmp_path])
    with pytest.raises(ArcInputError, match="dataset dir not found"):
        arc.read_dataset_dirs([tmp_path / "nowhere"])


def test_kaggle_files_and_strict_split(tmp_path):
    task = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3, 4]]}]}
    (tmp_path / "arc-agi_evaluation_challenges.json").write_text(json.dumps({"abc": task}))
    with pytest.raises(ArcInputError, match="solutions.json is missing"):
        arc.read_dataset_dirs([tmp_path])
    (tmp_path / "arc-agi_evaluation_solutions.json").write_text(json.dumps({"abc": [[[4, 3]]]}))
    (tasks,) = arc.read_dataset_dirs([tmp_path])
    assert tasks.evaluation and tasks.test[0][1].tolist() == [[4, 3]]
    assert set(arc.destinations(tasks, strict=False)) == {"train", "test"}
    assert set(arc.destinations(tasks, strict=True)) == {"test"}


def build_small(out, seed=42, workers=1, strict=False):
    dirs = [require_shared("data/arc-agi-1"), require_shared("data/conceptarc")]
    return arc.build(out, dirs, num_aug=2, seed=seed, strict=strict, workers=workers, log=lambda *_: None)


@pytest.mark.slow
def test_build_arc_agi_1_and_conceptarc(tmp_path):
    out = build_small(tmp_path / "a")
    identifiers = json.loads((out / "identifiers.json").read_text())
    assert identifiers[0] == "<blank>" and len(identifiers) == len(set(identifiers))
    meta = json.loads((out / "train" / "dataset.json").read_text())
    assert meta["total_groups"] == 400 + 393 + 160 and meta["num_puzzle_identifiers"] == len(identifiers)
    test_meta = json.loads((out / "test" / "dataset.json").read_text())
    assert test_meta["total_groups"] == 393
    arrays = {split: {k: np.load(out / split / f"all__{k}.npy") for k in
                      ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")}
              for split in ("train", "test")}
    # Every test puzzle's name is also a train puzzle's (the default split), and shares its identifier.
    train_ids = set(arrays["train"]["puzzle_identifiers"].tolist())
    assert set(arrays["test"]["puzzle_identifiers"].tolist()) <= train_ids
    # Test examples sit at the top-left and invert to the original task's test pairs.
    tasks = {t.name: t for t in arc.read_dataset_dirs([require_shared("data/arc-agi-1/evaluation")])}
    test = arrays["test"]
    for p in range(0, len(test["puzzle_identifiers"]), 37):
        name = identifiers[test["puzzle_identifiers"][p]]
        base = arc.parse_aug_name(name)[0] if arc.parse_aug_name(name) else name
        for k, e in enumerate(range(test["puzzle_indices"][p], test["puzzle_indices"][p + 1])):
            inp = arc.inverse_aug(name, arc.crop(test["inputs"][e]))
            out_grid = arc.inverse_aug(name, arc.crop(test["labels"][e]))
            assert np.array_equal(inp, tasks[base].test[k][0]) and np.array_equal(out_grid, tasks[base].test[k][1])
    # Every training example is a valid encoding: colours inside one EOS-bordered rectangle per grid.
    train = arrays["train"]
    for e in range(0, len(train["inputs"]), 101):
        for seq in (train["inputs"][e], train["labels"][e]):
            grid = arc.locate_grid(seq)
            assert grid.size and (seq >= 2).sum() == grid.size and seq.max() <= 11


@pytest.mark.slow
def test_arc_rebuild_is_byte_identical_across_workers_and_hash_seeds(tmp_path):
    first = build_small(tmp_path / "a", workers=1)
    env = dict(os.environ, PYTHONHASHSEED="123", OMP_NUM_THREADS="1")
    script = ("import sys; from hrm.data import arc; arc.build(sys.argv[1], sys.argv[2:], num_aug=2, seed=42, "
              "workers=2, log=lambda *_: None)")
    dirs = [str(require_shared("data/arc-agi-1")), str(require_shared("data/conceptarc"))]
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "b"), *dirs], check=True, env=env, cwd=REPO)
    second = tmp_path / "b"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_strict_keeps_evaluation_tasks_out_of_training(tmp_path):
    out = arc.build(tmp_path / "s", [require_shared("data/arc-agi-1/evaluation")], num_aug=1, seed=0, strict=False,
                    log=lambda *_: None)
    assert json.loads((out / "train" / "dataset.json").read_text())["total_groups"] == 393
    with pytest.raises(ArcInputError, match="no evaluation tasks"):
        arc.build(tmp_path / "t", [require_shared("data/conceptarc")], num_aug=1, log=lambda *_: None)
    strict = tmp_path / "strict"
    training = require_shared("data/arc-agi-1")
    arc.build(strict, [training], num_aug=1, seed=0, strict=True, log=lambda *_: None)
    identifiers = json.loads((strict / "identifiers.json").read_text())
    train_ids = np.load(strict / "train" / "all__puzzle_identifiers.npy")
    test_ids = np.load(strict / "test" / "all__puzzle_identifiers.npy")
    assert not set(train_ids.tolist()) & set(test_ids.tolist())
    assert json.loads((strict / "train" / "dataset.json").read_text())["total_groups"] == 400
    assert sorted(test_ids.tolist()) == list(range(len(identifiers) - len(test_ids), len(identifiers)))
