"""The training state: everything a run changes as it trains, saved into a checkpoint and restored whole.

    TrainState(head, optimizers, loader, ema)    step, iteration, carry, optimisers, the weight-averaging
                                                 slot, the loader position, the LR horizon
    state.save(checkpoints_dir, ...)             one checkpoint (hrm.training.checkpointing writes it)
    state.restore(path, ...)                     the same state back, so the run continues exactly

What is saved, and where (formats §4): the weights and the puzzle-embedding table (model.safetensors);
AdamATan2's t, m, v; the ACT carry of the whole global batch (ranks concatenated in order); every rank's
RNG states; and as JSON the step, the iteration and whether its evaluation is done, the loader position,
the LR horizon, the dataset hash and the world size. SparseSignSGD has no state of its own (its table is
part of the weights).

NOTE: with weight averaging (ema=true, semantics §15.4) model.safetensors holds the averaged parameters with
the live buffers, as the official TRM checkpoints do, so that evaluation, solve and export read the weights
the run reports; the live parameters, which training continues from, are saved beside the optimiser state
as `live.<name>`. The average itself is then model.safetensors: nothing is stored twice.

Under torchrun every rank calls save (each contributes its carry rows and RNG states) and rank 0 writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hrm.models import ACTCarry, ACTLossHead
from hrm.models.checkpoint import CheckpointError, load_live_parameters
from hrm.training import checkpointing as ckpt
from hrm.training import distributed as dist_
from hrm.training.ema import EMA


@dataclass
class TrainState:
    head: ACTLossHead
    optimizers: list[torch.optim.Optimizer]   # in stepping order: [SparseSignSGD (if any), AdamATan2]
    loader: Any                               # the training PuzzleDataset: its position is state
    ema: EMA | None = None                    # weight averaging (ema=true), or None
    step: int = 0                             # optimiser steps taken (and skipped past total_steps)
    iteration: int = 0                        # the outer iteration (eval_interval epochs) being run
    iteration_finished: bool = False          # its evaluation is done: resuming starts iteration + 1
    carry: ACTCarry | None = None             # the ACT carry across batches (None before the first step)
    lr_horizon: int = 0                       # steps the cosine schedule spans
    named_params: list[tuple[str, torch.nn.Parameter]] = field(default_factory=list)

    def __post_init__(self):
        self.named_params = list(self.head.named_parameters())

    @property
    def adam(self) -> torch.optim.Optimizer:
        return self.optimizers[-1]

    @property
    def first_iteration(self) -> int:
        """The iteration a (resumed) run starts with."""
        return self.iteration + 1 if self.iteration_finished else self.iteration

    # -- saving ---------------------------------------------------------------------------------------
    def save(self, checkpoints_dir: Path, arch, processes, device: torch.device, total_steps: int,
             global_batch_size: int, dataset_hash: str, keep: int) -> Path | None:
        """Write checkpoints/step_<step> (rank 0; every rank contributes). Returns its path on rank 0."""
        tensors: dict[str, torch.Tensor] = {}
        if self.carry is not None:
            for name, value in ckpt.carry_tensors(self.carry).items():
                gathered = dist_.all_gather_rows(value.to(torch.uint8) if value.dtype == torch.bool else value)
                tensors[name] = gathered.bool() if value.dtype == torch.bool else gathered
        rng_tensors, rng_extra = ckpt.capture_rng(device)
        per_rank = dist_.gather_objects((rng_tensors, rng_extra), processes)
        if not processes.is_main:
            return None
        for rank, (rank_tensors, _) in enumerate(per_rank):
            tensors.update({f"rng.{rank}.{k}": v for k, v in rank_tensors.items()})
        tensors.update(ckpt.adam_tensors(self.adam, {p: n for n, p in self.named_params}))
        if self.ema is not None:
            # Cloned: the averages are swapped into these same parameters while the checkpoint is written.
            tensors.update({f"live.{name}": p.detach().clone() for name, p in self.named_params
                            if name in self.ema.shadow})
        progress = ckpt.TrainProgress(
            step=self.step, total_steps=total_steps, iteration=self.iteration,
            iteration_finished=self.iteration_finished, world_size=processes.world_size,
            global_batch_size=global_batch_size, dataset_hash=dataset_hash, loader=self.loader.state_dict(),
            rng_extra=[extra for _, extra in per_rank], lr_horizon=self.lr_horizon)
        if self.ema is None:
            return ckpt.write_checkpoint(checkpoints_dir, self.head, arch, progress, tensors, keep)
        with self.ema.averaged(self.head):
            return ckpt.write_checkpoint(checkpoints_dir, self.head, arch, progress, tensors, keep,
                                         weights=f"averaged (EMA, rate {self.ema.mu})")

    # -- restoring ------------------------------------------------------------------------------------
    def restore(self, path: Path, processes, device: torch.device, global_batch_size: int,
                dataset_hash: str, data_path) -> ckpt.TrainProgress:
        """Load the checkpoint at `path` into this state; refuses one this run cannot continue exactly."""
        progress, tensors = ckpt.read_checkpoint(path)
        where = str(path)
        if progress.world_size != processes.world_size:
            raise CheckpointError(f"{where} was written by {progress.world_size} process(es); resume it with the same "
                             f"number (this run has {processes.world_size}) to continue exactly")
        if progress.global_batch_size != global_batch_size:
            raise CheckpointError(f"{where}: global_batch_size was {progress.global_batch_size}, now {global_batch_size}")
        if progress.dataset_hash != dataset_hash:
            raise CheckpointError(f"{where} was trained on dataset {progress.dataset_hash[:16]}..., but {data_path} "
                             f"hashes to {dataset_hash[:16]}...: resume needs the same data")
        ckpt.load_weights_into(self.head, path)
        live = {k.removeprefix("live."): v for k, v in tensors.items() if k.startswith("live.")}
        if (self.ema is None) != (not live):
            raise CheckpointError(f"{where}: the checkpoint {'holds' if live else 'has no'} averaged weights but "
                                  f"this run {'does not average them (ema=false)' if self.ema is None else 'does (ema=true)'}; "
                                  "resume with the setting it was trained with")
        if self.ema is not None:
            # model.safetensors holds the averages: they are the shadow; the live parameters come back from live.*.
            self.ema.load_state_dict({"mu": self.ema.mu, "shadow": {k: p.detach() for k, p in self.named_params
                                                                    if k in self.ema.shadow}})
            load_live_parameters(self.named_params, live, self.ema.shadow, where)
        ckpt.load_adam(self.adam, self.named_params, tensors, where)
        local = global_batch_size // processes.world_size
        rows = slice(processes.rank * local, (processes.rank + 1) * local)
        ckpt.check_carry_fits(self.head.model.inner, tensors, global_batch_size, where)
        self.carry = ckpt.carry_from_tensors(tensors, rows, device, self.head.model.inner.carry_init())
        ckpt.restore_loader(self.loader, progress.loader, where)
        rank = processes.rank
        rng = {k.removeprefix(f"rng.{rank}."): v for k, v in tensors.items() if k.startswith(f"rng.{rank}.")}
        ckpt.restore_rng(device, rng, progress.rng_extra[rank], where)
        self.step, self.iteration = progress.step, progress.iteration
        self.iteration_finished = progress.iteration_finished
        if progress.lr_horizon:
            self.lr_horizon = progress.lr_horizon
        return progress
