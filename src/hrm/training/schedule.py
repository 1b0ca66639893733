"""The learning-rate schedule: linear warm-up, then half a cosine down to `min_ratio` (semantics §9.4).

The same shape drives both optimisers, each from its own base LR. Steps start at 1.
"""
from __future__ import annotations

import math


def cosine_schedule_with_warmup(step: int, base_lr: float, warmup_steps: float, total_steps: int,
                                min_ratio: float = 0.0, num_cycles: float = 0.5) -> float:
    """The LR at training step `step` (1-based).

    With min_ratio = 1 (the original's default) the LR is constant after warm-up. Past total_steps (a
    schedule shorter than the run, `lr_schedule_steps`) it stays at the end of the cosine.
    """
    warmup = round(warmup_steps)
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * 2.0 * num_cycles * progress))))


def total_steps(epochs: int, total_groups: int, mean_puzzle_examples: float, global_batch_size: int) -> int:
    """Training steps of a run, as the original counts them (the loader's last batches are dropped,
    so the last step reached can be one less)."""
    return int(epochs * total_groups * mean_puzzle_examples / global_batch_size)
