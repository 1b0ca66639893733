"""Processes: one, or many under `torchrun` (torch.distributed), for training and evaluation alike.

    processes = init_processes(device)     # the group torchrun describes in the environment, else one process
    device = device_for(device, processes) # each rank drives the GPU of its local rank
    shutdown(processes)

NCCL on CUDA, gloo on the CPU. What ranks exchange is the caller's (hrm.training.distributed: gradients and
the model; hrm.evaluation.distributed: rows and metric sums).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_processes(device: torch.device) -> Processes:
    """Join the process group that torchrun describes in the environment; one process otherwise."""
    if not launched_by_torchrun():
        return Processes()
    if dist.is_initialized():           # e.g. a caller that set up its own group
        return Processes(dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"]))
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise RuntimeError(f"multi-process training on {device.type} is not supported (torch.distributed has "
                           "no backend for it); run one process, or use CUDA (nccl) or the CPU (gloo)")
    # NOTE: importing torch._dynamo (torch.optim and torch.compile do) while a process group exists keeps ~10
    # references to it for good, so destroy_process_group() no longer frees it: gloo's worker threads live on
    # into interpreter shutdown, where one that still drops a collective's tensors (which takes the GIL)
    # aborts the process ("terminate called without an active exception", about 1 in 4 two-process runs).
    # Imported before the group exists, dynamo holds nothing of it.
    import torch._dynamo  # noqa: F401
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return Processes(dist.get_rank(), dist.get_world_size(), local_rank)


def device_for(device: torch.device, processes: Processes) -> torch.device:
    """Each rank drives the GPU of its local rank."""
    if device.type == "cuda" and processes.distributed:
        return torch.device("cuda", processes.local_rank)
    return device


def shutdown(processes: Processes) -> None:
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()
