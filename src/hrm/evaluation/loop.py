"""The evaluation of a PyTorch model: one batch, and a whole split (semantics §11.1).

    torch_runner(head)          the PyTorch step under the one ACT driver (hrm.act_driver.run_act):
                                runner(batch, save_steps) -> ACTResult
    run_batch(head, batch)      one batch through it
    batch_metrics(...)          the loss head's metric sums for an ACTResult (the same definitions, the same
                                code: hrm.models.losses.act_losses)
    evaluate(head, dataset)     a whole split: runs a runner over a test-mode loader, keeps the rows in order
                                (or only the sums), and under torchrun gathers every rank's rows and sums on
                                rank 0
    subset_rows(total, n, seed) a seeded subset of a split's rows (hrm eval subset=N), for evaluate(rows=)

The protocol itself (a fresh carry, halt_max_steps steps, no mid-way reset, the Q head's decision recorded
on the way) is the driver's; nothing here re-implements it. Another backend (hrm.evaluation.backends)
is another runner and goes through the same split loop and the same metrics.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hrm.act_driver import ACTResult, run_act
from hrm.evaluation.metrics import exact
from hrm.models import IGNORE_LABEL_ID, ACTLossHead
from hrm.models.losses import act_losses

Runner = Callable[[dict[str, torch.Tensor], bool], ACTResult]
Scorer = Callable[[ACTResult, np.ndarray, np.ndarray], dict[str, float]]    # (out, labels, counted) -> counts


def torch_runner(head: ACTLossHead, compile: bool = False, halt_early: bool = False, steps: int | None = None,
                 noise: float = 0.0, noise_every_step: bool = False, seed: int = 0, init: str = "learned") -> Runner:
    """`runner(batch, save_steps) -> ACTResult` for the PyTorch model: its inner step, the carry kept on the
    device, under hrm.act_driver.run_act. With `compile`, the inner model is compiled (hrm.compiling).
    `steps` (depth) runs that many ACT steps instead of the halt_max_steps the model was trained with;
    noise, noise_every_step, seed and init are the trajectories' diversity (hrm.export.torch_step.TorchStep)."""
    from hrm.compiling import maybe_compiled
    from hrm.export.torch_step import TorchStep
    from hrm.host_memory import keep_freed_memory

    inner = head.model.inner
    keep_freed_memory(next(inner.parameters()).device)   # no page faults on reused buffers (hrm.host_memory)
    step = TorchStep(inner, device_carry=True, forward=maybe_compiled(inner, compile, " in evaluation"), noise=noise,
                     noise_every_step=noise_every_step, seed=seed, init=init)
    policy, K = head.model.policy, steps or head.model.config.halt_max_steps

    def run(batch: dict[str, torch.Tensor], save_steps: bool) -> ACTResult:
        # NOTE: the per-step predictions are always kept (a (B, K, S) copy per batch): the exact accuracy after
        # each step is part of every report; save_steps decides whether they are also kept per row.
        return run_act(step, batch["inputs"].cpu().numpy(), batch["puzzle_identifiers"].cpu().numpy(), K,
                       halt_early=halt_early, keep_step_predictions=True, halt_rule=policy.rule)

    run.step = step
    return run


def ran_compiled(runner: Runner) -> bool:
    """True if `runner` is a compiled PyTorch runner whose compiled step is still in use (no fallback)."""
    step = getattr(runner, "step", None)
    return bool(getattr(getattr(step, "forward", None), "compiled", False))


def run_batch(head: ACTLossHead, batch: dict[str, torch.Tensor], save_steps: bool = False,
              halt_early: bool = False) -> ACTResult:
    """One batch through the PyTorch model (see torch_runner)."""
    return torch_runner(head, halt_early=halt_early)(batch, save_steps)


def batch_metrics(loss_fn, result: ACTResult, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss head's raw metric sums for the rows of `result` that halted under the eval rule (all of them
    unless the run halted early): computed by the loss head's own code from the final logits."""
    halt_max_steps = result.step_q_halt.shape[1]
    halted = torch.from_numpy(result.steps >= halt_max_steps)
    with torch.no_grad():
        _, _, metrics = act_losses(torch.from_numpy(result.logits), labels.cpu(), torch.from_numpy(result.q_halt),
                                   torch.from_numpy(result.steps), halted, loss_fn)
    return metrics


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
    halt_max_steps: int                  # the steps every row ran (the model's, or the depth asked for)
    step_exact: list[float] | None = None   # counted rows exactly right after each step 1..halt_max_steps


def _compact(name: str, array: np.ndarray) -> np.ndarray:
    if name in ("inputs", "labels", "predictions", "q_halt_predictions", "step_predictions"):
        return array.astype(np.int16)
    if name in ("puzzle_identifiers", "q_halt_step"):
        return array.astype(np.int32)
    return array.astype(np.float32)


def evaluate(head: ACTLossHead, dataset, device: torch.device | str = "cpu", save_steps: bool = False,
             max_examples: int | None = None, progress: bool = False, runner: Runner | None = None, keep_rows: bool = True,
             compile: bool = False, rows: np.ndarray | None = None, score: Scorer | None = None) -> SplitOutputs:
    """Evaluate `head` on a test-mode `PuzzleDataset` (hrm.data), in its order.

    Under torch.distributed every rank passes its own shard of the same split (the loader gives every rank
    the same number of equally padded batches); rank 0 returns the gathered rows and the summed metrics,
    other ranks their sums only (rows empty). Padding rows are dropped by position: in a global batch
    holding `real` examples, rows at offset >= real are padding (semantics §10.2). `max_examples` evaluates a
    prefix of the split: rows past it become padding rows (labels ignored), so no metric counts them.
    The runner's batch also holds "example_indices": each row's index in the split (-1 for a padding row),
    which seeds what is drawn per puzzle (the versions of test-time augmentation, hrm.evaluation.tta).
    `runner(batch, save_steps)` replaces the PyTorch step (hrm.evaluation.backends: another backend).
    `keep_rows=False` keeps only the metric sums (the trainer's evaluation: no host memory per row).
    `rows` (sorted example indices of the split: subset_rows) evaluates only those examples, in that order.
    `score(out, labels, counted)` adds its own counts of each batch to the sums (hrm.evaluation.sweep's cells).
    """
    from hrm.evaluation import distributed

    head.eval()
    if runner is None:
        runner = torch_runner(head, compile=compile)
    G, L = dataset.global_batch_size, dataset.local_batch_size
    rank_offsets = dataset.rank * L + np.arange(L)          # this rank's rows' offsets in a global batch
    sums: dict[str, float] = {}
    local: dict[str, list[np.ndarray]] = {k: [] for k in ROW_FIELDS + (STEP_FIELDS if save_steps else ())} \
        if keep_rows else {}
    real_sizes: list[int] = []
    seen = 0
    total = split_size(dataset.data_path, dataset.split, dataset.metadata.sets) if rows is None else len(rows)
    if max_examples is not None:
        total = min(total, max_examples)
    batches = dataset.iter_test_batches() if rows is None else subset_batches(dataset, rows)
    for test_batch in _progress(batches, progress, -(-total // G)):
        if seen >= total:
            break
        real = min(test_batch.global_size, total - seen)
        positions = seen + rank_offsets                      # in the evaluated sequence of examples
        seen += test_batch.global_size
        batch = dict(test_batch.batch)
        if real < test_batch.global_size:                   # the prefix ends inside this batch
            beyond = torch.from_numpy(rank_offsets >= real)
            batch["labels"] = torch.where(beyond.unsqueeze(-1), IGNORE_LABEL_ID, batch["labels"])
        split_index = positions if rows is None else rows[np.minimum(positions, total - 1)]
        indices = np.where(rank_offsets < real, split_index, -1)
        batch["example_indices"] = torch.from_numpy(indices.astype(np.int64))
        batch = {k: v.to(device) for k, v in batch.items()}
        out = runner(batch, save_steps)
        for k, v in batch_metrics(head.loss_fn, out, batch["labels"]).items():
            sums[k] = sums.get(k, 0.0) + float(v)
        labels = batch["labels"].cpu().numpy()
        counted = (labels != IGNORE_LABEL_ID).any(-1)
        for k, v in (score(out, labels, counted) if score else {}).items():
            sums[k] = sums.get(k, 0.0) + v
        if out.sample_predictions is not None:    # breadth: does any trajectory hold the answer (an oracle)?
            any_right = np.zeros(len(labels), dtype=bool)
            for n in range(out.sample_predictions.shape[1]):
                any_right |= exact(out.sample_predictions[:, n], labels)
            sums["pass_at_samples"] = sums.get("pass_at_samples", 0.0) + float((any_right & counted).sum())
            one = exact(out.sample_predictions[:, 0], labels) & counted
            sums["one_sample_exact"] = sums.get("one_sample_exact", 0.0) + float(one.sum())
        if out.step_predictions is not None:      # exact accuracy after each step (depth), counted rows only
            for k in range(out.step_predictions.shape[1]):
                right = exact(out.step_predictions[:, k], labels) & counted
                sums[f"step_exact.{k + 1}"] = sums.get(f"step_exact.{k + 1}", 0.0) + float(right.sum())
        real_sizes.append(real)
        if not keep_rows:
            continue
        arrays = {"inputs": batch["inputs"].cpu().numpy(), "labels": labels,
                  "puzzle_identifiers": batch["puzzle_identifiers"].cpu().numpy(), "predictions": out.predictions,
                  "q_halt_logits": out.q_halt, "q_continue_logits": out.q_continue,
                  "q_halt_step": out.q_halt_step, "q_halt_predictions": out.q_halt_predictions,
                  "q_halt_q_logits": out.q_halt_q}
        if save_steps:
            arrays |= {"step_predictions": out.step_predictions, "step_q_halt_logits": out.step_q_halt,
                       "step_q_continue_logits": out.step_q_continue}
        for k, a in arrays.items():
            local[k].append(_compact(k, a))
    if not real_sizes:
        raise ValueError(f"{dataset.data_path}: the {dataset.split} split has no examples to evaluate")

    sums = distributed.sum_floats(sums)
    step_keys = sorted((k for k in sums if k.startswith("step_exact.")), key=lambda k: int(k.split(".")[1]))
    step_exact = [sums.pop(k) for k in step_keys] or None
    halt_max_steps = len(step_keys) or head.model.config.halt_max_steps
    if not keep_rows:
        return SplitOutputs({}, sums, total, halt_max_steps, step_exact)
    rows = distributed.gather_batches({k: np.concatenate(v) for k, v in local.items()}, L)
    if rows is None:          # a rank other than 0
        return SplitOutputs({}, sums, total, halt_max_steps, step_exact)
    keep = _real_rows(real_sizes, G)
    return SplitOutputs({k: v[keep] for k, v in rows.items()}, sums, total, halt_max_steps, step_exact)


def split_size(data_path, split: str, sets: list[str]) -> int:
    """Examples in a split, read from the .npy headers."""
    from hrm.data.format import array_path
    from hrm.data.manifest import npy_header

    return sum(npy_header(array_path(data_path, split, s, "inputs"))[0][0] for s in sets)


def subset_rows(total: int, size: int, seed: int) -> np.ndarray:
    """`size` example indices of a split of `total`, sorted: the first `size` of a permutation seeded `seed`.

    NOTE: numpy's legacy RandomState, whose stream NumPy's compatibility policy freezes: the same (size, seed)
    picks the same rows on every machine and with every NumPy version (a Generator's stream may change).
    """
    if not 1 <= size <= total:
        raise ValueError(f"subset must be between 1 and the split's {total} examples, got {size}")
    return np.sort(np.random.RandomState(seed).permutation(total)[:size])


def rows_hash(rows: np.ndarray) -> str:
    """A short fingerprint of a subset: sha256 of its indices as little-endian int64, 16 hex digits."""
    import hashlib
    return hashlib.sha256(np.asarray(rows, dtype="<i8").tobytes()).hexdigest()[:16]


def subset_batches(dataset, rows: np.ndarray) -> Iterator:
    """The test batches (hrm.data TestBatch) of a test-mode PuzzleDataset holding only the examples `rows`
    (indices into the split, its sets in order), batched as the loader batches a whole split: in chunks of
    the global batch, each rank's slice padded to the local batch, no batch spanning two sets.

    NOTE: it reads the loader's arrays and pads with its collate (PuzzleDataset._lazy_load, _collate), so that
    a subset is batched exactly as the split is; the loader has no public way to pick rows.
    """
    from hrm.data.loader import TestBatch

    G, L, offset = dataset.global_batch_size, dataset.local_batch_size, 0
    for set_name, arrays in dataset._lazy_load().items():
        size = len(arrays["inputs"])
        mine = rows[(rows >= offset) & (rows < offset + size)] - offset
        offset += size
        for start in range(0, len(mine), G):
            chunk = mine[start:start + G]
            examples = chunk[dataset.rank * L:(dataset.rank + 1) * L]
            puzzles = np.searchsorted(arrays["puzzle_indices"], examples, side="right") - 1
            batch = dataset._collate(arrays["inputs"][examples], arrays["labels"][examples],
                                     arrays["puzzle_identifiers"][puzzles])
            yield TestBatch(set_name, batch, len(chunk), len(examples), int(examples[0]) if len(examples) else -1)


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
