"""`hrm eval backend=NAME`: the same evaluation with another backend than the PyTorch loss head.

The backends (numpy, onnx, iree, mlx, ...) and their ACT driver live in hrm.export; this adapts one
to the evaluation loop: a batch in, `BatchOutputs` out. The metrics are computed from the predictions
with the loss head's definitions (hrm.evaluation.metrics.sums_from_predictions); the losses, which need
the logits through the loss function, are not reported for other backends.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import torch

from hrm.evaluation.loop import BatchOutputs
from hrm.evaluation.metrics import sums_from_predictions


def backend_runner(name: str, head, arch, source: str, threads: int | None = None
                   ) -> Callable[[dict[str, torch.Tensor], bool], BatchOutputs]:
    """A runner for hrm.evaluation.loop.evaluate that drives backend `name` built from `head` (float32)."""
    from hrm.export.backends import build, unavailable

    reason = unavailable(name)
    if reason:
        raise ValueError(f"backend {name} cannot run here: {reason}")
    backend = build(name, head, arch, tempfile.mkdtemp(prefix="hrm-eval-backend-"), source=source, threads=threads)
    K = arch.halt_max_steps

    def run(batch: dict[str, torch.Tensor], save_steps: bool) -> BatchOutputs:
        inputs = batch["inputs"].cpu().numpy()
        labels = batch["labels"].cpu().numpy()
        result = backend.run(inputs, batch["puzzle_identifiers"].cpu().numpy(), False)
        predictions = result.predictions.astype(np.int32)
        rows = np.arange(len(predictions))
        if result.step_predictions is not None and result.step_q_halt is not None:
            says = result.step_q_halt > result.step_q_continue
            says[:, -1] = True
            first = says.argmax(1)
            q_halt_predictions = result.step_predictions[rows, first].astype(np.int32)
            q_halt_q = result.step_q_halt[rows, first]
        else:                       # a backend that keeps no per-step outputs: the last step everywhere
            first, q_halt_predictions, q_halt_q = np.full(len(rows), K - 1), predictions, result.q_halt
        out = BatchOutputs(
            predictions=torch.from_numpy(predictions), q_halt_logits=torch.from_numpy(result.q_halt.astype(np.float32)),
            q_continue_logits=torch.from_numpy(result.q_continue.astype(np.float32)),
            metrics=sums_from_predictions(predictions, labels, result.q_halt, result.steps),
            q_halt_step=torch.from_numpy((first + 1).astype(np.int32)),
            q_halt_predictions=torch.from_numpy(q_halt_predictions),
            q_halt_q_logits=torch.from_numpy(np.asarray(q_halt_q, dtype=np.float32)), steps_run=K)
        if save_steps:
            if result.step_predictions is None:
                raise ValueError(f"backend {name} keeps no per-step outputs; drop save_steps=true")
            out.step_predictions = torch.from_numpy(result.step_predictions.astype(np.int32))
            out.step_q_halt_logits = torch.from_numpy(result.step_q_halt.astype(np.float32))
            out.step_q_continue_logits = torch.from_numpy(result.step_q_continue.astype(np.float32))
        return out

    run.detail = backend.detail
    return run
