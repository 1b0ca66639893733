"""Processes: one, or many under `torchrun` (torch.distributed), as the original trains (semantics §9.1).

    torchrun --nproc-per-node 8 -m hrm.cli train --config arc1

NCCL on CUDA, gloo on the CPU. Every rank holds the same model (rank 0's initial weights are broadcast),
takes its slice of each global batch, and all-reduces (sums) its gradients, which were computed from
loss / global_batch_size, so the update is that of the whole global batch. Metrics are reduced to rank 0,
and only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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


def broadcast_module(module: torch.nn.Module, processes: Processes) -> None:
    """Copy rank 0's parameters and buffers to every rank (each rank seeded seed + rank before building)."""
    if not processes.distributed:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor, src=0)


def all_reduce_grads(parameters: list[torch.nn.Parameter], processes: Processes) -> None:
    """Sum every parameter's gradient over ranks, as one flat buffer per dtype (one collective each)."""
    if not processes.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat)
        for g, part in zip(group, flat.split([g.numel() for g in group])):
            g.copy_(part.view_as(g))


def reduce_to_main(values: torch.Tensor, processes: Processes) -> torch.Tensor:
    """Sum `values` over ranks onto rank 0 (other ranks' results are meaningless)."""
    if processes.distributed:
        dist.reduce(values, dst=0)
    return values


def broadcast_object(value: Any, processes: Processes) -> Any:
    """Rank 0's `value` on every rank (run names, resume decisions)."""
    if not processes.distributed:
        return value
    box = [value if processes.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: Any, processes: Processes) -> list[Any] | None:
    """Every rank's `value`, in rank order, on rank 0; None elsewhere."""
    if not processes.distributed:
        return [value]
    gathered = [None] * processes.world_size if processes.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def all_gather_rows(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """Concatenate `tensor` (same shape on every rank) along dim 0 in rank order (= the global batch's
    order), on every rank. Without a process group, `tensor` itself."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, tensor.contiguous(), group=group)
    return torch.cat(parts)


def barrier(processes: Processes) -> None:
    if processes.distributed:
        dist.barrier()
