"""Every backend built from one checkpoint, behind one interface.

    Backend.run(inputs, puzzle_identifiers, halt_early) -> ACTResult

    torch        the PyTorch model (float32 here: the reference of the parity checks)
    numpy        hrm.ports.numpy in float32;  numpy64: the same in float64
    onnx         the one-step ONNX graph in onnxruntime, driven by hrm.act_driver
    onnx-whole   the whole-puzzle ONNX graph (the loop inside the graph) in onnxruntime
    iree         the one-step graph through torch-mlir (linalg-on-tensors), compiled by IREE for this CPU
    iree-torch   the same from the torch dialect
    mlx          hrm.ports.mlx (on Linux, mlx[cpu])

A backend whose packages are missing is reported with the reason (`unavailable`), never faked; so is one
that does not serve the checkpoint's architecture (`unsupported`: the MLX port is HRM's only).
`load_step(name, checkpoint)` is the entry point for other commands (e.g. `hrm eval backend=mlx`).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hrm.act_driver import ACTResult, StepFunction, run_act
from hrm.ports import unsupported

ALL = ("torch", "numpy", "numpy64", "onnx", "onnx-whole", "iree", "iree-torch", "mlx")
REQUIRES = {
    "onnx": (("onnx", "onnxscript", "onnxruntime"), "pip install 'hrm[ports]' (onnx, onnxscript, onnxruntime)"),
    "onnx-whole": (("onnx", "onnxscript", "onnxruntime"), "pip install 'hrm[ports]' (onnx, onnxscript, onnxruntime)"),
    "iree": (("torch_mlir", "iree.compiler", "iree.runtime"), "pip install 'hrm[ports]' (torch-mlir, iree-base-compiler, iree-base-runtime)"),
    "iree-torch": (("torch_mlir", "iree.compiler", "iree.runtime"), "pip install 'hrm[ports]' (torch-mlir, iree-base-compiler, iree-base-runtime)"),
    "mlx": (("mlx.core",), "pip install 'mlx[cpu]' on Linux, 'mlx' on macOS"),
}


def unavailable(name: str) -> str | None:
    """Why backend `name` cannot run here, or None if it can."""
    if name not in ALL:
        return f"unknown backend {name!r}; choose from {', '.join(ALL)}"
    modules, hint = REQUIRES.get(name, ((), ""))
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"module {module} is not installed ({hint})"
    if name == "mlx":
        try:
            import mlx.core as mx
            mx.eval(mx.zeros(1) + 1)
        except Exception as e:   # e.g. the `mlx` wheel without its cpu/metal backend
            return f"mlx is installed but cannot run: {e}"
    return None


@dataclass
class Backend:
    name: str
    run: Callable[[np.ndarray, np.ndarray, bool], ACTResult]
    detail: str = ""


def _stepped(name: str, step: StepFunction, config, detail: str) -> Backend:
    """A backend that drives `step` with the one ACT driver, under the architecture's steps and halt rule."""
    def run(inputs, puzzle_identifiers, halt_early=False):
        return run_act(step, inputs, puzzle_identifiers, config.halt_max_steps, halt_early=halt_early,
                       halt_rule=config.halting_policy.rule)
    return Backend(name, run, detail)


def build(name: str, head, config, workdir: str | Path, source: str | None = None,
          threads: int | None = None) -> Backend:
    """Backend `name` for a loaded model (`head` from hrm.models.checkpoint.load_checkpoint).

    Exports land in `workdir`. `threads` caps the backend's CPU threads (None: its default).
    """
    import torch

    workdir = Path(workdir)
    inner = head.model.inner
    reason = unavailable(name) or unsupported(name, config.name)
    if reason:
        raise RuntimeError(f"backend {name} is unavailable: {reason}")
    if name == "torch":
        from hrm.export.torch_step import TorchStep
        if threads:
            torch.set_num_threads(threads)
        return _stepped(name, TorchStep(inner), config, f"torch {torch.__version__}, {inner.forward_dtype}".replace("torch.", ""))
    if name in ("numpy", "numpy64"):
        from dataclasses import asdict

        from hrm.ports.numpy import numpy_model
        weights = {k: v.detach().float().cpu().numpy() for k, v in head.state_dict().items()}
        dtype = np.float64 if name == "numpy64" else np.float32
        return _stepped(name, numpy_model(asdict(config), weights, dtype), config,
                        f"numpy {np.__version__}, {np.dtype(dtype).name}")
    if name in ("onnx", "onnx-whole"):
        import onnxruntime

        from hrm.export.onnx_export import OnnxStep, OnnxWholePuzzle, export_onnx
        kind = "step" if name == "onnx" else "whole_puzzle"
        path = export_onnx(inner, workdir / f"{kind}.onnx", kind=kind, source=source)
        detail = f"onnxruntime {onnxruntime.__version__}, opset 18"
        if name == "onnx":
            return _stepped(name, OnnxStep(path, threads), config, detail)
        whole = OnnxWholePuzzle(path, threads)
        return Backend(name, whole.run, detail + ", loop in the graph")
    if name in ("iree", "iree-torch"):
        from hrm.export.mlir_export import IreeStep, compile_iree, export_mlir
        dialect = "linalg-on-tensors" if name == "iree" else "torch"
        mlir = export_mlir(inner, workdir / f"step.{dialect}.mlirbc", dialect=dialect, source=source)
        vmfb = compile_iree(mlir)
        return _stepped(name, IreeStep(vmfb, threads), config, f"torch-mlir {dialect} -> IREE llvm-cpu")
    if name == "mlx":
        import mlx.core as mx

        from hrm.ports.mlx.convert import build as build_mlx
        from hrm.ports.mlx.model import MlxStep
        from dataclasses import asdict
        state = {k: v.detach().float().cpu().numpy() for k, v in head.state_dict().items()}
        model = build_mlx(asdict(config), state, source or "checkpoint")
        return _stepped(name, MlxStep(model), config, f"mlx {mx.__version__}, {mx.default_device()}")
    raise ValueError(f"unknown backend {name!r}")


def load_step(name: str, checkpoint: str | Path, workdir: str | Path | None = None,
              threads: int | None = None) -> tuple[Backend, object]:
    """Backend `name` for the checkpoint at `checkpoint` (hrm's format or the original's): (backend, arch config).

    MLX reads the checkpoint directly (no torch model is kept). Exports go to `workdir` (a temporary
    directory when None).
    """
    import tempfile

    from hrm.runs import open_run
    if name == "mlx" and not unavailable("mlx"):
        from hrm.ports.mlx.convert import load_mlx_model
        from hrm.ports.mlx.model import MlxStep
        from hrm.models.checkpoint import arch_from_dict
        model, arch = load_mlx_model(checkpoint)
        import mlx.core as mx
        config = arch_from_dict(arch)
        return _stepped(name, MlxStep(model), config, f"mlx {mx.__version__}"), config
    run = open_run(checkpoint, device="cpu", dtype="float32")
    head, config = run.head, run.arch
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hrm-backend-"))
    return build(name, head, config, workdir, source=str(checkpoint), threads=threads), config
