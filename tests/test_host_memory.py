"""hrm.host_memory: with glibc's thresholds set, a training-like step stops faulting on the buffers it reuses."""
import platform
import subprocess
import sys

import pytest

from hrm.host_memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# A SwiGLU forward and backward at the demo's shapes (2,368 rows, 64 -> 512 -> 64), eager, one thread: the
# pattern of large buffers allocated and freed every step. Prints the page faults per step.
STEP = """
import resource, sys, torch
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    from hrm.host_memory import keep_freed_memory
    assert keep_freed_memory()
torch.manual_seed(0)
gate_up, down = torch.nn.Linear(64, 512), torch.nn.Linear(256, 64)
x = torch.randn(2368, 64)
def step():
    gate, up = gate_up(x).chunk(2, -1)
    down(torch.nn.functional.silu(gate) * up).sum().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", STEP, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt thresholds apply on Linux with glibc only")
def test_kept_memory_faults_less_than_the_default():
    default, kept = faults_per_step("default"), faults_per_step("keep")
    # Each step frees and re-allocates about 10 MB (2,500 pages): by default a good part of it is handed back
    # to the OS and faulted in again.
    assert default > 200, f"the default allocator faulted only {default} pages per step; the test needs more"
    assert kept < default / 2, f"{kept} page faults per step with the thresholds set, {default} without"


def test_keep_freed_memory_is_false_without_glibc_and_idempotent():
    assert keep_freed_memory() is GLIBC
    assert keep_freed_memory() is GLIBC          # once per process (cached), the same answer
