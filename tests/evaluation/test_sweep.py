"""Test-time scaling: selection at every depth of one run, the sweep's cells and files, random initial
latents, seeded subsets, the protocol that goes with every number, and the options' errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import eval_fixtures
from hrm.act_driver import ACTResult, StepOutputs, run_act
from hrm.cli import main as hrm
from hrm.evaluation.breadth import select
from hrm.evaluation.loop import rows_hash, subset_rows
from hrm.evaluation.predictions import read_predictions
from hrm.evaluation.sweep import cell_counts
from hrm.models import IGNORE_LABEL_ID


@pytest.fixture(scope="session")
def sudoku_run(tmp_path_factory):
    return eval_fixtures.sudoku_run(tmp_path_factory)


def trajectories(step_predictions, step_q_halt, step_residual) -> ACTResult:
    """A scripted result: rows = puzzles x trajectories (puzzle-major), K steps each."""
    preds = np.asarray(step_predictions)
    q, r = np.asarray(step_q_halt, np.float32), np.asarray(step_residual, np.float32)
    n, K, S = preds.shape
    return ACTResult(predictions=preds[:, -1], logits=np.zeros((n, S, 3), np.float32), q_halt=q[:, -1],
                     q_continue=np.zeros(n, np.float32), steps=np.full(n, K, np.int32), q_halt_step=np.full(n, K, np.int32),
                     q_halt_predictions=preds[:, -1], q_halt_q=q[:, -1], step_predictions=preds, step_q_halt=q,
                     step_q_continue=np.zeros((n, K), np.float32), residual=r[:, -1], step_residual=r)


# One puzzle, four trajectories, two steps; answers are one token.
#   step 1: answers 7 7 8 8 (a 2-2 tie), q favours the 7s, the residual the 8s
#   step 2: answers 7 8 8 8 (8 has the majority), trajectory 0 has the highest q and the smallest residual
SCRIPT = trajectories(
    [[[7], [7]], [[7], [8]], [[8], [8]], [[8], [8]]],
    step_q_halt=[[2.0, 5.0], [1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]],
    step_residual=[[0.9, 0.1], [0.8, 0.5], [0.2, 0.6], [0.3, 0.7]])


def test_each_selector_picks_from_the_outputs_of_the_depth_asked_for():
    expected = {1: {"vote": 0, "vote+residual": 2, "q": 0, "residual": 2},
                2: {"vote": 1, "vote+residual": 1, "q": 0, "residual": 0}}
    for depth, picks in expected.items():
        for how, trajectory in picks.items():
            assert select(SCRIPT, 4, how, depth=depth).tolist() == [trajectory], (depth, how)
    for how in expected[2]:          # no depth: the last step's outputs
        assert select(SCRIPT, 4, how).tolist() == [expected[2][how]], how


def test_vote_plus_residual_keeps_the_majority_and_breaks_ties_by_mean_residual_then_order():
    # Puzzle 0: 5 5 5 6, the 6 with by far the smallest residual: the majority wins.
    # Puzzle 1: 5 5 6 6 with mean residuals 0.5 and 0.35: the 6s. Puzzle 2: a tie of equal means: first seen.
    result = trajectories([[[5]], [[5]], [[5]], [[6]], [[5]], [[5]], [[6]], [[6]], [[6]], [[5]], [[5]], [[6]]],
                          step_q_halt=[[0.0]] * 12,
                          step_residual=[[0.9], [0.9], [0.9], [0.01], [0.1], [0.9], [0.3], [0.4], [0.2], [0.4],
                                         [0.2], [0.4]])
    assert select(result, 4, "vote+residual").tolist() == [0, 2, 0]


def test_cell_counts_score_every_selector_the_first_trajectory_and_the_oracle_at_each_depth():
    # Two puzzles x 4 trajectories: puzzle 0 is SCRIPT (label 8); puzzle 1 is padding (ignored labels).
    both = ACTResult.concatenate([SCRIPT, SCRIPT])
    labels = np.array([[8], [IGNORE_LABEL_ID]])
    counts = cell_counts(both, 4, [1, 2], labels, counted=(labels != IGNORE_LABEL_ID).any(-1))
    assert counts == {"sweep/1/vote": 0.0, "sweep/1/vote+residual": 1.0, "sweep/1/q": 0.0, "sweep/1/residual": 1.0,
                      "sweep/1/one": 0.0, "sweep/1/oracle": 1.0,
                      "sweep/2/vote": 1.0, "sweep/2/vote+residual": 1.0, "sweep/2/q": 0.0, "sweep/2/residual": 0.0,
                      "sweep/2/one": 0.0, "sweep/2/oracle": 1.0}


class ScriptedStep:
    """A step whose residual is 10 * step + row and whose Q head says halt for row 0 at its second step."""

    name, carry_positions = "scripted", 1
    carry_init = {"z_H": np.zeros(2, np.float32)}

    def __call__(self, carry, inputs, ids):
        z = carry["z_H"] + 1
        k = z[:, 0, 0]
        rows = inputs[:, 0].astype(np.float32)
        q_halt = np.where((rows == 0) & (k == 2), 1.0, -1.0).astype(np.float32)
        return StepOutputs({"z_H": z}, np.zeros((len(inputs), 1, 3), np.float32), q_halt,
                           np.zeros(len(inputs), np.float32), 10 * k + rows)


def test_the_driver_records_every_steps_residual_and_time():
    out = run_act(ScriptedStep(), np.array([[0], [1]]), np.zeros(2, np.int32), 3, halt_early=True)
    np.testing.assert_array_equal(out.step_residual, [[10, 20, np.nan], [11, 21, 31]])
    np.testing.assert_array_equal(out.residual, [20, 31])               # each row's last step
    assert out.step_seconds.shape == (3,) and np.all(np.diff(out.step_seconds) >= 0)
    assert out.step_seconds[-1] <= out.seconds
    assert out.take(np.array([1])).step_seconds is out.step_seconds     # a batch's time, not a row's


def evaluate(run, out, *options):
    assert hrm(["eval", f"checkpoint={run.run_dir}", f"out={out}", "progress=false", *options]) == 0
    name = "sweep.json" if (out / "sweep.json").exists() else "results.json"
    return json.loads((out / name).read_text())


def cell(sweep, depth, samples):
    (found,) = [c for c in sweep["cells"] if (c["depth"], c["samples"]) == (depth, samples)]
    return found


def test_one_run_per_breadth_scores_every_depth_as_its_own_evaluation(sudoku_run, tmp_path, monkeypatch):
    from hrm.export.torch_step import TorchStep
    calls = []
    real = TorchStep.__call__
    monkeypatch.setattr(TorchStep, "__call__", lambda self, carry, inputs, ids: calls.append(len(inputs)) or
                        real(self, carry, inputs, ids))
    sweep = evaluate(sudoku_run, tmp_path / "sweep", "steps=1,2,5", "samples=1,4", "batch_size=64",
                     "rows_per_forward=256")
    # One batch of 64 puzzles: 5 steps at breadth 1, then 5 steps of 64 x 4 rows; not a run per cell.
    assert calls == [64] * 5 + [256] * 5
    calls.clear()
    evaluate(sudoku_run, tmp_path / "chunked", "steps=1,2,5", "samples=1,4", "batch_size=64")
    assert calls == [64] * 5 + [64] * 4 * 5       # on the CPU in chunks of 64 rows (16 puzzles x 4) by default
    monkeypatch.setattr(TorchStep, "__call__", real)
    for depth in (1, 2, 5):
        alone = evaluate(sudoku_run, tmp_path / f"d{depth}", f"steps={depth}", "batch_size=64")["metrics"]
        one = cell(sweep, depth, 1)
        assert set(one["exact_accuracy"].values()) == {alone["exact_accuracy"]}, depth      # (D, 1) = steps=D
        assert one["one_trajectory_exact_accuracy"] == one["oracle_pass_at_samples"] == alone["exact_accuracy"]
        assert cell(sweep, depth, 4)["exact_accuracy"] == one["exact_accuracy"]          # noiseless: one trajectory
        assert cell(sweep, depth, 4)["forward_passes_per_puzzle"] == 4 * depth
    assert 0 < cell(sweep, 1, 1)["seconds"] < cell(sweep, 5, 1)["seconds"]


def test_a_noisy_cell_is_the_single_evaluation_of_that_depth_and_breadth(sudoku_run, tmp_path):
    """Noise on the initial state is drawn before the first step: the cell (2, 4) of a run of depth 3 is the
    evaluation steps=2 samples=4, selector by selector."""
    sweep = evaluate(sudoku_run, tmp_path / "sweep", "steps=2,3", "samples=4", "noise=0.5", "batch_size=64")
    got = cell(sweep, 2, 4)
    for how in ("vote", "residual"):
        alone = evaluate(sudoku_run, tmp_path / how, "steps=2", "samples=4", "noise=0.5", f"select={how}",
                         "batch_size=64")["breadth"]
        assert got["exact_accuracy"][how] == alone["selected_exact_accuracy"], how
        assert got["one_trajectory_exact_accuracy"] == alone["one_trajectory_exact_accuracy"]
        assert got["oracle_pass_at_samples"] == alone["oracle_pass_at_samples"]


@pytest.fixture(scope="module")
def noisy_sweep(sudoku_run, tmp_path_factory):
    """(the sweep's folder, sweep.json, what it printed)."""
    import contextlib
    import io

    out, printed = tmp_path_factory.mktemp("noisy") / "sweep", io.StringIO()
    with contextlib.redirect_stdout(printed):
        sweep = evaluate(sudoku_run, out, "steps=1,3", "samples=1,4", "noise=0.5", "init=random")
    return out, sweep, printed.getvalue()


def test_the_sweep_writes_its_table_json_and_curves(noisy_sweep):
    out, sweep, printed = noisy_sweep
    assert "oracle@B" in printed and "vote+res" in printed and "upper bound" in printed
    assert len(sweep["cells"]) == 4 and [r["samples"] for r in sweep["runs"]] == [1, 4]
    for c in sweep["cells"]:
        assert c["forward_passes_per_puzzle"] == c["depth"] * c["samples"]
        assert all(c["oracle_pass_at_samples"] >= a for a in c["exact_accuracy"].values())
        assert c["oracle_pass_at_samples"] >= c["one_trajectory_exact_accuracy"]
    p = sweep["protocol"]
    assert p["halt_max_steps"] == [1, 3] and p["samples"] == [1, 4] and p["select"] == ["vote", "vote+residual", "q", "residual"]
    assert p["diversity"] == {"noise": 0.5, "noise_every_step": False, "init": "random", "seed": 0}
    for name in ("depth", "breadth", "compute"):
        assert (out / f"sweep_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_protocol_goes_with_every_number(sudoku_run, noisy_sweep, tmp_path, capsys):
    results = evaluate(sudoku_run, tmp_path / "one", "subset=20", "subset_seed=2")
    _, sweep, printed_by_sweep = noisy_sweep
    printed = capsys.readouterr().out + printed_by_sweep
    p = results["protocol"]
    assert p["checkpoint"] == str(sudoku_run.checkpoint) and p["checkpoint_step"] == 280 and p["weights"] == "live"
    assert (p["device"], p["dtype"], p["backend"]) == ("cpu", "float32", "torch")
    assert p["dataset_hash"] == results["dataset_hash"] and len(p["dataset_hash"]) == 64
    assert p["test_set"] == {"selection": "subset", "examples": 20, "of": 64, "subset_seed": 2,
                             "rows_sha256": rows_hash(subset_rows(64, 20, 2))}
    assert (p["halt_max_steps"], p["samples"], p["select"], p["tta_versions"]) == (3, 1, "vote", 1)
    assert (p["halting"], p["halt_rule"]) == ("fixed", "q_halt > q_continue")
    assert p["diversity"] == {"noise": 0.0, "noise_every_step": False, "init": "learned", "seed": 0}
    assert set(sweep["protocol"]) == set(p) and sweep["protocol"]["test_set"]["selection"] == "full"
    assert "test set    a subset of 20 of the 64 examples (subset_seed 2" in printed
    assert "test set    the whole split (64 examples)" in printed


def test_a_subset_is_the_same_seeded_rows_everywhere():
    # NumPy's legacy stream is frozen: these are the rows on every machine and NumPy version.
    assert subset_rows(10, 4, 0).tolist() == [2, 4, 8, 9]
    assert subset_rows(10, 4, 1).tolist() == [2, 4, 6, 9]
    assert subset_rows(1000, 10, 7).tolist() == [94, 170, 216, 271, 334, 408, 487, 778, 802, 812]
    assert rows_hash(np.array([1, 2, 3])) == "e2e2033ae7e19d68"
    assert rows_hash(subset_rows(1000, 10, 7)) != rows_hash(subset_rows(1000, 10, 8))
    assert subset_rows(5, 5, 3).tolist() == [0, 1, 2, 3, 4]
    for size in (0, 6):
        with pytest.raises(ValueError, match="between 1 and the split's 5 examples"):
            subset_rows(5, size, 0)


def test_subset_evaluates_exactly_those_rows_in_any_batching(sudoku_run, tmp_path):
    full = tmp_path / "full"
    evaluate(sudoku_run, full, "batch_size=64")
    small = tmp_path / "small"
    results = evaluate(sudoku_run, small, "subset=13", "subset_seed=5", "batch_size=5")    # 3 batches, the last padded
    rows = subset_rows(64, 13, 5)
    everything, _ = read_predictions(full)
    chosen, _ = read_predictions(small)
    assert results["metrics"]["count"] == 13
    for name in ("inputs", "labels", "predictions"):
        assert np.array_equal(chosen[name], everything[name][rows]), name
    assert results["metrics"]["exact_accuracy"] == everything["exact"][rows].mean()


def tiny_step(init: str, seed: int = 0):
    from hrm.export.torch_step import TorchStep
    from hrm.models import HRMConfig, build_model

    torch.manual_seed(0)
    head = build_model(HRMConfig(seq_len=4, vocab_size=5, num_puzzle_identifiers=1, batch_size=2, **eval_fixtures.TINY))
    return TorchStep(head.model.inner, device_carry=True, init=init, seed=seed)


def test_random_initial_latents_are_seeded_draws_at_the_models_init_scale():
    steps = [tiny_step("random"), tiny_step("random"), tiny_step("random", seed=1), tiny_step("learned")]
    before = torch.get_rng_state()
    a, b, other, learned = (step.fresh_carry(512) for step in steps)
    assert torch.equal(torch.get_rng_state(), before)            # torch's own generator is left alone
    assert set(a) == set(learned) == {"z_H", "z_L"}
    for name, z in a.items():
        assert z.shape == learned[name].shape == (512, 4 + 1, 32)      # positions: puzzle embedding + seq_len
        assert torch.equal(z, b[name]) and not torch.equal(z, other[name])
        assert torch.equal(z, z[:, :1].expand_as(z))                 # one state per row, at every position
        assert not torch.equal(z[0], z[1]) and not torch.equal(z[0], learned[name][0])
        assert abs(z[:, 0].std().item() - 1.0) < 0.03 and z.abs().max() < 2.5      # truncated normal, std 1
    step = tiny_step("random")
    assert not torch.equal(step.fresh_carry(4)["z_H"], step.fresh_carry(4)["z_H"])   # each batch draws anew


def test_breadth_in_chunks_runs_the_same_trajectories_as_in_one_piece(sudoku_run, tmp_path, monkeypatch):
    """rows_per_forward=N runs a batch's puzzles x trajectories in chunks of whole puzzles: the chunks draw
    their noise and random initial states from the whole batch's draw, so every answer is the same."""
    from hrm.export.torch_step import TorchStep
    calls = []
    real = TorchStep.__call__
    monkeypatch.setattr(TorchStep, "__call__", lambda self, carry, inputs, ids: calls.append(len(inputs)) or
                        real(self, carry, inputs, ids))
    options = ("samples=4", "noise=0.5", "init=random", "select=q", "batch_size=64", "save_steps=true")
    whole = evaluate(sudoku_run, tmp_path / "whole", *options, "rows_per_forward=256")
    assert calls == [256] * 3
    calls.clear()
    chunked = evaluate(sudoku_run, tmp_path / "chunked", *options, "rows_per_forward=100")
    assert calls == [100] * 3 + [100] * 3 + [56] * 3    # 25 whole puzzles x 4 trajectories a chunk, 3 steps each
    assert chunked["metrics"] == whole["metrics"] and chunked["breadth"] == whole["breadth"]
    a, _ = read_predictions(tmp_path / "whole")
    b, _ = read_predictions(tmp_path / "chunked")
    for name in ("predictions", "q_halt_logits", "step_predictions"):
        assert np.array_equal(a[name], b[name]), name
    # Without the whole batch's draw, the chunks would draw other noise: other trajectories.
    monkeypatch.setattr(TorchStep, "reserve", lambda self, rows: None)
    evaluate(sudoku_run, tmp_path / "undrawn", *options, "rows_per_forward=100")
    assert not np.array_equal(a["step_predictions"], read_predictions(tmp_path / "undrawn")[0]["step_predictions"])


def test_the_sweep_takes_tta_versions_as_part_of_every_breadth(sudoku_run, tmp_path):
    """With tta=K each breadth B is K versions x B trajectories; a cell equals that single evaluation."""
    sweep = evaluate(sudoku_run, tmp_path / "sweep", "steps=1,3", "samples=1,2", "tta=2", "seed=4")
    assert [(c["depth"], c["samples"], c["versions"], c["forward_passes_per_puzzle"]) for c in sweep["cells"]] == \
        [(1, 1, 2, 2), (3, 1, 2, 6), (1, 2, 2, 4), (3, 2, 2, 12)]
    assert sweep["protocol"]["tta_versions"] == 2
    for depth, samples in ((3, 1), (1, 2)):
        single = evaluate(sudoku_run, tmp_path / f"d{depth}b{samples}", f"steps={depth}", f"samples={samples}",
                          "tta=2", "seed=4")
        assert cell(sweep, depth, samples)["exact_accuracy"]["vote"] == single["metrics"]["exact_accuracy"]
        assert cell(sweep, depth, samples)["oracle_pass_at_samples"] == single["breadth"]["oracle_pass_at_samples"]


def test_random_initial_latents_change_the_answers_the_same_way_each_time(sudoku_run, tmp_path):
    learned = evaluate(sudoku_run, tmp_path / "learned")
    first = evaluate(sudoku_run, tmp_path / "a", "init=random", "samples=4")
    again = evaluate(sudoku_run, tmp_path / "b", "init=random", "samples=4")
    assert first["breadth"] == again["breadth"] and first["metrics"] == again["metrics"]
    assert first["breadth"]["init"] == "random" == first["protocol"]["diversity"]["init"]
    a, _ = read_predictions(tmp_path / "a")
    assert np.array_equal(a["predictions"], read_predictions(tmp_path / "b")[0]["predictions"])
    assert not np.array_equal(a["predictions"], read_predictions(tmp_path / "learned")[0]["predictions"])
    assert learned["protocol"]["diversity"]["init"] == "learned"


@pytest.mark.parametrize("options,message", [
    (["steps=0,2"], "steps must be >= 1 (ACT steps per puzzle), got 0,2"),
    (["samples=1,0"], "samples must be >= 1"),
    (["steps=1,2", "halting=q"], "a sweep (a list in steps= or samples=) reports the fixed rule"),
    (["samples=1,4", "rows_per_forward=0"], "rows_per_forward must be >= 1"),
    (["steps=1,x"], "expected an integer"),
    (["init=zeros"], "init must be learned or random"),
    (["init=random", "backend=numpy"], "init=random apply to backend=torch"),
    (["subset=0"], "subset must be >= 1"),
    (["subset=65"], "subset=65 is more than the 64 examples of the test split"),
    (["subset=4", "max_examples=4"], "give one of them"),
])
def test_bad_scaling_options_give_one_line_errors(sudoku_run, options, message, capsys):
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", "progress=false", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
