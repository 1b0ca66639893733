"""Breadth at test time: N trajectories per puzzle, one answer picked without the labels (semantics §11.3).

    runner = breadth_runner(head, samples=16, noise=0.3, select="vote")    # a runner of evaluation.loop

Every puzzle of a batch is repeated N times, so the N trajectories run as one batch of the one ACT driver
(one forward per step for all of them; on the CPU in chunks of whole puzzles, CPU_ROWS_PER_FORWARD rows at
most). NOTE: where one puzzle's row leaves the cores idle (hrm solve, small batches), the N trajectories
cost far less than N evaluations; where a batch of puzzles already fills them (64 puzzles on a 2-core CPU),
about as much (benchmarks/RESULTS.md "Test-time scaling"). They differ by Gaussian noise of
std `noise` on the initial latent state (and, with `noise_every_step`, on the carry before every step),
and with `init="random"` by initial states drawn afresh for every trajectory, from generators seeded
`seed`. Test-time augmentation (`tta=K`, hrm.evaluation.tta) is a third source that composes with both:
each puzzle is solved in K versions (the original and K - 1 random symmetries), `samples` trajectories
each, K x samples trajectories in all, every answer mapped back to the original frame before one is
picked. One answer per puzzle is then selected, without looking at the labels:

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
                   init: str = "learned", keep: Callable[[ACTResult], None] | None = None, augmenter=None,
                   versions: int = 1, inner: Runner | None = None, rows_per_forward: int | None = None) -> Runner:
    """`runner(batch, save_steps) -> ACTResult`: per puzzle, the selected one of T = versions x samples
    trajectories, with every trajectory's answer (in the original frame) in `sample_predictions` (B, T, S).
    `keep`, if given, is handed every batch's whole result (B * T rows, every step: what hrm.evaluation.sweep
    scores). With versions > 1 (an `augmenter` of hrm.puzzles), the batch must hold "example_indices" (the
    split index of each row, -1 for padding: hrm.evaluation.loop.evaluate adds them), which seed the
    versions. `inner` replaces the PyTorch runner (another backend: no noise, no residual).
    `rows_per_forward` caps the rows of one forward: the batch's B * T rows run in chunks of whole puzzles
    (see chunk_puzzles) that draw the same noise and initial states as one piece, so the results are the same."""
    from hrm.evaluation import tta

    if samples < 1 or versions < 1:
        raise ValueError(f"samples and versions must be >= 1, got {samples} and {versions}")
    if select_by not in SELECTORS:
        raise ValueError(f"select must be one of {', '.join(SELECTORS)}, got {select_by!r}")
    if versions > 1 and augmenter is None:
        raise ValueError("versions > 1 needs the puzzle family's augmenter")
    if inner is None:
        inner = torch_runner(head, compile=compile, steps=steps, noise=noise, noise_every_step=noise_every_step,
                             seed=seed, init=init)
    T = versions * samples

    def run(batch: dict[str, torch.Tensor], save_steps: bool) -> ACTResult:
        B, S = batch["inputs"].shape
        repeated = {k: v.repeat_interleave(T, dim=0) for k, v in batch.items()}
        if versions > 1:
            mapping, token_map = tta.trajectory_frames(augmenter, batch["example_indices"].cpu().numpy(), versions,
                                                       samples, seed, S)
            inputs = tta.apply(repeated["inputs"].cpu().numpy(), mapping, token_map)
            repeated["inputs"] = torch.from_numpy(inputs.astype(np.int32)).to(batch["inputs"].device)
        result = _in_chunks(inner, repeated, save_steps, T * chunk_puzzles(B, T, rows_per_forward))  # B * T rows
        if versions > 1:
            result = tta.to_original(result, mapping, token_map)
        if keep is not None:
            keep(result)
        picked = np.arange(B) * T + select(result, T, select_by)
        chosen = result.take(picked)
        chosen.sample_predictions = result.predictions.reshape(B, T, -1)
        chosen.seconds = result.seconds
        return chosen

    run.step = getattr(inner, "step", None)
    run.detail = getattr(inner, "detail", None)
    return run


# NOTE: on a CPU a forward's cost is about linear in its rows once a few puzzles fill the cores, and past
# that every row costs more the more rows there are (the activations leave the cache). Measured with
# benchmarks/bench_scaling.py (one thread of an AMD EPYC Zen 4, the demo HRM at 36 tokens, 64 puzzles x 16
# trajectories, 8 ACT steps): chunks of 64 rows 0.21-0.28 s per puzzle, 128: 0.31, 256: 0.30-0.42, all 1,024
# rows at once 0.43. So on the CPU the B * T rows of a breadth run go in chunks of at most this many.
CPU_ROWS_PER_FORWARD = 64


def default_rows_per_forward(device, asked: int | None = None) -> int | None:
    """The chunk size breadth uses on `device`: the one `asked` for (hrm eval rows_per_forward=N), else
    CPU_ROWS_PER_FORWARD on the CPU and None (the whole batch in one piece) elsewhere."""
    if asked:
        return asked
    return CPU_ROWS_PER_FORWARD if torch.device(device).type == "cpu" else None


def chunk_puzzles(puzzles: int, trajectories: int, rows_per_forward: int | None) -> int:
    """Puzzles per chunk: as many whole puzzles (each `trajectories` rows) as fit in `rows_per_forward`
    rows, at least one; all of them without a cap."""
    if rows_per_forward is None:
        return puzzles
    return max(1, min(puzzles, rows_per_forward // trajectories))


def _in_chunks(inner: Runner, batch: dict[str, torch.Tensor], save_steps: bool, rows: int) -> ACTResult:
    """`inner` over consecutive chunks of `rows` rows of `batch`, as one ACTResult (the times summed). The
    step draws the whole batch's fresh carry first (TorchStep.reserve), so every chunk starts from the rows
    an unchunked run would give it."""
    total = len(batch["inputs"])
    if total <= rows:
        return inner(batch, save_steps)
    step = getattr(inner, "step", None)
    if hasattr(step, "reserve"):
        step.reserve(total)
    parts = [inner({k: v[start:start + rows] for k, v in batch.items()}, save_steps) for start in range(0, total, rows)]
    return ACTResult.concatenate(parts)
