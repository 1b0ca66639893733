"""Two gloo processes (torchrun) with global batch B reach the weights of one process with global batch B.

Each rank computes loss / global_batch_size on its half of every global batch; gradients are summed over
ranks and the sparse SignSGD gathers ids and gradients from both, so the update is the whole batch's.
NOTE: exploration is off (halt_exploration_prob=0) because, as in the original, rank r draws exploration
randoms from its own generator seeded seed + r, so with exploration on, 1 and 2 processes differ by design.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training_fixtures import make_dataset

REPO = Path(__file__).resolve().parents[2]
ARGS = ["global_batch_size=16", "epochs=2", "eval_interval=1", "lr=3e-3", "lr_warmup_steps=5",
        "arch.hidden_size=32", "arch.num_heads=2", "arch.expansion=2", "arch.H_layers=1", "arch.L_layers=1",
        "arch.H_cycles=1", "arch.L_cycles=2", "arch.halt_max_steps=3", "arch.halt_exploration_prob=0",
        "arch.puzzle_emb_ndim=32", "arch.forward_dtype=float32", "device=cpu", "logging.progress=false",
        "logging.log_interval=4"]


def hrm_train(launcher: list[str], *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([*launcher, "-m", "hrm.cli", "train", *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    data = make_dataset(tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    hrm_train([sys.executable], f"data_path={data}", f"checkpoint_path={one}", *ARGS)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    result = hrm_train(torchrun, f"data_path={data}", f"checkpoint_path={two}", *ARGS)
    assert "2 processes" in result.stdout

    # Only rank 0 wrote the run folder; both runs checkpointed the same steps.
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step_16", "step_8"]
    final_one, final_two = one / "checkpoints" / "step_16", two / "checkpoints" / "step_16"
    weights_one, weights_two = load_file(str(final_one / "model.safetensors")), load_file(str(final_two / "model.safetensors"))
    assert weights_one.keys() == weights_two.keys()
    for key in weights_one:
        torch.testing.assert_close(weights_two[key], weights_one[key], rtol=1e-5, atol=1e-6, msg=key)
    # The puzzle-embedding table moved (SignSGD ran) and identically in both.
    assert weights_one["model.inner.puzzle_emb.weights"].abs().sum() > 0
    state_one, state_two = load_file(str(final_one / "train_state.safetensors")), load_file(str(final_two / "train_state.safetensors"))
    adam_keys = [k for k in state_one if k.startswith("optim.adam.")]
    assert adam_keys and set(adam_keys) == {k for k in state_two if k.startswith("optim.adam.")}
    for key in adam_keys:
        # NOTE: gradients summed over two ranks round differently from one batch's sum; the error scales with
        # the tensor's magnitude, not with each (possibly near-zero) element, hence an atol relative to its max.
        scale = float(state_one[key].abs().max())
        torch.testing.assert_close(state_two[key], state_one[key], rtol=1e-4, atol=1e-4 * scale,
                                   msg=lambda m, key=key: f"{key}: {m}")
    assert {"rng.0.torch_cpu", "rng.1.torch_cpu"} <= set(state_two)       # every rank's RNG is saved
    assert state_two["carry.z_H"].shape == state_one["carry.z_H"].shape     # the carry of the global batch

    # Metrics were reduced over both ranks: the eval counts the whole test split.
    def last_eval(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
                if "eval/count" in line][-1]
    eval_one, eval_two = last_eval(one), last_eval(two)
    assert eval_one["eval/count"] == eval_two["eval/count"] == 64
    assert eval_two["eval/accuracy"] == pytest.approx(eval_one["eval/accuracy"], abs=1e-6)


LEAVE_THE_GROUP = """
import os, sys, torch, torch.distributed as dist
from hrm.processes import init_processes, shutdown
from hrm.training.optimizers import AdamATan2

def threads():
    return len(os.listdir("/proc/self/task"))

torch.ones(3).sum()                               # any lazily started torch threads exist from here on
before = threads()
processes = init_processes(torch.device("cpu"))
AdamATan2([torch.nn.Parameter(torch.ones(3))], lr=0)      # imports torch._dynamo, as the trainer does
total = torch.ones(3)
dist.all_reduce(total)
during = threads()
shutdown(processes)
with open(f"rank{processes.rank}.txt", "w") as out:
    out.write(f"rank {processes.rank}: threads {before} before, {during} in the group, {threads()} after leaving it")
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_leaving_the_group_stops_its_gloo_threads(tmp_path):
    # Gloo threads alive at interpreter shutdown abort the process now and then (see init_processes).
    script = tmp_path / "leave.py"
    script.write_text(LEAVE_THE_GROUP)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        line = (tmp_path / f"rank{rank}.txt").read_text()
        before, during, after = (int(word) for word in line.split() if word.isdigit())
        assert during > before, line           # the group started its threads...
        assert after == before, line           # ...and leaving it stopped them
