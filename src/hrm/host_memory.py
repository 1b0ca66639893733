"""Host memory: keep freed tensor buffers in the process instead of handing them back to the OS each step.

    from hrm.host_memory import keep_freed_memory
    keep_freed_memory(device)    # for a CPU step, once per process; True where it applied (Linux with glibc)

Torch's CPU tensors come from the C library's malloc. glibc maps a large buffer fresh and unmaps it on free
(above its mmap threshold, which adapts between 128 KiB and 32 MiB), and gives the top of its heap back to
the OS once more than its trim threshold is free there. A training step allocates and frees the same large
activation buffers every time (the demo's SwiGLU intermediate is 2,368 x 512 float32 = 4.8 MB), so each step
pays for page faults on memory it had a moment ago: about 3,600 faults per demo step, measured on an Intel
Xeon (benchmarks/RESULTS.md). With a fixed mmap threshold at glibc's maximum (32 MiB) and a trim threshold
of 1 GiB, the freed buffers are reused and a step faults no page at all. The price: the process keeps up to
its peak of freed memory, which the next step needs again anyway.

NOTE: this is the C library's documented `mallopt` interface (also set by MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ in the environment), not an allocator of our own. Elsewhere (macOS, Windows, musl)
it does nothing. CUDA and MPS tensors have torch's caching allocators and are not affected.
"""
from __future__ import annotations

import ctypes
import functools
import platform
import sys

import torch

M_TRIM_THRESHOLD = -1            # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20        # glibc's largest allowed value (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory(device: torch.device | str) -> bool:
    """Where a step runs on the CPU, set glibc's mmap and trim thresholds for this process (once); False for
    other devices and where there is no glibc."""
    return torch.device(device).type == "cpu" and _set_glibc_thresholds()


@functools.cache
def _set_glibc_thresholds() -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; a glibc that refuses a value keeps its adaptive default.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
