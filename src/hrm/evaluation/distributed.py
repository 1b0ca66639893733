"""Evaluation under torchrun: each rank evaluates its shard, rank 0 gathers the rows and the sums.

The process group is joined by hrm.processes.init_processes (NCCL on CUDA, gloo on the CPU),
as training does. Without a process group everything here is a no-op for one process.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def _comm_device() -> torch.device:
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_floats(values: dict[str, float]) -> dict[str, float]:
    """Sum a dict of numbers over ranks (every rank gets the total)."""
    if world_size() == 1:
        return dict(values)
    keys = sorted(values)
    total = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(total)
    return dict(zip(keys, total.cpu().tolist()))


def gather_batches(arrays: dict[str, np.ndarray], local_batch: int) -> dict[str, np.ndarray] | None:
    """Rows of every rank's batches, interleaved back into global batch order, on rank 0 (None elsewhere).

    Every rank holds the same number of equally sized batches (the loader pads each rank's slice), so
    global batch b is rank 0's b-th local batch, then rank 1's, and so on.
    """
    world = world_size()
    if world == 1:
        return arrays
    me = rank()
    out = {}
    for name in sorted(arrays):
        local = arrays[name]
        dtype = local.dtype
        # gloo moves neither bool nor int16 tensors: send them as uint8 and int32.
        sent = local.view(np.uint8) if dtype == np.bool_ else local.astype(np.int32) if dtype == np.int16 else local
        tensor = torch.from_numpy(np.ascontiguousarray(sent))
        tensor = tensor.to(_comm_device())
        pieces = [torch.empty_like(tensor) for _ in range(world)] if me == 0 else None
        dist.gather(tensor, gather_list=pieces, dst=0)
        if me != 0:
            continue
        per_rank = [p.cpu().numpy() for p in pieces]
        n_batches = local.shape[0] // local_batch
        interleaved = [per_rank[r][b * local_batch:(b + 1) * local_batch] for b in range(n_batches) for r in range(world)]
        merged = np.concatenate(interleaved)
        out[name] = merged.view(np.bool_) if dtype == np.bool_ else merged.astype(dtype, copy=False)
    return out if me == 0 else None
