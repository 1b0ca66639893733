"""`hrm bench train`: it runs the real trainer on a preset's shape and reports consistent figures.

Only the plumbing is checked here; the figures themselves are measured alone, in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import json

import pytest
import torch

from hrm.bench import main
from hrm.device import pick_dtype
from hrm.flops import train_step_flops
from hrm.training.config import load_config, preset_path


def test_bench_train_reports_the_demo_preset(tmp_path, capsys):
    out_file = tmp_path / "bench.json"
    assert main(["train", "--preset", "demo", "--steps", "2", "--warmup", "1", "--compile", "false",
                 "--threads", "2", "--json", str(out_file)]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("preset | "))
    assert header.split(" | ")[-2:] == ["MFU", "peak MB"]
    result = json.loads(out_file.read_text())

    arch = load_config(preset_path("demo")).arch
    dtype = str(pick_dtype(torch.device("cpu"))[0]).removeprefix("torch.")   # the demo's dtype auto
    assert (result["preset"], result["device"], result["dtype"], result["compiled"]) == ("demo", "cpu", dtype, False)
    assert result["batch"] == 64 and result["seq_len"] == 36 + arch.puzzle_emb_len
    assert result["steps_measured"] == 2
    # 6x6 Sudoku: vocabulary of padding, blank and six digits.
    flops = train_step_flops(load_config(preset_path("demo"), ["arch.seq_len=36", "arch.vocab_size=8"]).arch, 64)
    assert result["gflop_per_step"] == pytest.approx(flops / 1e9, rel=1e-12)
    seconds = result["seconds_per_step"]
    assert seconds > 0 and result["tokens_per_second"] == pytest.approx(64 * result["seq_len"] / seconds)
    assert result["achieved_gflops"] == pytest.approx(flops / seconds / 1e9)
    assert 0 < result["mfu"] == pytest.approx(result["achieved_gflops"] / result["matmul_peak_gflops"])
    assert result["peak_memory_mb"] > 0


@pytest.mark.parametrize("preset, arch, q_target", [("demo", "hrm_act_v1", True), ("trm", "trm", False),
                                                    ("transformer", "transformer", False)])
def test_bench_train_reports_each_part_of_a_step(preset, arch, q_target, tmp_path, capsys):
    out_file = tmp_path / "bench.json"
    assert main(["train", f"preset={preset}", "steps=3", "warmup=1", "compile=false", "threads=1",
                 f"json={out_file}"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out_file.read_text())
    assert result["arch"] == arch and result["autocast"] == "none"
    parts = result["parts_ms"]
    assert list(parts) == ["batch to device", "forward", "backward", "optimizer", "averaging and metrics",
                           "host waits (metrics to the host)"]
    # The parts are timed inside the measured steps (whose intervals also hold the data loading and the
    # callback), so together they are at most the mean step and most of it; the forward and backward, where
    # the model's FLOPs are, hold most of them.
    mean_ms = 1000 * result["seconds_per_step_mean"]
    assert 0.5 * mean_ms < sum(parts.values()) <= mean_ms
    assert parts["forward"] + parts["backward"] > 0.5 * sum(parts.values())
    if q_target:
        assert 0 < result["q_target_forward_ms"] < parts["forward"]
        assert "of which the Q-target forward (measured alone)" in printed
    else:
        assert result["q_target_forward_ms"] is None and "Q-target" not in printed
