"""The warm-up + cosine schedule (semantics §9.4) and the step count of a run."""
from __future__ import annotations

import math

import pytest

from hrm.training.schedule import cosine_schedule_with_warmup, total_steps


def test_warmup_is_linear_from_step_one():
    assert cosine_schedule_with_warmup(1, 1e-4, 2000, 26041, 1.0) == pytest.approx(1e-4 / 2000)
    assert cosine_schedule_with_warmup(1000, 1e-4, 2000, 26041, 1.0) == pytest.approx(0.5e-4)
    assert cosine_schedule_with_warmup(0, 1e-4, 2000, 26041, 1.0) == 0.0


def test_min_ratio_one_is_constant_after_warmup():
    for step in (2000, 2001, 13000, 26041, 30000):
        assert cosine_schedule_with_warmup(step, 1e-4, 2000, 26041, 1.0) == pytest.approx(1e-4)


def test_cosine_decays_to_min_ratio():
    base, W, N, r = 3e-4, 2000, 10000, 0.1
    assert cosine_schedule_with_warmup(W, base, W, N, r) == pytest.approx(base)
    mid = W + (N - W) // 2
    assert cosine_schedule_with_warmup(mid, base, W, N, r) == pytest.approx(base * (r + (1 - r) * 0.5))
    assert cosine_schedule_with_warmup(N, base, W, N, r) == pytest.approx(base * r)
    p = (7000 - W) / (N - W)
    assert cosine_schedule_with_warmup(7000, base, W, N, r) == pytest.approx(base * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * p))))
    # Monotone non-increasing after warm-up.
    lrs = [cosine_schedule_with_warmup(s, base, W, N, r) for s in range(W, N + 1, 97)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_no_warmup_and_degenerate_lengths():
    assert cosine_schedule_with_warmup(1, 1.0, 0, 1, 0.0) == pytest.approx(0.0)     # p = 1 at the only step
    assert cosine_schedule_with_warmup(1, 1.0, 0, 100, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 100)))
    assert cosine_schedule_with_warmup(5, 1.0, 2.6, 10, 1.0) == 1.0                  # W = round(2.6) = 3


def test_total_steps_matches_the_papers_sudoku_run():
    # Sudoku-1k with 1000 augmentations: 1000 groups, one example each, batch 768 -> step_26040 is the last reached.
    assert total_steps(20000, 1000, 1.0, 768) == 26041


def test_past_the_horizon_the_lr_stays_at_the_end_of_the_cosine():
    """A schedule shorter than the run (lr_schedule_steps) holds its final LR instead of rising again."""
    base, W, N, r = 1e-3, 10, 100, 0.1
    for step in (100, 101, 150, 190, 10_000):
        assert cosine_schedule_with_warmup(step, base, W, N, r) == pytest.approx(base * r)
