"""The host-side ACT loop, written once for every backend (spec §6, §8.6).

A backend supplies one ACT step of the inner model, NumPy arrays in and out:

    step(z_H, z_L, inputs, puzzle_identifiers) -> StepOutputs(z_H, z_L, logits, q_halt, q_continue)

    z_H, z_L             (B, T, D) float   the carry
    inputs               (B, S) int32      puzzle tokens
    puzzle_identifiers   (B,) int32
    logits               (B, S, V) float   q_halt, q_continue (B,) float32

and the initial carry: every position of a fresh row holds H_init / L_init (the model's `reset_carry`).
`run_act` then runs the evaluation protocol: a fresh carry and `halt_max_steps` steps on the same batch,
rows never reset mid-way, the answer being the argmax of the last step's logits. With
`halt_early=True` (inference) a row stops at the first step where q_halt > q_continue, as the model
does in training; the driver then steps only the rows still running.

NOTE: this file imports NumPy only, so the NumPy reference (hrm.ports.numpy) runs without torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np


class StepOutputs(NamedTuple):
    z_H: np.ndarray
    z_L: np.ndarray
    logits: np.ndarray
    q_halt: np.ndarray
    q_continue: np.ndarray


class StepFunction(Protocol):
    """One ACT step of some backend. `h_init` and `l_init` are the (D,) initial states."""

    name: str
    h_init: np.ndarray
    l_init: np.ndarray
    carry_positions: int        # T = puzzle-embedding positions + seq_len

    def __call__(self, z_H: np.ndarray, z_L: np.ndarray, inputs: np.ndarray,
                 puzzle_identifiers: np.ndarray) -> StepOutputs: ...


def initial_carry(step: StepFunction, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The carry of fresh rows: H_init / L_init broadcast over batch and positions."""
    shape = (batch_size, step.carry_positions, step.h_init.shape[-1])
    return (np.ascontiguousarray(np.broadcast_to(step.h_init, shape)),
            np.ascontiguousarray(np.broadcast_to(step.l_init, shape)))


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
            halt_early: bool = False, keep_step_predictions: bool = True) -> ACTResult:
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

    z_H, z_L = initial_carry(step, B)
    running = np.arange(B)                          # rows still stepping (all of them unless halt_early)
    steps = np.zeros(B, dtype=np.int32)
    logits = q_halt = q_continue = None
    step_q_halt = np.full((B, K), np.nan, dtype=np.float32)
    step_q_continue = np.full((B, K), np.nan, dtype=np.float32)
    step_predictions = np.full((B, K, S), -1, dtype=np.int64) if keep_step_predictions else None

    for k in range(K):
        all_rows = len(running) == B
        # NOTE: with every row running, pass the arrays themselves (no gather/scatter copies).
        out = step(z_H if all_rows else z_H[running], z_L if all_rows else z_L[running],
                   inputs if all_rows else inputs[running],
                   puzzle_identifiers if all_rows else puzzle_identifiers[running])
        if logits is None:
            logits = np.zeros((B,) + out.logits.shape[1:], dtype=out.logits.dtype)
            q_halt = np.zeros(B, dtype=np.float32)
            q_continue = np.zeros(B, dtype=np.float32)
        if all_rows:
            z_H, z_L = out.z_H, out.z_L
        else:
            z_H[running], z_L[running] = out.z_H, out.z_L
        logits[running] = out.logits
        q_halt[running], q_continue[running] = out.q_halt, out.q_continue
        steps[running] += 1
        step_q_halt[running, k], step_q_continue[running, k] = out.q_halt, out.q_continue
        if step_predictions is not None:
            step_predictions[running, k] = out.logits.argmax(-1)

        if halt_early:
            still = np.asarray(out.q_halt) <= np.asarray(out.q_continue)   # halting is q_halt > q_continue
            if not still.all():
                running = running[still]
                if all_rows:
                    # From now on rows are updated in place: own writable copies of the backend's arrays.
                    z_H, z_L = np.array(z_H), np.array(z_L)
            if len(running) == 0:
                break

    return ACTResult(predictions=logits.argmax(-1), logits=logits, q_halt=q_halt, q_continue=q_continue,
                     steps=steps, step_predictions=step_predictions, step_q_halt=step_q_halt,
                     step_q_continue=step_q_continue, seconds=time.perf_counter() - start)
