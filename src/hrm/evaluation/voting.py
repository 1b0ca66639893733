"""Voting over the answers to one question, as the original's ARC evaluation ranks them (semantics §12.1).

Each augmented version of a puzzle, mapped back to the original frame, casts one vote: its answer and
its confidence sigmoid(q_halt). Answers are ranked by the number of votes, then by the mean confidence
of their voters, both descending. NOTE: remaining ties keep the order in which the answers were first
seen, as Python's stable `sorted(..., reverse=True)` in the original notebook does.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any


def sigmoid(x: float) -> float:
    # The two branches avoid overflow in exp for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass
class Candidate:
    key: Hashable            # what identifies the answer (e.g. a grid's shape and bytes)
    answer: Any              # the answer itself, as first seen
    votes: int
    confidence: float        # mean sigmoid(q_halt) of the voters


def rank(votes: Iterable[tuple[Hashable, Any, float]]) -> list[Candidate]:
    """Rank (key, answer, q_halt_logit) votes: by count, then mean sigmoid(q_halt), then first seen."""
    tally: dict[Hashable, list] = {}
    for key, answer, q_halt_logit in votes:
        entry = tally.setdefault(key, [answer, 0, 0.0])
        entry[1] += 1
        entry[2] += sigmoid(float(q_halt_logit))
    candidates = [Candidate(key, answer, n, total / n) for key, (answer, n, total) in tally.items()]
    return sorted(candidates, key=lambda c: (c.votes, c.confidence), reverse=True)


def grid_key(grid) -> tuple:
    """A hashable identity for a numpy grid: its shape and its bytes (as the original's grid hash)."""
    import numpy as np

    grid = np.ascontiguousarray(grid, dtype=np.uint8)
    return (grid.shape, grid.tobytes())
