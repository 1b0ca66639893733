"""Breadth at test time: N trajectories per puzzle in one batch, one answer selected without labels, the oracle."""
from __future__ import annotations

import json

import numpy as np
import pytest

import eval_fixtures

from hrm.act_driver import ACTResult
from hrm.cli import main as hrm
from hrm.evaluation.breadth import select


@pytest.fixture(scope="session")
def sudoku_run(tmp_path_factory):
    return eval_fixtures.sudoku_run(tmp_path_factory)


def scripted(predictions, q_halt, residual):
    predictions = np.asarray(predictions)
    n = len(predictions)
    return ACTResult(predictions=predictions, logits=np.zeros(predictions.shape + (3,), np.float32),
                     q_halt=np.asarray(q_halt, np.float32), q_continue=np.zeros(n, np.float32),
                     steps=np.full(n, 2, np.int32), q_halt_step=np.full(n, 2, np.int32),
                     q_halt_predictions=predictions, q_halt_q=np.asarray(q_halt, np.float32),
                     residual=np.asarray(residual, np.float32))


def test_each_selector_picks_its_trajectory():
    # Two puzzles x 4 trajectories, puzzle-major. Puzzle 0: answer [1, 1] three times (one with the lowest Q),
    # [2, 2] once with the highest Q and the smallest residual. Puzzle 1: a 2-2 tie broken by confidence.
    result = scripted([[1, 1], [2, 2], [1, 1], [1, 1], [5, 5], [6, 6], [6, 6], [5, 5]],
                      q_halt=[-1, 3, 0, 0, -2, 1, 1, -2], residual=[0.5, 0.1, 0.4, 0.3, 0.2, 0.9, 0.8, 0.7])
    assert select(result, 4, "vote").tolist() == [0, 1]        # majority; the tie goes to the more confident [6, 6]
    assert select(result, 4, "q").tolist() == [1, 1]
    assert select(result, 4, "residual").tolist() == [1, 0]
    with pytest.raises(ValueError, match="select must be one of"):
        select(result, 4, "best")


def evaluate(run, out, *options):
    assert hrm(["eval", f"checkpoint={run.run_dir}", f"out={out}", "progress=false", *options]) == 0
    return json.loads((out / "results.json").read_text())


def test_noiseless_trajectories_are_one_trajectory(sudoku_run, tmp_path):
    one = evaluate(sudoku_run, tmp_path / "one")
    four = evaluate(sudoku_run, tmp_path / "four", "samples=4")
    assert four["metrics"] == one["metrics"]
    b = four["breadth"]
    assert b["oracle_pass_at_samples"] == b["one_trajectory_exact_accuracy"] == one["metrics"]["exact_accuracy"]


def test_noisy_trajectories_are_selected_and_bounded_by_the_oracle(sudoku_run, tmp_path, capsys, monkeypatch):
    from hrm.export.torch_step import TorchStep
    calls = []
    real = TorchStep.__call__
    monkeypatch.setattr(TorchStep, "__call__", lambda self, carry, inputs, ids: calls.append(len(inputs)) or
                        real(self, carry, inputs, ids))
    results = {}
    for how in ("vote", "q", "residual"):
        results[how] = evaluate(sudoku_run, tmp_path / how, "samples=8", "noise=1.0", f"select={how}", "batch_size=64",
                                "rows_per_forward=512")
        b = results[how]["breadth"]
        assert b["select"] == how and b["samples"] == 8
        assert b["oracle_pass_at_samples"] >= b["selected_exact_accuracy"]
        assert b["oracle_pass_at_samples"] >= b["one_trajectory_exact_accuracy"]
        assert b["selected_exact_accuracy"] == results[how]["metrics"]["exact_accuracy"]
    # One batch of 64 puzzles x 8 trajectories per ACT step (3 steps), not 8 separate evaluations.
    assert set(calls) == {64 * 8} and len(calls) == 3 * 3
    # The noise is seeded: the same command gives the same answers, another seed other trajectories.
    again = evaluate(sudoku_run, tmp_path / "again", "samples=8", "noise=1.0", "select=vote", "batch_size=64")
    assert again["breadth"] == results["vote"]["breadth"]
    assert "oracle pass@8" in capsys.readouterr().out


def test_breadth_options_are_checked(sudoku_run, capsys):
    for option, message in (("samples=0", "samples must be >= 1"), ("noise=-1", "noise must be >= 0"),
                            ("select=best", "select must be vote, vote+residual, q or residual")):
        assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", option]) == 2
        assert message in capsys.readouterr().err
