"""The eval-mode ACT loop (semantics §11.1): a fresh carry, one loss-head call per segment, the last call kept.

    run_act(head, batch)        one batch: final predictions, Q logits, the loss head's metric sums, the
                                step at which each row's Q head says halt, and optionally every step
    evaluate(head, dataset)     a whole split: runs run_act over a test-mode loader, keeps the rows in order,
                                and (under torchrun) gathers every rank's rows and sums on rank 0

In eval mode the model halts a row only at `halt_max_steps` (the original's rule), so every batch takes
exactly that many calls. The Q head's own halting decision (the model's halt rule, hrm.halting: the training
rule without exploration) is recorded on the way: the prediction at that step, and the step itself, so that a run can
report "stop when the Q head says halt" beside the fixed rule from the same forward passes.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hrm import halting
from hrm.models import IGNORE_LABEL_ID, ACTLossHead

OUTPUT_KEYS = ("logits", "q_halt_logits", "q_continue_logits")


@dataclass
class BatchOutputs:
    """What one batch's ACT loop produced. Row order is the batch's; tensors live on the CPU."""

    predictions: torch.Tensor                 # (B, S) int32: argmax of the last call's logits
    q_halt_logits: torch.Tensor               # (B,) float32, last call
    q_continue_logits: torch.Tensor           # (B,) float32, last call
    metrics: dict[str, torch.Tensor]          # the loss head's raw sums from the last call (semantics §8.2)
    q_halt_step: torch.Tensor                 # (B,) int32: first step the Q head says halt, else the last step
    q_halt_predictions: torch.Tensor          # (B, S) int32: the prediction at q_halt_step
    q_halt_q_logits: torch.Tensor             # (B,) float32: q_halt at q_halt_step (voting under Q halting)
    steps_run: int                            # calls made (halt_max_steps unless stopped at the Q head)
    step_predictions: torch.Tensor | None = None       # (B, K, S) int32 when asked for
    step_q_halt_logits: torch.Tensor | None = None     # (B, K) float32
    step_q_continue_logits: torch.Tensor | None = None  # (B, K) float32


@torch.inference_mode()
def run_act(head: ACTLossHead, batch: dict[str, torch.Tensor], save_steps: bool = False,
            stop_at_q_halt: bool = False) -> BatchOutputs:
    """Run the eval-mode ACT loop on one batch (already on the model's device).

    stop_at_q_halt ends the loop as soon as every row's Q head has said halt (used by `hrm solve`; the
    loss head's metrics then cover no row, since the model itself has not halted them).
    """
    if head.training:
        raise RuntimeError("run_act needs the model in eval mode (head.eval()): in training mode rows halt "
                           "early and exploration is random")
    max_steps = head.model.config.halt_max_steps
    rule = head.model.policy.rule
    carry = head.initial_carry(batch)
    B = batch["inputs"].shape[0]
    device = batch["inputs"].device
    q_halted = torch.zeros(B, dtype=torch.bool, device=device)
    q_halt_step = torch.full((B,), max_steps, dtype=torch.int32, device=device)
    q_halt_predictions = q_halt_q = None
    per_step: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    step = 0
    while True:
        step += 1
        carry, _, metrics, outputs, all_halted = head(carry, batch, return_keys=OUTPUT_KEYS)
        predictions = outputs["logits"].argmax(-1).to(torch.int32)
        q_halt, q_continue = outputs["q_halt_logits"], outputs["q_continue_logits"]
        if save_steps:
            per_step.append((predictions.cpu(), q_halt.cpu(), q_continue.cpu()))

        # The Q head's decision, frozen at the first step it says halt; rows that never do end at the last step.
        says_halt = halting.says_halt(rule, q_halt, q_continue) | (step >= max_steps)
        newly = says_halt & ~q_halted
        if q_halt_predictions is None:
            q_halt_predictions, q_halt_q = predictions.clone(), q_halt.clone()
        else:
            q_halt_predictions = torch.where(newly.unsqueeze(-1), predictions, q_halt_predictions)
            q_halt_q = torch.where(newly, q_halt, q_halt_q)
        q_halt_step = torch.where(newly, step, q_halt_step)
        q_halted |= says_halt

        if bool(all_halted) or (stop_at_q_halt and bool(q_halted.all())):
            break
        if step >= max_steps:  # eval mode always halts here; guard against a model that never does
            raise RuntimeError(f"the model did not halt after halt_max_steps={max_steps} calls")

    result = BatchOutputs(
        predictions=predictions.cpu(), q_halt_logits=q_halt.float().cpu(), q_continue_logits=q_continue.float().cpu(),
        metrics={k: v.detach().cpu() for k, v in metrics.items()}, q_halt_step=q_halt_step.cpu(),
        q_halt_predictions=q_halt_predictions.cpu(), q_halt_q_logits=q_halt_q.float().cpu(), steps_run=step)
    if save_steps:
        preds, halts, conts = zip(*per_step)
        result.step_predictions = torch.stack(preds, dim=1)
        result.step_q_halt_logits = torch.stack(halts, dim=1).float()
        result.step_q_continue_logits = torch.stack(conts, dim=1).float()
    return result


# ----------------------------------------------------------------------------------------------------
# A whole split

# Per-row arrays kept by `evaluate`, in split order. Tokens are kept as int16 in memory (labels hold -100).
ROW_FIELDS = ("inputs", "labels", "puzzle_identifiers", "predictions", "q_halt_logits", "q_continue_logits",
              "q_halt_step", "q_halt_predictions", "q_halt_q_logits")
STEP_FIELDS = ("step_predictions", "step_q_halt_logits", "step_q_continue_logits")
# The loss head's metric sums (semantics §8.2) in eval mode (hrm.training sums these itself).
METRIC_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss")


@dataclass
class SplitOutputs:
    """Every real (non-padding) row of a split, in split order, and the summed loss-head metrics."""

    rows: dict[str, np.ndarray]
    metric_sums: dict[str, float]
    num_examples: int
    halt_max_steps: int


def _compact(name: str, tensor: torch.Tensor) -> np.ndarray:
    array = tensor.numpy()
    if name in ("inputs", "labels", "predictions", "q_halt_predictions", "step_predictions"):
        return array.astype(np.int16)
    if name in ("puzzle_identifiers", "q_halt_step"):
        return array.astype(np.int32)
    return array.astype(np.float32)


def evaluate(head: ACTLossHead, dataset, device: torch.device | str = "cpu", save_steps: bool = False,
             max_examples: int | None = None, progress: bool = False, augmenter=None, versions: int = 1,
             seed: int = 0, vote_q_halted: bool = False,
             runner: Callable[[dict[str, torch.Tensor], bool], BatchOutputs] | None = None) -> SplitOutputs:
    """Evaluate `head` on a test-mode `PuzzleDataset` (hrm.data), in its order.

    Under torch.distributed every rank passes its own shard of the same split (the loader gives every rank
    the same number of equally padded batches); rank 0 returns the gathered rows and the summed metrics,
    other ranks their sums only (rows empty). Padding rows are dropped by position: in a global batch
    holding `real` examples, rows at offset >= real are padding (semantics §10.2). `max_examples` evaluates a
    prefix of the split: rows past it become padding rows (labels ignored), so no metric counts them.
    With an `augmenter` (hrm.evaluation.tta) and versions > 1, every row is also solved in versions - 1
    transformed versions and the voted answer is kept as the row field "tta_predictions".
    `runner(batch, save_steps)` replaces the PyTorch loop (hrm.evaluation.backends: another backend).
    """
    from hrm.evaluation import distributed

    head.eval()
    if runner is None:
        def runner(batch, steps):
            return run_act(head, batch, save_steps=steps)
    G, L = dataset.global_batch_size, dataset.local_batch_size
    rank_offsets = dataset.rank * L + np.arange(L)          # this rank's rows' offsets in a global batch
    sums: dict[str, float] = {}
    local: dict[str, list[np.ndarray]] = {k: [] for k in ROW_FIELDS + (STEP_FIELDS if save_steps else ())}
    real_sizes: list[int] = []
    seen = 0
    total = split_size(dataset.data_path, dataset.split, dataset.metadata.sets)
    if max_examples is not None:
        total = min(total, max_examples)
    for test_batch in _progress(dataset.iter_test_batches(), progress, -(-total // G)):
        if seen >= total:
            break
        real = min(test_batch.global_size, total - seen)
        seen += test_batch.global_size
        batch = dict(test_batch.batch)
        if real < test_batch.global_size:                   # the prefix ends inside this batch
            beyond = torch.from_numpy(rank_offsets >= real)
            batch["labels"] = torch.where(beyond.unsqueeze(-1), IGNORE_LABEL_ID, batch["labels"])
        batch = {k: v.to(device) for k, v in batch.items()}
        out = runner(batch, save_steps)
        for k, v in out.metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        tensors = {"inputs": batch["inputs"].cpu(), "labels": batch["labels"].cpu(),
                   "puzzle_identifiers": batch["puzzle_identifiers"].cpu(), "predictions": out.predictions,
                   "q_halt_logits": out.q_halt_logits, "q_continue_logits": out.q_continue_logits,
                   "q_halt_step": out.q_halt_step, "q_halt_predictions": out.q_halt_predictions,
                   "q_halt_q_logits": out.q_halt_q_logits}
        if save_steps:
            tensors |= {"step_predictions": out.step_predictions, "step_q_halt_logits": out.step_q_halt_logits,
                        "step_q_continue_logits": out.step_q_continue_logits}
        for k, t in tensors.items():
            local[k].append(_compact(k, t))
        if augmenter is not None and versions > 1:
            from hrm.evaluation.tta import vote_batch
            indices = seen - test_batch.global_size + rank_offsets
            voted = vote_batch(lambda b: runner(b, False), batch, out, augmenter, indices, versions, seed,
                               use_q_halt=vote_q_halted)
            local.setdefault("tta_predictions", []).append(voted.astype(np.int16))
        real_sizes.append(real)
    if not real_sizes:
        raise ValueError(f"{dataset.data_path}: the {dataset.split} split has no examples to evaluate")

    halt_max_steps = head.model.config.halt_max_steps
    sums = distributed.sum_floats(sums)
    rows = distributed.gather_batches({k: np.concatenate(v) for k, v in local.items()}, L)
    if rows is None:          # a rank other than 0
        return SplitOutputs({}, sums, total, halt_max_steps)
    keep = _real_rows(real_sizes, G)
    return SplitOutputs({k: v[keep] for k, v in rows.items()}, sums, total, halt_max_steps)


def split_size(data_path, split: str, sets: list[str]) -> int:
    """Examples in a split, read from the .npy headers."""
    from hrm.data.format import array_path
    from hrm.data.manifest import npy_header

    return sum(npy_header(array_path(data_path, split, s, "inputs"))[0][0] for s in sets)


def _real_rows(real_sizes: list[int], global_batch: int) -> np.ndarray:
    """Boolean mask over the concatenated global batches: True for rows that hold an example."""
    offsets = np.arange(global_batch)
    return np.concatenate([offsets < size for size in real_sizes])


def _progress(batches: Iterable, enabled: bool, total: int | None) -> Iterator:
    if not enabled:
        yield from batches
        return
    from hrm.progress import progress_bar
    yield from progress_bar(iterable=batches, total=total, desc="eval", unit="batch")
