"""`hrm eval` end to end: a checkpoint trained in the test, the predictions file, the options, the checks,
an original-format checkpoint and dataset, ARC outputs, and torchrun with two processes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import eval_fixtures
from hrm.cli import main as hrm
from hrm.evaluation import arc
from hrm.evaluation.predictions import read_predictions


@pytest.fixture(scope="session")
def sudoku_run(tmp_path_factory):
    return eval_fixtures.sudoku_run(tmp_path_factory)


@pytest.fixture(scope="session")
def arc_ckpt(tmp_path_factory):
    return eval_fixtures.arc_ckpt(tmp_path_factory)


def results_of(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_eval_of_a_trained_run_matches_the_trainers_evaluation(sudoku_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", f"out={out}", "progress=false"]) == 0
    printed = capsys.readouterr().out
    assert "exact accuracy" in printed and "halt_max_steps=3" in printed and "augmentations: none" in printed

    results = results_of(out)
    trained = sudoku_run.eval_metrics
    assert results["metrics"]["count"] == 64 == trained["eval/count"]
    for name in ("exact_accuracy", "accuracy", "q_halt_accuracy", "steps"):
        assert results["metrics"][name] == pytest.approx(trained[f"eval/{name}"], abs=1e-6), name
    assert 0.1 < results["metrics"]["exact_accuracy"] < 1.0        # learned something, not everything

    arrays, meta = read_predictions(out)
    assert meta == {"format": "hrm-predictions", "version": "1", "task": "sudoku", "data_path": str(sudoku_run.data_path),
                    "split": "test", "checkpoint": str(sudoku_run.checkpoint), "halt_max_steps": 3,
                    "dataset_hash": meta["dataset_hash"]} and len(meta["dataset_hash"]) == 64
    assert arrays["inputs"].shape == arrays["predictions"].shape == (64, 16)
    assert arrays["predictions"].dtype == np.int32 and arrays["exact"].dtype == np.bool_
    assert arrays["exact"].mean() == pytest.approx(results["metrics"]["exact_accuracy"])
    test_inputs = np.load(sudoku_run.data_path / "test" / "all__inputs.npy")
    assert np.array_equal(arrays["inputs"], test_inputs)            # split order, no padding rows
    assert "step_predictions" not in arrays


def test_tta_is_breadth_over_versions_with_the_vote(sudoku_run, tmp_path, capsys):
    """tta=K equals K separate evaluations, one per version of the board (the original and K - 1 symmetries
    drawn per puzzle), each answer mapped back, and their majority (ties: the mean sigmoid(q_halt)). Rows
    whose separate vote is a near tie may differ by rounding between batch shapes: they are left out, and
    must be few."""
    from hrm.evaluation import tta
    from hrm.evaluation.loop import run_batch
    from hrm.evaluation.voting import rank
    from hrm.runs import open_run

    versions, seed, out = 4, 3, tmp_path / "tta"
    assert hrm(["eval", f"checkpoint={sudoku_run.checkpoint}", f"out={out}", f"tta={versions}", f"seed={seed}",
                "progress=false"]) == 0
    assert "4 versions of the board (the original + 3 random symmetries, answers mapped back)" in capsys.readouterr().out
    results = results_of(out)
    assert results["tta"]["versions"] == 4 and results["breadth"]["trajectories"] == 4
    assert results["tta"]["selected"]["exact_accuracy"] == results["metrics"]["exact_accuracy"]   # the headline
    assert results["tta"]["gain"] == pytest.approx(results["tta"]["selected"]["exact_accuracy"]
                                                   - results["tta"]["single_pass"]["exact_accuracy"])
    # The first trajectory is the original board without noise: the trainer's own evaluation (in a batch of
    # another shape, so one puzzle on a near tie may round the other way).
    assert results["tta"]["single_pass"]["exact_accuracy"] == pytest.approx(
        sudoku_run.eval_metrics["eval/exact_accuracy"], abs=1.01 / 64)
    arrays, _ = read_predictions(out)
    assert arrays["exact"].mean() == pytest.approx(results["metrics"]["exact_accuracy"])
    run = open_run(sudoku_run.checkpoint, device="cpu", dtype="float32")
    inputs = np.load(sudoku_run.data_path / "test" / "all__inputs.npy").astype(np.int64)
    ids = np.load(sudoku_run.data_path / "test" / "all__puzzle_identifiers.npy").astype(np.int32)
    assert len(ids) == len(inputs)                                       # one puzzle per example
    augmenter = run.family.augmenter(inputs.shape[1], run.arch.vocab_size, run.box)
    mappings, token_maps = tta.draw_versions(augmenter, np.arange(len(inputs)), versions - 1, seed)
    ballots = [[] for _ in inputs]
    for v in range(versions):
        frame = inputs if v == 0 else tta.apply(inputs, mappings[v - 1], token_maps[v - 1])
        result = run_batch(run.head.eval(), {"inputs": torch.from_numpy(frame.astype(np.int32)),
                                             "puzzle_identifiers": torch.from_numpy(ids)})
        answers = result.predictions if v == 0 else tta.invert(result.predictions, mappings[v - 1], token_maps[v - 1])
        for row, (answer, q) in enumerate(zip(answers, result.q_halt)):
            ballots[row].append((answer.tobytes(), answer, float(q)))
    checked = 0
    for row, ballot in enumerate(ballots):
        ranked = rank(ballot)
        if len(ranked) > 1 and ranked[0].votes == ranked[1].votes and \
                abs(ranked[0].confidence - ranked[1].confidence) < 1e-3:
            continue
        assert np.array_equal(arrays["predictions"][row], ranked[0].answer), row
        checked += 1
    assert checked >= len(inputs) - 4
    assert len({tuple(a) for b in ballots for _, a, _ in b}) > len(inputs)      # the versions do differ


def test_q_halting_steps_and_npz(sudoku_run, tmp_path):
    out = tmp_path / "out"
    assert hrm(["eval", f"checkpoint={sudoku_run.checkpoint}", f"out={out}", "halting=q", "save_steps=true",
                "format=npz", "batch_size=24", "progress=false"]) == 0
    results = results_of(out)
    comparison = results["q_halting"]["comparison"]
    assert comparison["fixed_exact_accuracy"] == pytest.approx(sudoku_run.eval_metrics["eval/exact_accuracy"])
    assert comparison["compute_saved"] == pytest.approx(1 - results["q_halting"]["metrics"]["steps"] / 3)

    arrays, meta = read_predictions(out / "predictions.npz")
    assert (out / "predictions.json").is_file() and meta["task"] == "sudoku"
    steps, halts, conts = arrays["step_predictions"], arrays["step_q_halt_logits"], arrays["step_q_continue_logits"]
    assert steps.shape == (64, 3, 16) and halts.shape == conts.shape == (64, 3)
    # With halting=q a row's answer is its prediction at the first step where q_halt > q_continue.
    says = halts > conts
    says[:, -1] = True
    first = says.argmax(1)
    assert np.array_equal(arrays["predictions"], steps[np.arange(64), first])
    assert np.array_equal(arrays["q_halt_logits"], halts[np.arange(64), first])
    assert results["q_halting"]["metrics"]["exact_accuracy"] == pytest.approx(arrays["exact"].mean())


def test_max_examples_evaluates_a_prefix(sudoku_run, tmp_path):
    out = tmp_path / "out"
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", f"out={out}", "max_examples=10", "batch_size=8",
                "progress=false"]) == 0
    arrays, _ = read_predictions(out)
    assert results_of(out)["metrics"]["count"] == 10 and len(arrays["inputs"]) == 10


def test_another_dataset_is_refused_unless_forced(sudoku_run, tmp_path, capsys):
    from hrm.data.sudoku import build_generated_dataset

    other = build_generated_dataset(tmp_path / "other", 20, 8, box=(2, 2), seed=5, log=lambda *_: None)
    args = ["eval", f"checkpoint={sudoku_run.run_dir}", f"data_path={other}", f"out={tmp_path / 'o'}", "progress=false"]
    assert hrm(args) == 2
    assert "is not the dataset checkpoint" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert hrm(args + ["force=true"]) == 0
    assert "WARNING" in capsys.readouterr().out

    six = build_generated_dataset(tmp_path / "six", 10, 4, box=(2, 3), seed=0, log=lambda *_: None)
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", f"data_path={six}", "force=true", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert "does not fit dataset" in err and "vocab_size 6 (checkpoint) vs 8 (dataset)" in err


def test_compiled_evaluation_gives_the_eager_answers(sudoku_run, tmp_path, capsys):
    # NOTE: float32, where fused kernels round within 1e-4; in bf16 the logits differ by bf16 ulps.
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    common = [f"checkpoint={sudoku_run.run_dir}", "dtype=float32", "progress=false"]
    assert hrm(["eval", *common, f"out={eager}", "compile=false"]) == 0
    import torch._dynamo.utils
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    assert hrm(["eval", *common, f"out={compiled}", "compile=true"]) == 0
    assert ", compiled" in capsys.readouterr().out
    # It really ran compiled: dynamo captured a graph, and no fallback to eager happened on the way.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert results_of(compiled)["protocol"]["compiled"] is True and results_of(eager)["protocol"]["compiled"] is False
    (a, _), (b, _) = read_predictions(eager), read_predictions(compiled)
    assert np.array_equal(a["predictions"], b["predictions"])
    np.testing.assert_allclose(b["q_halt_logits"], a["q_halt_logits"], rtol=1e-4, atol=1e-4)
    assert results_of(compiled)["metrics"]["exact_accuracy"] == results_of(eager)["metrics"]["exact_accuracy"]


def test_a_compile_failure_evaluates_eagerly(sudoku_run, tmp_path, broken_compile):
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no working C.. compiler.*continuing in eager mode"):
        assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", f"out={out}", "compile=true", "progress=false"]) == 0
    metrics = results_of(out)["metrics"]
    assert metrics["count"] == 64
    assert metrics["exact_accuracy"] == pytest.approx(sudoku_run.eval_metrics["eval/exact_accuracy"], abs=1e-6)


def test_help_describes_every_option(capsys):
    from hrm.evaluation.runner import EvalConfig

    assert hrm(["eval", "--help"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    for option in EvalConfig.__dataclass_fields__:
        assert len(lines.get(option, "").split()) > 1, f"hrm eval --help says nothing of {option}"


@pytest.mark.parametrize("args,message", [
    (["checkpoint=/nonexistent"], "no such checkpoint"),
    (["data_path=x"], "checkpoint=PATH is required"),
    (["checkpoint=x", "halting=sometimes"], "halting must be one of"),
    (["checkpoint=x", "bach_size=3"], "did you mean 'batch_size'"),
    (["checkpoint=x", "tta=many"], "expected an integer"),
    (["x", "y"], "not a key=value"),                 # checkpoint= may be given bare, once
    (["checkpoint=x", "compile=perhaps"], "compile"),
    (["checkpoint=x", "compile=true", "backend=onnx"], "compile=true applies to backend=torch"),
])
def test_bad_options_give_clear_errors(args, message, capsys):
    assert hrm(["eval", *args]) == 2
    assert message in capsys.readouterr().err


def write_original_run(run: Path, sudoku_run) -> Path:
    """What the original code leaves: run/step_N (torch.save'd compiled state dict, H_init/L_init in bf16)
    and run/all_config.yaml (PretrainConfig.model_dump()), beside a dataset without manifest.json."""
    from safetensors.torch import load_file

    run.mkdir()
    state = load_file(str(sudoku_run.checkpoint / "model.safetensors"))
    state = {"_orig_mod." + k: (v.bfloat16() if k.endswith(("H_init", "L_init")) else v) for k, v in state.items()}
    torch.save(state, run / "step_280")
    ours = yaml.safe_load((sudoku_run.run_dir / "all_config.yaml").read_text())
    arch = {k: ours["arch"][k] for k in ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "expansion",
                                         "num_heads", "pos_encodings", "puzzle_emb_ndim", "rms_norm_eps", "rope_theta",
                                         "halt_max_steps", "halt_exploration_prob")}
    arch |= {"name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1", "forward_dtype": "bfloat16",
             "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}}
    config = {"arch": arch, "data_path": "data/sudoku-4x4", "global_batch_size": 64, "epochs": 60, "eval_interval": 30,
              "checkpoint_every_eval": True, "lr": 0.003, "lr_min_ratio": 1.0, "lr_warmup_steps": 5, "beta1": 0.9,
              "beta2": 0.95, "weight_decay": 0.1, "puzzle_emb_weight_decay": 0.1, "puzzle_emb_lr": 0.01, "seed": 0,
              "project_name": "S4 ACT-torch", "run_name": "HierarchicalReasoningModel_ACTV1 tiny-test",
              "checkpoint_path": "checkpoints/S4 ACT-torch/HierarchicalReasoningModel_ACTV1 tiny-test", "eval_save_outputs": []}
    (run / "all_config.yaml").write_text(yaml.safe_dump(config))
    return run / "step_280"


def copy_as_original_dataset(src: Path, dst: Path) -> Path:
    """The same arrays written the way the original builders write them: np.save, no manifest."""
    for split in ("train", "test"):
        (dst / split).mkdir(parents=True)
        for path in (src / split).glob("*.npy"):
            np.save(dst / split / path.name, np.load(path))
        shutil.copy(src / split / "dataset.json", dst / split / "dataset.json")
    shutil.copy(src / "identifiers.json", dst / "identifiers.json")
    return dst


def test_original_checkpoint_and_dataset_evaluate_directly_and_after_conversion(sudoku_run, tmp_path, capsys):
    original = write_original_run(tmp_path / "HRM-run", sudoku_run)
    data = copy_as_original_dataset(sudoku_run.data_path, tmp_path / "data-original")
    assert hrm(["eval", f"checkpoint={original}", f"data_path={data}", f"out={tmp_path / 'direct'}", "progress=false"]) == 0
    assert "records no dataset hash" in capsys.readouterr().out
    assert hrm(["convert", str(original), str(tmp_path / "converted"), "--seq-len", "16"]) == 0
    # The same batch as the direct run (its all_config.yaml's global_batch_size): q_halt_loss, as the
    # original computes it, sums over padding rows too.
    assert hrm(["eval", f"checkpoint={tmp_path / 'converted'}", f"data_path={data}", f"out={tmp_path / 'conv'}",
                "batch_size=64", "progress=false"]) == 0
    direct, converted = results_of(tmp_path / "direct"), results_of(tmp_path / "conv")
    assert direct["metrics"] == converted["metrics"]
    a, _ = read_predictions(tmp_path / "direct")
    b, _ = read_predictions(tmp_path / "conv")
    assert np.array_equal(a["predictions"], b["predictions"])
    # H_init/L_init went through bf16, as in real original checkpoints: nearly the trained model's answers.
    ours, _ = read_predictions_of_run(sudoku_run, tmp_path)
    assert (ours["predictions"] == a["predictions"]).mean() > 0.95


def read_predictions_of_run(sudoku_run, tmp_path):
    out = tmp_path / "ours"
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", f"out={out}", "progress=false"]) == 0
    return read_predictions(out)


def test_arc_eval_writes_a_valid_submission_and_per_task_results(arc_ckpt, tmp_path):
    checkpoint, data, evaluation = arc_ckpt
    out = tmp_path / "out"
    assert hrm(["eval", f"checkpoint={checkpoint}", f"data_path={data}", f"out={out}", "arc_k=1,2", "progress=false"]) == 0
    results = results_of(out)
    assert results["protocol"]["task"] == "arc" and results["arc"]["scored_tasks"] == 2
    assert results["arc"]["test_inputs"] == 3 and results["arc"]["stray_votes"] == 0
    assert results["arc"]["votes"] == results["metrics"]["count"]      # every version of every test input voted
    expected = {p.stem: len(json.loads(p.read_text())["test"]) for p in evaluation.glob("*.json")}
    submission = json.loads((out / "submission.json").read_text())
    arc.validate_submission(submission, expected)
    per_task = json.loads((out / "arc_tasks.json").read_text())
    solved = sum(t["solved_at_k"]["2"] for t in per_task.values())
    assert results["arc"]["task_pass_at_k"]["2"] == pytest.approx(solved / 2)


@pytest.mark.slow
def test_two_processes_under_torchrun_give_the_one_process_answers(sudoku_run, tmp_path):
    """2 gloo processes (local batch 8 each) against 1 process with batch 8: identical rows and metrics.
    max_examples=60 ends inside a global batch, so the padding and the interleaving are both exercised."""
    common = [f"checkpoint={sudoku_run.run_dir}", "max_examples=60", "progress=false", "device=cpu"]
    assert hrm(["eval", *common, "batch_size=8", f"out={tmp_path / 'one'}"]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "hrm.cli", "eval", *common, "batch_size=16", f"out={tmp_path / 'two'}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout
    one, _ = read_predictions(tmp_path / "one")
    two, _ = read_predictions(tmp_path / "two")
    assert set(one) == set(two)
    for name in one:
        assert np.array_equal(one[name], two[name]), name
    assert results_of(tmp_path / "one")["metrics"] == pytest.approx(results_of(tmp_path / "two")["metrics"], rel=1e-6)


def test_another_backend_gives_the_same_answers(sudoku_run, tmp_path, capsys):
    """backend=numpy (hrm.ports.numpy through hrm.export's ACT driver) against the PyTorch loss head.

    Both in float32: the ports compute in float32, PyTorch may pick bfloat16 on a CPU with bf16 matmul."""
    common = [f"checkpoint={sudoku_run.run_dir}", "progress=false", "save_steps=true", "halting=q"]
    assert hrm(["eval", *common, "dtype=float32", f"out={tmp_path / 'torch'}"]) == 0
    assert hrm(["eval", *common, "backend=numpy", f"out={tmp_path / 'numpy'}"]) == 0
    assert "backend     numpy" in capsys.readouterr().out
    ours, _ = read_predictions(tmp_path / "torch")
    port, _ = read_predictions(tmp_path / "numpy")
    for name in ("predictions", "step_predictions", "exact"):
        assert np.array_equal(ours[name], port[name]), name
    for name in ("q_halt_logits", "q_continue_logits", "step_q_halt_logits"):
        np.testing.assert_allclose(port[name], ours[name], atol=1e-4, rtol=1e-4)
    a, b = results_of(tmp_path / "torch"), results_of(tmp_path / "numpy")
    for name in ("exact_accuracy", "accuracy", "q_halt_accuracy", "steps", "count"):
        assert a["metrics"][name] == pytest.approx(b["metrics"][name], abs=1e-9), name
    assert a["q_halting"]["comparison"] == pytest.approx(b["q_halting"]["comparison"])
    assert a["q_halting"]["metrics"] == pytest.approx(b["q_halting"]["metrics"])
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", "backend=nonsense", "progress=false"]) == 2
    assert "unknown backend 'nonsense'" in capsys.readouterr().err


def test_arc_eval_on_real_arc_agi_tasks(tmp_path):
    """Five ARC-AGI-1 evaluation tasks (from ../shared), built with hrm data's ARC builder: every task and
    test input appears in the submission, in the Kaggle structure."""
    from reference_helpers import require_shared
    from hrm.data.arc import build

    source = require_shared("data/arc-agi-1/evaluation")
    evaluation = tmp_path / "raw" / "evaluation"
    evaluation.mkdir(parents=True)
    files = sorted(source.glob("*.json"))[:5]
    for path in files:
        shutil.copy(path, evaluation / path.name)
    data = build(tmp_path / "arc", [tmp_path / "raw"], num_aug=2, seed=0, log=lambda *_: None)
    checkpoint = eval_fixtures.save_untrained(Path(data), tmp_path / "ckpt")
    out = tmp_path / "out"
    assert hrm(["eval", f"checkpoint={checkpoint}", f"data_path={data}", f"out={out}", "progress=false"]) == 0
    expected = {p.stem: len(json.loads(p.read_text())["test"]) for p in files}
    arc.validate_submission(json.loads((out / "submission.json").read_text()), expected)
    summary = results_of(out)["arc"]
    assert summary["scored_tasks"] == 5 and summary["test_inputs"] == sum(expected.values()) and summary["stray_votes"] == 0


def test_depth_runs_more_steps_than_trained_and_reports_each(sudoku_run, tmp_path, capsys):
    """steps=D: every puzzle runs D ACT steps (here 5, trained with 3); the first 3 steps are those of the
    default evaluation, and the headline is the accuracy after the last step."""
    base, deep = tmp_path / "base", tmp_path / "deep"
    common = [f"checkpoint={sudoku_run.run_dir}", "progress=false"]
    assert hrm(["eval", *common, f"out={base}"]) == 0
    assert hrm(["eval", *common, f"out={deep}", "steps=5", "save_steps=true"]) == 0
    out = capsys.readouterr().out
    assert "5 ACT steps (steps=5; trained with halt_max_steps=3)" in out and "exact accuracy after each ACT step" in out
    a, b = results_of(base), results_of(deep)
    assert len(a["exact_accuracy_per_step"]) == 3 and len(b["exact_accuracy_per_step"]) == 5
    assert b["exact_accuracy_per_step"][:3] == a["exact_accuracy_per_step"]
    assert a["exact_accuracy_per_step"][-1] == a["metrics"]["exact_accuracy"]
    assert b["exact_accuracy_per_step"][-1] == b["metrics"]["exact_accuracy"]
    assert b["protocol"]["halt_max_steps"] == 5 and b["protocol"]["trained_halt_max_steps"] == 3
    arrays, meta = read_predictions(deep)
    assert arrays["step_predictions"].shape[1] == 5 and meta["halt_max_steps"] == 5
    assert b["metrics"]["steps"] == 5.0


def test_depth_is_for_the_pytorch_backend(sudoku_run, tmp_path, capsys):
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", "steps=0"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err
    assert hrm(["eval", f"checkpoint={sudoku_run.run_dir}", "steps=4", "backend=numpy"]) == 2
    assert "steps=D applies to backend=torch" in capsys.readouterr().err
