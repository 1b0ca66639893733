"""`hrm viz` on the command line: the PNG trajectory (from predictions, or computed with PyTorch), the
server started as a user starts it, and the errors for bad arguments."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from viz_fixtures import ARC_GRIDS, arc_sequence, write_sudoku_dataset
from hrm.viz.commands import main
from hrm.viz.png import Trajectory, draw_trajectory
from hrm.viz.tasks import ARC_COLOURS, task_style


def colours_in(png) -> set[tuple[int, int, int]]:
    pixels = (imread(str(png))[..., :3] * 255).round().astype(int).reshape(-1, 3)
    return set(map(tuple, np.unique(pixels, axis=0).tolist()))


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_png_of_a_predicted_trajectory(sudoku_dataset, sudoku_predictions, tmp_path, capsys):
    out = tmp_path / "figures" / "trajectory.png"
    assert main([str(sudoku_dataset), str(sudoku_predictions), "--png", str(out), "--index", "1"]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    image = imread(str(out))
    assert image.shape[1] > 1000 and image.shape[0] > 400           # input, target, chart and 4 step panels
    assert hex_rgb("#e11d48") in colours_in(out)                    # errors are marked in red
    assert list(out.parent.iterdir()) == [out]                      # no temporary file left behind


def test_png_uses_the_arc_colours(tmp_path):
    grid_in, grid_out = ARC_GRIDS[1]
    inputs, labels = arc_sequence(grid_in).astype(np.int64), arc_sequence(grid_out).astype(np.int64)
    labels = np.where(labels == 0, -100, labels)
    steps = np.stack([arc_sequence(grid_in), arc_sequence(grid_out)]).astype(np.int64)
    trajectory = Trajectory(inputs, labels, steps, np.array([-2.0, 3.0]), np.array([0.0, 0.0]), "arc")
    out = draw_trajectory(task_style("arc", 900, 12), trajectory, tmp_path / "arc.png")
    found = colours_in(out)
    used = set(grid_in.ravel()) | set(grid_out.ravel())
    assert {hex_rgb(ARC_COLOURS[c]) for c in used} <= found


@pytest.fixture
def tiny_sudoku_weights(tmp_path):
    from hrm.models import HRMConfig, build_model
    from hrm.models.checkpoint import save_weights

    torch.manual_seed(0)
    config = HRMConfig(seq_len=36, vocab_size=8, hidden_size=32, num_heads=2, H_layers=1, L_layers=1, expansion=2,
                       puzzle_emb_ndim=32, halt_max_steps=3)
    return save_weights(build_model(config), config, tmp_path / "weights") or tmp_path / "weights"


def test_png_computed_with_the_model(tiny_sudoku_weights, tmp_path, capsys):
    from hrm.viz.model import load_model, torch_trajectory

    out = tmp_path / "typed.png"
    puzzle = "1.. ...|..2 ...|... 3..|.4. ...|... .5.|... ..6"
    assert main(["--model", str(tiny_sudoku_weights), "--png", str(out), "--puzzle", puzzle]) == 0
    assert "(3 steps)" in capsys.readouterr().out and out.is_file()

    model = load_model(tiny_sudoku_weights)
    assert model.task == "sudoku" and model.box == (2, 3)
    trajectory = torch_trajectory(model, np.array([2] + [1] * 35))
    assert trajectory.steps.shape == (3, 36) and trajectory.q_halt.shape == (3,)

    dataset = write_sudoku_dataset(tmp_path / "six", box=(2, 3))
    out = tmp_path / "example.png"
    assert main([str(dataset), "--model", str(tiny_sudoku_weights), "--png", str(out), "--index", "2"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["/no/such/dataset"], "/no/such/dataset: no such file or folder"),
    (["--png", "x.png"], "--png needs a predictions file"),
    (["--puzzle", "1", "--png", "x.png"], "--puzzle needs --model"),
    (["--port", "0"], "nothing to show"),
])
def test_bad_arguments_say_what_is_wrong(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_typed_puzzle_with_a_bad_character_is_explained(tiny_sudoku_weights, tmp_path, capsys):
    assert main(["--model", str(tiny_sudoku_weights), "--png", str(tmp_path / "x.png"), "--puzzle", "1x" + "." * 34]) == 2
    assert "character 2: 'x' is not a cell" in capsys.readouterr().err


def test_the_server_runs_as_a_user_starts_it(sudoku_dataset, sudoku_predictions):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "hrm.cli", "viz", str(sudoku_dataset), str(sudoku_predictions),
                                "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert "serving on http://127.0.0.1:" in line, line + process.stderr.read()
        url = line.split("serving on ")[1].split()[0]
        with urllib.request.urlopen(url + "api/info", timeout=10) as response:
            info = json.load(response)
        assert info["task"] == "sudoku" and info["predictions"]["path"] == str(sudoku_predictions)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"HRM visualiser" in response.read()
    finally:
        process.send_signal(signal.SIGINT)            # Ctrl-C stops it cleanly
        assert process.wait(timeout=20) == 0
