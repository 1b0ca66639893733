"""Breadth at test time: N trajectories per puzzle, one answer picked without the labels (semantics §11.3).

    runner = breadth_runner(head, samples=16, noise=0.3, select="vote")    # a runner of evaluation.loop

Every puzzle of a batch is repeated N times, so the N trajectories run as one batch of the one ACT driver
(far cheaper than N evaluations: one forward per step for all of them). They differ by Gaussian noise of
std `noise` on the initial latent state (and, with `noise_every_step`, on the carry before every step),
and with `init="random"` by initial states drawn afresh for every trajectory, from generators seeded
`seed`; test-time augmentation (`tta=K`) composes with both. One answer per puzzle is then selected,
without looking at the labels:

    vote           the answer most trajectories give; ties broken by their mean sigmoid(q_halt), then first seen
    vote+residual  the same majority; ties broken by the smaller mean residual (below), then first seen
    q              the trajectory whose Q head is most confident it is right (highest q_halt at its last step)
    residual       the trajectory whose answer latent changed least in its last step (the most converged one)

The selected trajectory's outputs (logits, Q logits, steps) are the puzzle's, so the loss head's metrics
describe the selected answers. Every trajectory's answer is kept too, for the oracle pass@N (is any of them
right? it looks at the labels: an upper bound, never the headline).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hrm.act_driver import ACTResult
from hrm.evaluation.loop import Runner, torch_runner
from hrm.evaluation.voting import rank

SELECTORS = ("vote", "vote+residual", "q", "residual")


def select(result: ACTResult, samples: int, how: str, depth: int | None = None) -> np.ndarray:
    """(B,) the index (0..samples-1) of the trajectory picked for each of the B puzzles of `result`
    (B * samples rows, each puzzle's trajectories consecutive): from the answers, Q logits and residuals
    after step `depth` (hrm.evaluation.sweep scores every depth of one run), by default the last step's."""
    B = len(result.predictions) // samples
    if depth is None:
        answers, q, residual = result.predictions, result.q_halt, result.residual
    else:
        k = depth - 1
        answers, q = result.step_predictions[:, k], result.step_q_halt[:, k]
        residual = None if result.step_residual is None else result.step_residual[:, k]
    answers, q = answers.reshape(B, samples, -1), q.reshape(B, samples)
    if how in ("residual", "vote+residual"):
        if residual is None:
            raise ValueError(f"select={how} needs a step that reports the answer latent's change (backend=torch)")
        residual = np.nan_to_num(residual.reshape(B, samples), nan=np.inf)
    if how == "q":
        return q.argmax(1)
    if how == "residual":
        return residual.argmin(1)
    if how == "vote":
        return np.array([rank((answers[b, n].tobytes(), n, q[b, n]) for n in range(samples))[0].answer
                         for b in range(B)])
    if how == "vote+residual":
        return np.array([_majority_by_residual(answers[b], residual[b]) for b in range(B)])
    raise ValueError(f"select must be one of {', '.join(SELECTORS)}, got {how!r}")


def _majority_by_residual(answers: np.ndarray, residual: np.ndarray) -> int:
    """The first trajectory giving the most frequent of these (N, S) answers; ties broken by the smaller mean
    residual of the answer's trajectories, then by the order first seen (as `vote` breaks them by Q)."""
    tally: dict[bytes, list] = {}                   # answer -> [first trajectory, votes, summed residual]
    for n, answer in enumerate(answers):
        entry = tally.setdefault(answer.tobytes(), [n, 0, 0.0])
        entry[1] += 1
        entry[2] += float(residual[n])
    return min(tally.values(), key=lambda e: (-e[1], e[2] / e[1], e[0]))[0]


def breadth_runner(head, samples: int, noise: float = 0.0, select_by: str = "vote", seed: int = 0,
                   noise_every_step: bool = False, steps: int | None = None, compile: bool = False,
                   init: str = "learned", keep: Callable[[ACTResult], None] | None = None) -> Runner:
    """`runner(batch, save_steps) -> ACTResult`: per puzzle, the selected one of `samples` trajectories, with
    every trajectory's answer in `sample_predictions` (B, samples, S). `keep`, if given, is handed every
    batch's whole result (B * samples rows, every step: what hrm.evaluation.sweep scores)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if select_by not in SELECTORS:
        raise ValueError(f"select must be one of {', '.join(SELECTORS)}, got {select_by!r}")
    inner = torch_runner(head, compile=compile, steps=steps, noise=noise, noise_every_step=noise_every_step, seed=seed,
                         init=init)

    def run(batch: dict[str, torch.Tensor], save_steps: bool) -> ACTResult:
        B = batch["inputs"].shape[0]
        repeated = {k: v.repeat_interleave(samples, dim=0) for k, v in batch.items()}
        result = inner(repeated, save_steps)                       # B * samples rows, puzzle-major
        if keep is not None:
            keep(result)
        picked = np.arange(B) * samples + select(result, samples, select_by)
        chosen = result.take(picked)
        chosen.sample_predictions = result.predictions.reshape(B, samples, -1)
        chosen.seconds = result.seconds
        return chosen

    run.step = inner.step
    return run
