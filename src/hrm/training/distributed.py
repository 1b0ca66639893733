"""Processes: one, or many under `torchrun` (torch.distributed), as the original trains (semantics §9.1).

    torchrun --nproc-per-node 8 -m hrm.cli train --config arc1

NCCL on CUDA, gloo on the CPU. Every rank holds the same model (rank 0's initial weights are broadcast),
takes its slice of each global batch, and all-reduces (sums) its gradients, which were computed from
loss / global_batch_size, so the update is that of the whole global batch. Metrics are reduced to rank 0,
and only rank 0 writes files. Joining and leaving the process group is hrm.processes (evaluation uses it too).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from hrm.processes import Processes


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
