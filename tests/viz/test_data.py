"""Reading datasets and predictions for the visualiser: what is accepted, and the errors for what is not."""
from __future__ import annotations


import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from viz_fixtures import ARC_NAMES, write_sudoku_dataset, write_sudoku_predictions
from hrm.viz.data import VizData, VizError, load_predictions
from hrm.puzzles import detect, family_name
from hrm.viz.tasks import sudoku_box, task_style, view_box


def rewrite(path, drop=(), **replace):
    """Rewrite a predictions.safetensors with some tensors dropped or replaced (metadata kept)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata()
    arrays = {k: v for k, v in load_file(str(path)).items() if k not in drop} | replace
    save_file(arrays, str(path), metadata=metadata)


def test_predictions_safetensors_and_npz_read_the_same(sudoku_dataset, tmp_path):
    safetensors = write_sudoku_predictions(sudoku_dataset, tmp_path / "st")
    npz = write_sudoku_predictions(sudoku_dataset, tmp_path / "npz", file_format="npz")
    a, b = load_predictions(safetensors), load_predictions(npz)
    assert a.num_steps == b.num_steps == 4 and a.split == b.split == "test" and a.metadata == b.metadata
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    assert load_predictions(tmp_path / "st").path == safetensors          # the folder holding it


def test_predictions_alone_take_names_from_the_recorded_dataset(sudoku_dataset, sudoku_predictions):
    data = VizData(predictions=sudoku_predictions)
    assert data.task == "sudoku" and list(data.splits) == ["test"] and data.names == ["<blank>"]
    example = data.example("test", 1)
    assert example["name"] == "<blank>" and example["puzzle"] is None and example["prediction"]["exact"] is False


@pytest.mark.parametrize("problem, message", [
    (dict(drop=["exact"]), "missing array(s) exact"),
    (dict(drop=["step_q_halt_logits"]), "per-step tensors are incomplete"),
    (dict(predictions=np.zeros((6, 80), np.int32)), "tensor 'predictions' has shape (6, 80), expected (6, 81)"),
    (dict(step_predictions=np.zeros((6, 4, 81), np.float32)), "tensor 'step_predictions' is float32"),
    (dict(q_halt_logits=np.zeros((5,), np.float32)), "tensor 'q_halt_logits' has shape (5,), expected (6,)"),
])
def test_malformed_predictions_are_named(sudoku_predictions, problem, message):
    rewrite(sudoku_predictions, **problem)
    with pytest.raises(VizError) as error:
        load_predictions(sudoku_predictions)
    assert str(sudoku_predictions) in str(error.value) and message in str(error.value)


def test_predictions_from_another_dataset_are_refused(sudoku_dataset, tmp_path):
    other = write_sudoku_dataset(tmp_path / "other", seed=7)
    predictions = write_sudoku_predictions(other, tmp_path / "eval")
    with pytest.raises(VizError, match="row 0 has different inputs from example 0 .* made on another dataset"):
        VizData(sudoku_dataset, predictions)


def test_dataset_errors_name_the_file(sudoku_dataset):
    (sudoku_dataset / "test" / "all__puzzle_indices.npy").write_bytes(b"not numpy")
    with pytest.raises(VizError, match="all__puzzle_indices.npy: not a valid .npy file"):
        VizData(sudoku_dataset)
    with pytest.raises(VizError, match="dataset folder not found"):
        VizData(sudoku_dataset / "missing")
    with pytest.raises(VizError, match="nothing to show"):
        VizData()


def test_inconsistent_puzzle_indices_are_refused(sudoku_dataset):
    np.save(sudoku_dataset / "test" / "all__puzzle_indices.npy", np.array([0, 1, 2, 3, 4, 5, 9], np.int32))
    with pytest.raises(VizError, match="puzzle_indices must rise from 0 to the 6 examples"):
        VizData(sudoku_dataset)


def detect_task(seq_len, vocab_size, *names):
    return family_name(detect(seq_len, vocab_size, *names))


def test_the_task_comes_from_hints_then_sizes():
    assert detect_task(81, 11) == "sudoku" and detect_task(36, 8) == "sudoku" and detect_task(16, 6) == "sudoku"
    assert detect_task(900, 6) == "maze" and detect_task(900, 12) == "arc" and detect_task(50, 7) == "unknown"
    assert detect_task(900, 12, None, "maze") == "maze"
    assert detect_task(81, 11, "sudoku-generated") == "sudoku"          # a builder's name
    assert sudoku_box(9) == (3, 3) and sudoku_box(6) == (2, 3) and sudoku_box(4) == (2, 2) and sudoku_box(8) == (2, 4)
    assert task_style("sudoku", 36, 8, (3, 2)).box == (3, 2)
    with pytest.raises(ValueError, match="vocab = N \\+ 2"):
        task_style("sudoku", 81, 12)
    assert task_style("unknown", 10, 3).rows == 1 and task_style("unknown", 10, 3).cols == 10


def test_six_by_six_sudoku_takes_its_box_from_the_manifest(tmp_path):
    data = VizData(write_sudoku_dataset(tmp_path / "s", box=(3, 2)))
    assert data.style.box == (3, 2) and data.style.rows == 6


def test_arc_view_is_the_grid_and_its_eos_border(arc_dataset):
    data = VizData(arc_dataset)
    assert [data.example("test", i)["view"] for i in range(3)] == [(0, 0, 4, 4), (0, 0, 3, 5), (0, 0, 2, 11)]
    assert [data.example("test", i)["name"] for i in range(3)] == ARC_NAMES[1:]
    # A translated example (training splits) is framed where it lies.
    style = data.style
    seq = np.zeros(900, np.int64)
    seq.reshape(30, 30)[10:12, 5:8] = 3
    assert view_box(style, seq) == (10, 5, 3, 4)
    assert view_box(style, np.zeros(900, np.int64)) == (0, 0, 30, 30)
