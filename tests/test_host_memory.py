"""hrm.host_memory: with glibc's thresholds set, the trainer's step stops faulting on the buffers it reuses."""
import os
import platform
import subprocess
import sys

import pytest
import torch

from hrm.host_memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# The demo's training step (hrm bench's demo preset: HRM at width 64, batch 64, 6x6 Sudoku), eager, one
# thread; "default" leaves glibc's thresholds alone. Prints the minor page faults per step.
STEPS = """
import resource, sys, tempfile
from pathlib import Path
import torch
torch.set_num_threads(1)
import hrm.training.trainer as trainer_module
from hrm.bench import bench_config
if sys.argv[1] == "default":
    trainer_module.keep_freed_memory = lambda device: False
with tempfile.TemporaryDirectory() as tmp:
    trainer = trainer_module.Trainer(bench_config("demo", Path(tmp), ["compile=false", "dtype=float32"]))
    batches = iter(trainer.train_data)
    def step():
        _, batch, _ = next(batches)
        trainer.train_step(batch)
    for _ in range(4):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        step()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 8)
    trainer.close()
"""


def faults_per_step(mode: str) -> float:
    # glibc's own defaults: no MALLOC_* tuning inherited from the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt thresholds apply on Linux with glibc only")
def test_the_trainers_step_stops_faulting_on_its_reused_buffers():
    default, kept = faults_per_step("default"), faults_per_step("keep")
    # Measured on an Intel Xeon: about 2,300-2,600 faults per eager step by default, 0-30 with the thresholds.
    assert default > 500, f"the default allocator faulted only {default} pages per step; the test needs more"
    assert kept < default / 10, f"{kept} page faults per step with the thresholds set, {default} without"


def test_keep_freed_memory_applies_to_cpu_steps_with_glibc_only_and_is_idempotent():
    assert keep_freed_memory("cuda") is False and keep_freed_memory("mps") is False   # torch's own allocators
    assert keep_freed_memory("cpu") is GLIBC
    assert keep_freed_memory(torch.device("cpu")) is GLIBC   # once per process (cached), the same answer
