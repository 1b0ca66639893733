"""ARC scoring: de-augment every version's answer, vote, pass@k, and the ARC Prize submission file.

The protocol is the original's (semantics §12, `arc_eval.ipynb`):
  1. The ground truth of a task is its non-augmented test rows (puzzle name without "_"): for each test
     input, crop(input) -> crop(label). Their order in the split is the order of the task's test inputs.
  2. Every row of every augmented version votes: the key is inverse_aug(crop(input)), the answer is
     inverse_aug(crop(prediction)), the confidence sigmoid(q_halt).
  3. Per test input, answers are ranked by (votes, mean confidence), descending (hrm.evaluation.voting).
  4. pass@k: the test input is right if its label is among the top k. A task counts only if all of its
     test inputs are right (task-level, all or nothing, as the original). hrm also reports the fraction of
     test inputs right, which partial-credit scorers use.
The submission is the ARC Prize Kaggle format: {task_id: [{"attempt_1": grid, "attempt_2": grid}, ...]},
one entry per test input in the task's order.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm.evaluation.voting import Candidate, grid_key, rank

DEFAULT_KS = (1, 2, 10, 100, 1000)
MAX_GRID = 30
# The placeholder answer of a test input without a second candidate (the Kaggle format needs both attempts).
PLACEHOLDER = [[0]]


def task_name(puzzle_name: str) -> str:
    """The task of a puzzle version's name ("007bbfb7_t3_0718293456" -> "007bbfb7")."""
    from hrm.data.arc import parse_aug_name

    parsed = parse_aug_name(puzzle_name)
    return parsed[0] if parsed else puzzle_name


@dataclass
class TestInput:
    """One test input of a task, with its ranked candidate answers (in the original, un-augmented frame)."""
    index: int                          # position among the task's test inputs
    input_grid: np.ndarray
    label_grid: np.ndarray | None       # None when the split carries no answer for it
    candidates: list[Candidate] = field(default_factory=list)

    def label_rank(self) -> int | None:
        """1-based rank of the label among the candidates, None if absent or unknown."""
        if self.label_grid is None:
            return None
        key = grid_key(self.label_grid)
        return next((i + 1 for i, c in enumerate(self.candidates) if c.key == key), None)

    def correct_at(self, k: int) -> bool:
        r = self.label_rank()
        return r is not None and r <= k


@dataclass
class ArcResults:
    tasks: dict[str, list[TestInput]]
    ks: tuple[int, ...]
    versions: int                       # rows (augmented versions x test inputs) that voted
    stray_votes: int                    # votes whose de-augmented input matched no test input of their task

    def scored_tasks(self) -> dict[str, list[TestInput]]:
        return {t: tests for t, tests in self.tasks.items() if all(x.label_grid is not None for x in tests)}

    def task_pass_at(self, k: int) -> float:
        scored = self.scored_tasks()
        if not scored:
            return float("nan")
        return sum(all(x.correct_at(k) for x in tests) for tests in scored.values()) / len(scored)

    def test_input_pass_at(self, k: int) -> float:
        inputs = [x for tests in self.scored_tasks().values() for x in tests]
        return sum(x.correct_at(k) for x in inputs) / len(inputs) if inputs else float("nan")

    def summary(self) -> dict[str, Any]:
        scored = self.scored_tasks()
        return {
            "tasks": len(self.tasks),
            "scored_tasks": len(scored),
            "test_inputs": sum(len(t) for t in scored.values()),
            "votes": self.versions,
            "stray_votes": self.stray_votes,
            "task_pass_at_k": {str(k): self.task_pass_at(k) for k in self.ks},
            "test_input_pass_at_k": {str(k): self.test_input_pass_at(k) for k in self.ks},
        }

    def per_task(self, top: int = 2) -> dict[str, Any]:
        """Per-task results for arc_tasks.json: solved at each k, and each test input's top answers."""
        out = {}
        for task, tests in self.tasks.items():
            known = all(x.label_grid is not None for x in tests)
            out[task] = {
                "solved_at_k": {str(k): all(x.correct_at(k) for x in tests) for k in self.ks} if known else None,
                "test_inputs": [{
                    "index": x.index,
                    "label_rank": x.label_rank(),
                    "candidates": len(x.candidates),
                    "votes": sum(c.votes for c in x.candidates),
                    "top": [{"votes": c.votes, "confidence": round(c.confidence, 6), "grid": c.answer.tolist(),
                             "correct": (x.label_grid is not None and c.key == grid_key(x.label_grid))}
                            for c in x.candidates[:top]],
                } for x in tests],
            }
        return out


def score(inputs: np.ndarray, labels: np.ndarray, puzzle_identifiers: np.ndarray, predictions: np.ndarray,
          q_halt_logits: np.ndarray, identifiers: Sequence[str], ks: Sequence[int] = DEFAULT_KS) -> ArcResults:
    """Score ARC predictions: (N, 900) token rows of the test split, their identifiers and q_halt logits.

    `identifiers` is the dataset's identifiers.json (id -> puzzle name). Rows with the blank identifier
    (padding) must already be dropped.
    """
    from hrm.data.arc import crop, inverse_aug

    if not (len(inputs) == len(labels) == len(puzzle_identifiers) == len(predictions) == len(q_halt_logits)):
        raise ValueError("ARC scoring: inputs, labels, identifiers, predictions and q_halt_logits differ in length")
    names = [identifiers[int(i)] for i in puzzle_identifiers]

    # 1. Ground truth from the non-augmented versions, test inputs in split order.
    tasks: dict[str, list[TestInput]] = {}
    for row, name in enumerate(names):
        if task_name(name) != name:
            continue
        input_grid = crop(inputs[row])
        label_mask = labels[row] != -100
        label_grid = crop(np.where(label_mask, labels[row], 0)) if label_mask.any() else None
        tests = tasks.setdefault(name, [])
        tests.append(TestInput(len(tests), input_grid, label_grid))
    known = {(name, grid_key(test.input_grid)) for name, tests in tasks.items() for test in tests}

    # 2. Votes from every version, mapped back to the original frame, pooled per (task, input grid).
    # NOTE: two identical test inputs of one task cannot be told apart once augmented: they share their votes.
    votes: dict[tuple[str, tuple], list[tuple]] = {}
    stray = 0
    for row, name in enumerate(names):
        key = (task_name(name), grid_key(inverse_aug(name, crop(inputs[row]))))
        if key not in known:
            stray += 1
            continue
        answer = inverse_aug(name, crop(predictions[row]))
        votes.setdefault(key, []).append((grid_key(answer), answer, float(q_halt_logits[row])))

    # 3. Rank each test input's answers.
    for name, tests in tasks.items():
        for test in tests:
            test.candidates = rank(votes.get((name, grid_key(test.input_grid)), []))
    return ArcResults(tasks, tuple(int(k) for k in ks), len(names) - stray, stray)


# ----------------------------------------------------------------------------------------------------
# The ARC Prize (Kaggle) submission file

def submission(results: ArcResults) -> dict[str, list[dict[str, list[list[int]]]]]:
    """{task_id: [{"attempt_1": grid, "attempt_2": grid} per test input]}; the top two voted answers."""
    out = {}
    for task, tests in results.tasks.items():
        entries = []
        for test in tests:
            attempts = [c.answer.tolist() for c in test.candidates[:2]]
            attempts += [PLACEHOLDER] * (2 - len(attempts))
            entries.append({"attempt_1": attempts[0], "attempt_2": attempts[1]})
        out[task] = entries
    return out


def validate_submission(submission: Any, expected: dict[str, int] | None = None) -> None:
    """Check the Kaggle structure; raise ValueError naming the task, test input and attempt at fault.

    `expected` maps task id -> number of test inputs, when known (e.g. from the challenges file).
    """
    if not isinstance(submission, dict):
        raise ValueError(f"submission: expected a JSON object of task ids, got {type(submission).__name__}")
    if expected is not None:
        missing = sorted(set(expected) - set(submission))
        extra = sorted(set(submission) - set(expected))
        if missing:
            raise ValueError(f"submission: {len(missing)} task(s) missing, e.g. {missing[0]}")
        if extra:
            raise ValueError(f"submission: unknown task(s), e.g. {extra[0]}")
    for task, entries in submission.items():
        if not isinstance(task, str) or not task:
            raise ValueError(f"submission: task id {task!r} is not a non-empty string")
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"submission[{task!r}]: expected a non-empty list (one entry per test input)")
        if expected is not None and len(entries) != expected[task]:
            raise ValueError(f"submission[{task!r}]: {len(entries)} entries, the task has {expected[task]} test inputs")
        for i, entry in enumerate(entries):
            where = f"submission[{task!r}][{i}]"
            if not isinstance(entry, dict) or set(entry) != {"attempt_1", "attempt_2"}:
                keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
                raise ValueError(f"{where}: expected exactly the keys attempt_1 and attempt_2, got {keys}")
            for attempt in ("attempt_1", "attempt_2"):
                _check_grid(entry[attempt], f"{where}[{attempt!r}]")


def _check_grid(grid: Any, where: str) -> None:
    if not isinstance(grid, list) or not grid or not all(isinstance(r, list) for r in grid):
        raise ValueError(f"{where}: expected a non-empty list of rows")
    width = len(grid[0])
    if not 1 <= width <= MAX_GRID or len(grid) > MAX_GRID:
        raise ValueError(f"{where}: grid is {len(grid)}x{width}; ARC grids are 1..{MAX_GRID} on each side")
    for r, row in enumerate(grid):
        if len(row) != width:
            raise ValueError(f"{where}: row {r} has {len(row)} cells, row 0 has {width}")
        for c, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell <= 9:
                raise ValueError(f"{where}: cell ({r}, {c}) is {cell!r}; colours are integers 0..9")


def write_json(path: Path, value: Any, indent: int | None = None) -> None:
    """Write JSON atomically (a temporary file, then a rename)."""
    from hrm.files import atomic_write_text

    atomic_write_text(path, json.dumps(_finite(value), indent=indent) + "\n")


def _finite(value: Any) -> Any:
    """NaN and infinities become null: they are not JSON."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
