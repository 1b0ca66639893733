"""The host-side ACT loop, written once for every backend (semantics §11.1).

A backend supplies one ACT step of the inner model, NumPy arrays in and out:

    step(carry, inputs, puzzle_identifiers) -> StepOutputs(carry, logits, q_halt, q_continue)

    carry                {name: (B, T, D) float}   the tensors the inner model declares (HRM: z_H, z_L)
    inputs               (B, S) int32      puzzle tokens
    puzzle_identifiers   (B,) int32
    logits               (B, S, V) float   q_halt, q_continue (B,) float32

and `carry_init`, {name: (D,)}: every position of a fresh row holds these (the model's `reset_carry`).
`run_act` then runs the evaluation protocol: a fresh carry and `halt_max_steps` steps on the same batch,
rows never reset mid-way, the answer being the argmax of the last step's logits. On the way it records
the Q head's own decision under the model's halt rule (hrm.halting): the first step at which it says halt,
the prediction and q_halt there, so one run reports both "halt at halt_max_steps" (the original's eval
rule) and "halt where the Q head says so". With `halt_early=True` (inference) a row stops at that step,
as it does in training; the driver then steps only the rows still running.

This is the one ACT evaluation loop of hrm: `hrm eval` and the trainer's evaluation (through
hrm.evaluation.loop, with the PyTorch step), `hrm solve`, `hrm verify`, every export backend and the
NumPy port all run it. The browser's solver (viz/static/solver.js) is its JavaScript port.

A backend may keep the carry in its own arrays (the PyTorch step keeps it on the device): the driver
only indexes rows of it and, if the step defines `fresh_carry(batch_size)`, asks it for the fresh carry.

NOTE: this file imports NumPy only, so the NumPy reference (hrm.ports.numpy) runs without torch.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from hrm.halting import Q_HALT_GT_Q_CONTINUE, check_rule, says_halt

Carry = dict[str, np.ndarray]


class StepOutputs(NamedTuple):
    carry: Carry
    logits: np.ndarray
    q_halt: np.ndarray
    q_continue: np.ndarray
    residual: np.ndarray | None = None   # (B,) |change of the answer latent| in this step, where a step says


class StepFunction(Protocol):
    """One ACT step of some backend. `carry_init` maps each carry tensor's name to its (D,) initial state."""

    name: str
    carry_init: dict[str, np.ndarray]
    carry_positions: int        # T = puzzle-embedding positions + seq_len

    def __call__(self, carry: Carry, inputs: np.ndarray, puzzle_identifiers: np.ndarray) -> StepOutputs: ...


def initial_carry(step: StepFunction, batch_size: int) -> Carry:
    """The carry of fresh rows: each initial state broadcast over batch and positions."""
    if hasattr(step, "fresh_carry"):
        return step.fresh_carry(batch_size)
    return {name: np.ascontiguousarray(np.broadcast_to(init, (batch_size, step.carry_positions, init.shape[-1])))
            for name, init in step.carry_init.items()}


@dataclass
class ACTResult:
    """What an ACT run produced. Per-step arrays hold NaN (floats) or -1 (predictions) after a row halted."""

    predictions: np.ndarray          # (B, S) int64: argmax of each row's final logits
    logits: np.ndarray               # (B, S, V): logits of the step at which each row stopped
    q_halt: np.ndarray               # (B,) float32 at that step
    q_continue: np.ndarray           # (B,)
    steps: np.ndarray                # (B,) int32: steps each row ran
    q_halt_step: np.ndarray          # (B,) int32: first step the Q head says halt (halt rule), else the last
    q_halt_predictions: np.ndarray   # (B, S) int64: the prediction at q_halt_step
    q_halt_q: np.ndarray             # (B,) float32: q_halt at q_halt_step
    step_predictions: np.ndarray | None = None   # (B, K, S) int64, K = halt_max_steps
    step_q_halt: np.ndarray = field(default=None)        # (B, K) float32
    step_q_continue: np.ndarray = field(default=None)    # (B, K)
    residual: np.ndarray | None = None           # (B,) the answer latent's change in each row's last step
    step_residual: np.ndarray | None = None      # (B, K) that change at every step (NaN after a row halted)
    sample_predictions: np.ndarray | None = None  # (B, N, S): every trajectory's answer (breadth), if several
    seconds: float = 0.0             # wall time of the loop (backend steps and host work)
    step_seconds: np.ndarray | None = None       # (K,) wall time from the start to the end of each step

    def take(self, rows: np.ndarray) -> ACTResult:
        """The result of these rows only (every per-row field indexed; the times kept)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return ACTResult(**{k: v if v is None or k in TIMES else v[rows] for k, v in values.items()})

    @classmethod
    def from_steps(cls, logits, q_halt, q_continue, steps, step_predictions, step_q_halt, step_q_continue,
                   halt_rule: str, seconds: float = 0.0) -> ACTResult:
        """The result of a loop run elsewhere (the whole-puzzle graph), the Q head's decision derived from its
        per-step arrays by the same rule as run_act's."""
        B, K = step_q_halt.shape
        says = says_halt(halt_rule, step_q_halt, step_q_continue) & (np.arange(K) < steps[:, None])
        says[np.arange(B), steps - 1] = True                # a row that never says halt: its last step
        first = says.argmax(1)
        return cls(predictions=logits.argmax(-1), logits=logits, q_halt=q_halt, q_continue=q_continue, steps=steps,
                   q_halt_step=(first + 1).astype(np.int32),
                   q_halt_predictions=step_predictions[np.arange(B), first],
                   q_halt_q=step_q_halt[np.arange(B), first].astype(np.float32), step_predictions=step_predictions,
                   step_q_halt=step_q_halt, step_q_continue=step_q_continue, seconds=seconds)

    @classmethod
    def concatenate(cls, parts: list[ACTResult]) -> ACTResult:
        """The results of consecutive batches as one (the times summed)."""
        def cat(name):
            values = [getattr(p, name) for p in parts]
            if any(v is None for v in values):
                return None
            return sum(values) if name in TIMES else np.concatenate(values)
        return cls(**{f.name: cat(f.name) for f in dataclasses.fields(cls)})


TIMES = ("seconds", "step_seconds")     # ACTResult's fields that time the whole batch, not one row


def _own(value):
    """A writable copy of a carry tensor (NumPy array, or a backend's own tensor type)."""
    return value.clone() if hasattr(value, "clone") else np.array(value)


def run_act(step: StepFunction, inputs: np.ndarray, puzzle_identifiers: np.ndarray, halt_max_steps: int,
            halt_early: bool = False, keep_step_predictions: bool = True,
            halt_rule: str = Q_HALT_GT_Q_CONTINUE) -> ACTResult:
    """Run the ACT loop on one batch with `step`; see the module docstring for the protocol."""
    check_rule(halt_rule)
    inputs = np.ascontiguousarray(inputs, dtype=np.int32)
    puzzle_identifiers = np.ascontiguousarray(puzzle_identifiers, dtype=np.int32)
    if inputs.ndim != 2 or puzzle_identifiers.shape != (inputs.shape[0],):
        raise ValueError(f"inputs must be (B, S) and puzzle_identifiers (B,); got {inputs.shape} and "
                         f"{puzzle_identifiers.shape}")
    if halt_max_steps < 1:
        raise ValueError(f"halt_max_steps must be >= 1, got {halt_max_steps}")
    B, S = inputs.shape
    K = halt_max_steps
    start = time.perf_counter()

    carry = initial_carry(step, B)
    running = np.arange(B)                          # rows still stepping (all of them unless halt_early)
    steps = np.zeros(B, dtype=np.int32)
    logits = q_halt = q_continue = None
    q_said_halt = np.zeros(B, dtype=bool)           # the Q head has said halt at some step
    q_halt_step = np.full(B, K, dtype=np.int32)
    q_halt_predictions = np.zeros((B, S), dtype=np.int64)
    q_halt_q = np.zeros(B, dtype=np.float32)
    step_q_halt = np.full((B, K), np.nan, dtype=np.float32)
    step_q_continue = np.full((B, K), np.nan, dtype=np.float32)
    step_predictions = np.full((B, K, S), -1, dtype=np.int64) if keep_step_predictions else None
    residual = step_residual = None
    step_seconds = np.full(K, np.nan)

    for k in range(K):
        all_rows = len(running) == B
        # NOTE: with every row running, pass the arrays themselves (no gather/scatter copies).
        out = step(carry if all_rows else {name: value[running] for name, value in carry.items()},
                   inputs if all_rows else inputs[running],
                   puzzle_identifiers if all_rows else puzzle_identifiers[running])
        if logits is None:
            logits = np.zeros((B,) + out.logits.shape[1:], dtype=out.logits.dtype)
            q_halt = np.zeros(B, dtype=np.float32)
            q_continue = np.zeros(B, dtype=np.float32)
        if all_rows:
            carry = dict(out.carry)
        else:
            for name, value in out.carry.items():
                carry[name][running] = value
        predictions = out.logits.argmax(-1)
        logits[running] = out.logits
        q_halt[running], q_continue[running] = out.q_halt, out.q_continue
        steps[running] += 1
        step_q_halt[running, k], step_q_continue[running, k] = out.q_halt, out.q_continue
        if step_predictions is not None:
            step_predictions[running, k] = predictions
        if out.residual is not None:
            if residual is None:
                residual = np.full(B, np.nan, dtype=np.float32)
                step_residual = np.full((B, K), np.nan, dtype=np.float32)
            residual[running] = step_residual[running, k] = out.residual

        # The Q head's decision, frozen at the first step it says halt; rows that never do, at the last step.
        says = says_halt(halt_rule, np.asarray(out.q_halt), np.asarray(out.q_continue)) | (k + 1 >= K)
        newly = says & ~q_said_halt[running]
        rows = running[newly]
        q_halt_step[rows] = k + 1
        q_halt_predictions[rows] = predictions[newly]
        q_halt_q[rows] = np.asarray(out.q_halt)[newly]
        q_said_halt[rows] = True
        step_seconds[k] = time.perf_counter() - start

        if halt_early:
            still = ~says
            if not still.all():
                running = running[still]
                if all_rows:
                    # From now on rows are updated in place: own writable copies of the backend's arrays.
                    carry = {name: _own(value) for name, value in carry.items()}
            if len(running) == 0:
                break

    return ACTResult(predictions=logits.argmax(-1), logits=logits, q_halt=q_halt, q_continue=q_continue,
                     steps=steps, q_halt_step=q_halt_step, q_halt_predictions=q_halt_predictions, q_halt_q=q_halt_q,
                     step_predictions=step_predictions, step_q_halt=step_q_halt,
                     step_q_continue=step_q_continue, residual=residual, step_residual=step_residual,
                     seconds=time.perf_counter() - start, step_seconds=step_seconds)
