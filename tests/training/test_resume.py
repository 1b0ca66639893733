"""Exact resume: N steps in one go == k steps, SIGKILL, `hrm train resume=RUN_DIR`, the rest (bit for bit, on CPU).

Every run is a separate process with one thread, as a user would run it. The killed run kills itself with
SIGKILL from the progress callback at a step after its last checkpoint, so the steps since that checkpoint
are lost and must be redone identically: the exploration draws (torch RNG), the ACT carry, the data
position, AdamATan2's moments and the puzzle-embedding table all have to come back exactly.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from training_fixtures import make_dataset, tiny_config

from hrm.models.checkpoint import CheckpointError
from hrm.training.commands import build_config
from hrm.training.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
# 16 steps per iteration (eval + checkpoint at 16 and 32), checkpoints every 6 steps, the last 2 kept.
ARGS = ["global_batch_size=8", "epochs=2", "eval_interval=1", "lr=3e-3", "lr_warmup_steps=5", "arch.hidden_size=32",
        "arch.num_heads=2", "arch.expansion=2", "arch.H_layers=1", "arch.L_layers=1", "arch.H_cycles=1",
        "arch.L_cycles=2", "arch.halt_max_steps=3", "arch.halt_exploration_prob=0.3", "arch.puzzle_emb_ndim=32",
        "arch.forward_dtype=float32", "device=cpu", "logging.progress=false", "logging.log_interval=1",
        "checkpoint_interval=6", "keep_checkpoints=2"]
KILL_AT = 22           # after the checkpoint at step 18: steps 19-22 are lost

KILLER = """
import os, signal, sys
import torch
torch.set_num_threads(1)
from hrm.training import load_config, train
config = load_config(None, sys.argv[2:])
def callback(event):
    if event.kind == "log" and event.step == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
train(config, callback)
"""


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, **kwargs)


def hrm_train(*args: str) -> subprocess.CompletedProcess:
    result = run(["-m", "hrm.cli", "train", *args])
    assert result.returncode == 0, result.stderr[-3000:]
    return result


# TRM with weight averaging (its official recipe): the EMA shadow and the live weights must come back too.
TRM = ["arch=trm_demo", "arch.hidden_size=32", "arch.num_heads=2", "arch.expansion=2", "arch.H_cycles=2",
       "arch.L_cycles=2", "arch.halt_max_steps=3", "arch.halt_exploration_prob=0.3", "arch.puzzle_emb_ndim=32",
       "arch.forward_dtype=float32", "ema=true", "ema_rate=0.9"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", [[], TRM], ids=["hrm", "trm-ema"])
def test_resume_after_sigkill_is_bit_exact(tmp_path, arch):
    data = make_dataset(tmp_path / "data")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    args = ARGS + arch
    hrm_train(f"data_path={data}", f"checkpoint_path={straight}", *args)

    result = run(["-c", KILLER, str(KILL_AT), f"data_path={data}", f"checkpoint_path={killed}", *args])
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    saved = sorted(p.name for p in (killed / "checkpoints").iterdir())
    assert saved == ["step_16", "step_18"], saved                 # the last 2 kept; nothing partial left
    logged = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert max(logged) == KILL_AT

    if arch:
        assert yaml.safe_load((killed / "all_config.yaml").read_text())["arch"]["name"] == "trm"
    resumed = hrm_train(f"resume={killed}")
    assert "from step_18" in resumed.stdout

    final_a, final_b = straight / "checkpoints" / "step_32", killed / "checkpoints" / "step_32"
    for name in ("model.safetensors", "train_state.safetensors"):
        a, b = load_file(str(final_a / name)), load_file(str(final_b / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs after resume"
        if arch and name == "train_state.safetensors":
            assert any(k.startswith("live.") for k in a)      # the averaged run kept its live weights beside
    state_a = json.loads((final_a / "train_state.json").read_text())
    state_b = json.loads((final_b / "train_state.json").read_text())
    assert state_a == state_b

    # The resumed run's metrics file has each step once, and the same values as the uninterrupted run.
    def records(run_dir):
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "train/steps_per_second")}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records(killed) == records(straight)


def test_resume_refuses_changes_that_break_exactness(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=32, n_test=8)
    run_dir = tmp_path / "run"
    from hrm.training import train
    train(tiny_config(data, run_dir, "epochs=1", "eval_interval=1"))
    assert build_config(None, [f"resume={run_dir}", "epochs=3"]).epochs == 3      # a longer run is fine
    for override in ("arch.hidden_size=64", "global_batch_size=16", "seed=1", "eval_interval=2"):
        with pytest.raises(ConfigError, match=f"cannot change {override.split('=')[0]} when resuming"):
            build_config(None, [f"resume={run_dir}", override])
    with pytest.raises(ConfigError, match="--config and resume= do not go together"):
        build_config("cpu_tiny", [f"resume={run_dir}"])
    # A new run into a directory that holds checkpoints is refused.
    with pytest.raises(FileExistsError, match="resume="):
        train(tiny_config(data, run_dir, "epochs=1", "eval_interval=1"))


def test_resume_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="no such run directory"):
        build_config(None, [f"resume={tmp_path / 'missing'}"])
    with pytest.raises(CheckpointError, match="no complete training checkpoint"):
        build_config(None, [f"resume={tmp_path}"])
