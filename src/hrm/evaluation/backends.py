"""`hrm eval backend=NAME`: the same evaluation with another backend than PyTorch.

The backends (numpy, onnx, iree, mlx, ...) live in hrm.export and run the one ACT driver
(hrm.act_driver.run_act); this makes one a runner of hrm.evaluation.loop.evaluate: a batch in, the
driver's `ACTResult` out. The split loop and the metrics (the loss head's definitions, from the final
logits) are then the same as for the PyTorch step.
"""
from __future__ import annotations

import tempfile

import torch

from hrm.evaluation.loop import Runner
from hrm.act_driver import ACTResult


def backend_runner(name: str, head, arch, source: str, threads: int | None = None) -> Runner:
    """A runner for hrm.evaluation.loop.evaluate that drives backend `name` built from `head` (float32)."""
    from hrm.export.backends import build, unavailable, unsupported

    reason = unavailable(name) or unsupported(name, arch.name)
    if reason:
        raise ValueError(f"backend {name} cannot run here: {reason}")
    backend = build(name, head, arch, tempfile.mkdtemp(prefix="hrm-eval-backend-"), source=source, threads=threads)

    def run(batch: dict[str, torch.Tensor], save_steps: bool) -> ACTResult:
        result = backend.run(batch["inputs"].cpu().numpy(), batch["puzzle_identifiers"].cpu().numpy(), False)
        if save_steps and result.step_predictions is None:
            raise ValueError(f"backend {name} keeps no per-step outputs; drop save_steps=true")
        return result

    run.detail = backend.detail
    return run
