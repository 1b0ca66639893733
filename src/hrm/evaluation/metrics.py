"""Evaluation metrics: the original's definitions, normalised the original's way.

Definitions (semantics §8.2), per row b with n_b supervised positions (labels != -100):
    exact_accuracy    every supervised position predicted right            (the headline figure)
    accuracy          mean over rows of (right positions / n_b)           ("token accuracy", per row first)
    q_halt_accuracy   (q_halt >= 0) agrees with "the row is exactly right"
    steps             ACT segments run for the row
Rows without supervised positions (padding) are not counted. Every figure is a sum over counted rows
divided by their count, as `pretrain.evaluate` divides every metric, the losses included, by `count`.

`normalise` turns the loss head's raw sums into these figures; `from_predictions` computes the same
figures from prediction arrays, for answers the loss head never saw (Q-halted, voted over augmentations).
"""
from __future__ import annotations

import numpy as np

from hrm.models import IGNORE_LABEL_ID

HEADLINE = "exact_accuracy"


def normalise(sums: dict[str, float]) -> dict[str, float]:
    """Divide every raw sum by `count` (the original's rule); `count` itself is kept as the number of rows."""
    count = sums.get("count", 0.0)
    out = {k: (v / count if count else float("nan")) for k, v in sums.items() if k != "count"}
    out["count"] = int(count)
    return out


def row_correctness(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right positions per row, supervised positions per row, exactly right per row) for (N, S) arrays.

    A row with no supervised position counts as exactly right, as in the loss head's Q target; callers
    drop such rows from the figures.
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ in shape")
    mask = labels != IGNORE_LABEL_ID
    right = (mask & (predictions == labels)).sum(-1)
    supervised = mask.sum(-1)
    return right, supervised, right == supervised


def exact(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: all supervised positions of the row predicted right."""
    return row_correctness(predictions, labels)[2]


def sums_from_predictions(predictions: np.ndarray, labels: np.ndarray, q_halt_logits: np.ndarray | None = None,
                          steps: np.ndarray | None = None) -> dict[str, float]:
    """The loss head's raw metric sums (semantics §8.2) for (N, S) predictions against (N, S) labels."""
    right, supervised, is_exact = row_correctness(predictions, labels)
    counted = supervised > 0
    sums = {"count": float(counted.sum()),
            "exact_accuracy": float(is_exact[counted].sum()),
            "accuracy": float((right[counted] / supervised[counted]).sum())}
    if q_halt_logits is not None:
        sums["q_halt_accuracy"] = float(((np.asarray(q_halt_logits)[counted] >= 0) == is_exact[counted]).sum())
    if steps is not None:
        sums["steps"] = float(np.asarray(steps)[counted].sum())
    return sums


def from_predictions(predictions: np.ndarray, labels: np.ndarray, q_halt_logits: np.ndarray | None = None,
                     steps: np.ndarray | None = None) -> dict[str, float]:
    """The normalised figures for (N, S) predictions against (N, S) labels."""
    return normalise(sums_from_predictions(predictions, labels, q_halt_logits, steps))


def q_halting_comparison(fixed: dict[str, float], q_halted: dict[str, float], halt_max_steps: int) -> dict[str, float]:
    """Side by side: the fixed rule (every row runs halt_max_steps) against stopping at the Q head.

    Compute is counted in ACT segments per puzzle, the unit a runtime that drops halted rows saves.
    """
    mean_steps = q_halted["steps"]
    return {
        "fixed_exact_accuracy": fixed["exact_accuracy"],
        "q_halt_exact_accuracy": q_halted["exact_accuracy"],
        "accuracy_cost": fixed["exact_accuracy"] - q_halted["exact_accuracy"],
        "fixed_steps": float(halt_max_steps),
        "q_halt_mean_steps": mean_steps,
        "compute_saved": 1.0 - mean_steps / halt_max_steps,
    }
