"""One HRM training step in MLX: the ACT wrapper, the loss head and the two optimisers (semantics §7-§9).

    Carry, initial_carry       the ACT carry: (z_H, z_L), steps, halted, current_data
    act_loss                   one call of the original's ACTLossHead in training mode: reset halted rows,
                               one segment, halting with exploration, the Q target from a second forward,
                               stablemax LM loss + 0.5·(Q-halt + Q-continue) BCE, and the metric sums
    AdamATan2                  the original kernel's update rule as an `mlx.optimizers.Optimizer`
    sparse_sign_sgd            the puzzle table's SignSGD over the batch's rows (duplicates summed)
    train_step                 all of it: gradients of loss / global batch size, then both updates

Gradients reach the parameters through the last L- and H-update only (HRMInner's stop_gradient) and the
puzzle table through the batch's rows, as the original's `local_weights` buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np

from hrm.halting import Q_HALT_GT_Q_CONTINUE, says_halt
from hrm.ports.mlx.model import HRMInner

IGNORE_LABEL_ID = -100


@dataclass
class Carry:
    z_H: mx.array
    z_L: mx.array
    steps: mx.array                     # (B,) int32
    halted: mx.array                    # (B,) bool: the row takes the next batch's row
    current_data: dict[str, mx.array]


def initial_carry(model: HRMInner, batch: dict[str, mx.array]) -> Carry:
    B = batch["inputs"].shape[0]
    shape = (B, model.puzzle_emb_len + model.arch.seq_len, model.arch.hidden_size)
    return Carry(mx.zeros(shape, model.H_init.dtype), mx.zeros(shape, model.H_init.dtype),
                 mx.zeros((B,), mx.int32), mx.ones((B,), mx.bool_),
                 {k: mx.zeros_like(v) for k, v in batch.items()})


def stablemax_cross_entropy(logits: mx.array, labels: mx.array) -> mx.array:
    """Per-token stablemax cross-entropy, 0 at ignored labels.

    NOTE: float32 (MLX's GPU has no float64). The original computes in float64 because in float32 the
    unused branch 1/(1 - x) of its `where` is infinite at x = 1 and turns the gradient into NaN; here
    that branch only ever sees min(x, 0), so float32 is safe.
    """
    x = logits.astype(mx.float32)
    s = mx.where(x < 0, 1 / (1 - mx.minimum(x, 0)), x + 1)
    logprobs = mx.log(s / s.sum(-1, keepdims=True))
    valid = labels != IGNORE_LABEL_ID
    picked = mx.take_along_axis(logprobs, mx.where(valid, labels, 0)[..., None].astype(mx.int32), axis=-1)[..., 0]
    return -mx.where(valid, picked, 0)


def bce_with_logits(x: mx.array, target: mx.array) -> mx.array:
    """Summed binary cross-entropy on logits, in the stable form max(x,0) - x·t + log(1 + e^-|x|)."""
    return (mx.maximum(x, 0) - x * target + mx.log1p(mx.exp(-mx.abs(x)))).sum()


def act_loss(model: HRMInner, puzzle_rows, carry: Carry, halt_exploration_prob: float,
             draws: tuple[mx.array, mx.array]):
    """Loss and outputs of one training call, from a carry whose halted rows were already reset.

    `draws` = (uniform (B,), integers in 2..halt_max_steps (B,)): the exploration draws (semantics §7.3).
    Returns (loss, (z_H, z_L, halted, steps, outputs dict, metrics dict)).
    """
    arch = model.arch
    data = carry.current_data
    z_H, z_L, logits, q_halt, q_continue = model(carry.z_H, carry.z_L, data["inputs"], puzzle_rows)

    # Halting (no gradient flows through decisions).
    steps = carry.steps + 1
    is_last = steps >= arch.halt_max_steps
    halted = is_last
    target_q_continue = None
    if arch.halt_max_steps > 1:
        halted = halted | says_halt(Q_HALT_GT_Q_CONTINUE, q_halt, q_continue)     # the MLX port is HRM's
        rand, randint = draws
        min_halt_steps = (rand < halt_exploration_prob).astype(mx.int32) * randint
        halted = halted & (steps >= min_halt_steps)
        rows = None if puzzle_rows is None else mx.stop_gradient(puzzle_rows)
        _, _, _, next_q_halt, next_q_continue = model(mx.stop_gradient(z_H), mx.stop_gradient(z_L), data["inputs"], rows)
        target_q_continue = mx.stop_gradient(mx.sigmoid(
            mx.where(is_last, next_q_halt, mx.maximum(next_q_halt, next_q_continue))))

    # The loss head (semantics §8.1): labels come from the carry's current data.
    labels = data["labels"]
    mask = labels != IGNORE_LABEL_ID
    counts = mask.sum(-1)
    divisor = mx.maximum(counts, 1)[:, None].astype(mx.float32)
    is_correct = mask & (mx.argmax(logits, axis=-1) == labels)
    seq_correct = is_correct.sum(-1) == counts
    lm_loss = (stablemax_cross_entropy(logits, labels) / divisor).sum()
    q_halt_loss = bce_with_logits(q_halt, seq_correct.astype(mx.float32))
    loss = lm_loss + 0.5 * q_halt_loss
    outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}
    metrics = {"lm_loss": lm_loss, "q_halt_loss": q_halt_loss}
    if target_q_continue is not None:
        q_continue_loss = bce_with_logits(q_continue, target_q_continue)
        loss = loss + 0.5 * q_continue_loss
        outputs["target_q_continue"] = target_q_continue
        metrics["q_continue_loss"] = q_continue_loss

    valid = halted & (counts > 0)
    metrics |= {
        "count": valid.sum(),
        "accuracy": mx.where(valid, (is_correct.astype(mx.float32) / divisor).sum(-1), 0).sum(),
        "exact_accuracy": (valid & seq_correct).sum(),
        "q_halt_accuracy": (valid & ((q_halt >= 0) == seq_correct)).sum(),
        "steps": mx.where(valid, steps, 0).sum(),
    }
    return loss, (z_H, z_L, halted, steps, outputs, metrics)


class AdamATan2(optim.Optimizer):
    """θ ← θ(1 − lr·wd); m, v lerped; θ ← θ − lr/(1 − β1ᵗ) · atan2(m, √v / √(1 − β2ᵗ)) (semantics §9.2)."""

    def __init__(self, learning_rate: float = 0.0, betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.0):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.betas = betas
        self.weight_decay = weight_decay

    def init_single(self, parameter: mx.array, state: dict) -> None:
        state["m"] = mx.zeros_like(parameter)
        state["v"] = mx.zeros_like(parameter)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict) -> mx.array:
        lr = self.learning_rate.astype(mx.float32)
        b1, b2 = self.betas
        t = self.step.astype(mx.float32)
        parameter = parameter * (1 - lr * self.weight_decay)
        m = state["m"] + (1 - b1) * (gradient - state["m"])
        v = state["v"] + (1 - b2) * (gradient * gradient - state["v"])
        state["m"], state["v"] = m, v
        update = mx.arctan2(m, mx.sqrt(v) / mx.sqrt(1 - b2 ** t))
        return (parameter - lr / (1 - b1 ** t) * update).astype(parameter.dtype)


def sparse_sign_sgd(table: mx.array, ids: np.ndarray, row_grads: mx.array, lr: float, weight_decay: float) -> mx.array:
    """w[u] ← w[u]·(1 − lr·wd) − lr·sign(Σ grads of id u), for the unique ids u of the batch only."""
    unique, inverse = np.unique(np.asarray(ids), return_inverse=True)
    summed = mx.zeros((len(unique), table.shape[1]), row_grads.dtype).at[mx.array(inverse.reshape(-1))].add(row_grads)
    rows = mx.array(unique)
    table[rows] = table[rows] * (1 - lr * weight_decay) - lr * mx.sign(summed)
    return table


def train_step(model: HRMInner, optimizer: AdamATan2, carry: Carry, batch: dict[str, mx.array], *,
               global_batch_size: int, halt_exploration_prob: float = 0.1, puzzle_emb_lr: float = 1e-2,
               puzzle_emb_weight_decay: float = 0.1, draws: tuple[mx.array, mx.array] | None = None,
               rng: np.random.Generator | None = None, update: bool = True):
    """One training call and, if `update`, one optimiser step of both optimisers.

    Returns (new carry, loss, outputs, metrics, grads); grads are those of loss / global_batch_size, with
    the puzzle rows' gradient under "puzzle_rows". Exploration draws come from `draws` or from `rng`.
    """
    if not isinstance(model, HRMInner):
        raise ValueError(f"MLX training serves hrm_act_v1 only, not {type(model).__name__} (MLX runs TRM for "
                         "inference; train it with hrm train)")
    arch = model.arch
    B = batch["inputs"].shape[0]
    # 1. Halted rows restart from H_init / L_init and take the new batch's row (semantics §7.2).
    z_H, z_L = model.reset_carry(carry.halted, carry.z_H, carry.z_L)
    data = {k: mx.where(carry.halted.reshape((-1,) + (1,) * (v.ndim - 1)), v, carry.current_data[k])
            for k, v in batch.items()}
    reset = Carry(z_H, z_L, mx.where(carry.halted, 0, carry.steps), carry.halted, data)
    if draws is None:
        rng = rng or np.random.default_rng()
        draws = (mx.array(rng.random(B, dtype=np.float32)),
                 mx.array(rng.integers(2, arch.halt_max_steps + 1, size=B, dtype=np.int32)))
    ids = data["puzzle_identifiers"]
    puzzle_rows = model.puzzle_emb.weight[ids] if arch.puzzle_emb_ndim > 0 else None

    def loss_fn(params, rows):
        model.update(params)
        loss, aux = act_loss(model, rows, reset, halt_exploration_prob, draws)
        return loss / global_batch_size, loss, aux

    (_, loss, (z_H, z_L, halted, steps, outputs, metrics)), (grads, row_grads) = mx.value_and_grad(
        loss_fn, argnums=(0, 1))(model.trainable_parameters(), puzzle_rows)
    grads = dict(grads)
    if row_grads is not None:
        grads["puzzle_rows"] = row_grads
    if update:
        optimizer.update(model, {k: v for k, v in grads.items() if k != "puzzle_rows"})
        if puzzle_rows is not None:
            model.puzzle_emb.weight = sparse_sign_sgd(model.puzzle_emb.weight, np.array(ids), row_grads,
                                                      puzzle_emb_lr, puzzle_emb_weight_decay)
        mx.eval(model.parameters(), optimizer.state)
    new_carry = Carry(mx.stop_gradient(z_H), mx.stop_gradient(z_L), steps, halted, data)
    return new_carry, loss, outputs, metrics, grads
