"""The host-side ACT loop, written once for every backend (docs: the ACT loop in evaluation).

A backend supplies one ACT step of the inner model, NumPy arrays in and out:

    step(carry, inputs, puzzle_identifiers) -> StepOutputs(carry, logits, q_halt, q_continue)

    carry                {name: (B, T, D) float}   the tensors the inner model declares (HRM: z_H, z_L)
    inputs               (B, S) int32      puzzle tokens
    puzzle_identifiers   (B,) int32
    logits               (B, S, V) float   q_halt, q_continue (B,) float32

and `carry_init`, {name: (D,)}: every position of a fresh row holds these (the model's `reset_carry`).
`run_act` then runs the evaluation protocol: a fresh carry and `halt_max_steps` steps on the same batch,
rows never reset mid-way, the answer being the argmax of the last step's logits. With
`halt_early=True` (inference) a row stops at the first step where the Q head says halt under the
model's halt rule (hrm.halting), as it does in training; the driver then steps only the rows still running.

NOTE: this file imports NumPy only, so the NumPy reference (hrm.ports.numpy) runs without torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from hrm.halting import Q_HALT_GT_Q_CONTINUE, says_halt

Carry = dict[str, np.ndarray]


class StepOutputs(NamedTuple):
    carry: Carry
    logits: np.ndarray
    q_halt: np.ndarray
    q_continue: np.ndarray


class StepFunction(Protocol):
    """One ACT step of some backend. `carry_init` maps each carry tensor's name to its (D,) initial state."""

    name: str
    carry_init: dict[str, np.ndarray]
    carry_positions: int        # T = puzzle-embedding positions + seq_len

    def __call__(self, carry: Carry, inputs: np.ndarray, puzzle_identifiers: np.ndarray) -> StepOutputs: ...


def initial_carry(step: StepFunction, batch_size: int) -> Carry:
    """The carry of fresh rows: each initial state broadcast over batch and positions."""
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
    step_predictions: np.ndarray | None = None   # (B, K, S) int64, K = halt_max_steps
    step_q_halt: np.ndarray = field(default=None)        # (B, K) float32
    step_q_continue: np.ndarray = field(default=None)    # (B, K)
    seconds: float = 0.0             # wall time of the loop (backend steps and host work)


def run_act(step: StepFunction, inputs: np.ndarray, puzzle_identifiers: np.ndarray, halt_max_steps: int,
            halt_early: bool = False, keep_step_predictions: bool = True,
            halt_rule: str = Q_HALT_GT_Q_CONTINUE) -> ACTResult:
    """Run the ACT loop on one batch with `step`; see the module docstring for the protocol."""
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
    step_q_halt = np.full((B, K), np.nan, dtype=np.float32)
    step_q_continue = np.full((B, K), np.nan, dtype=np.float32)
    step_predictions = np.full((B, K, S), -1, dtype=np.int64) if keep_step_predictions else None

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
        logits[running] = out.logits
        q_halt[running], q_continue[running] = out.q_halt, out.q_continue
        steps[running] += 1
        step_q_halt[running, k], step_q_continue[running, k] = out.q_halt, out.q_continue
        if step_predictions is not None:
            step_predictions[running, k] = out.logits.argmax(-1)

        if halt_early:
            still = ~says_halt(halt_rule, np.asarray(out.q_halt), np.asarray(out.q_continue))
            if not still.all():
                running = running[still]
                if all_rows:
                    # From now on rows are updated in place: own writable copies of the backend's arrays.
                    carry = {name: np.array(value) for name, value in carry.items()}
            if len(running) == 0:
                break

    return ACTResult(predictions=logits.argmax(-1), logits=logits, q_halt=q_halt, q_continue=q_continue,
                     steps=steps, step_predictions=step_predictions, step_q_halt=step_q_halt,
                     step_q_continue=step_q_continue, seconds=time.perf_counter() - start)
