"""`hrm doctor`: what this machine can run, which optional packages are there, and what each one enables.

Nothing is downloaded and nothing is imported that is not needed: packages are found with
importlib.util.find_spec and their versions read from the installed metadata.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass


@dataclass
class Optional_:
    name: str                 # what users call it
    modules: tuple[str, ...]  # import names, any of which counts
    distributions: tuple[str, ...]
    enables: str
    advice: str               # how to get it, when missing


OPTIONALS = [
    Optional_("flash-attn", ("flash_attn_interface", "flash_attn"), ("flash-attn", "flash_attn_3", "flash-attn-3"),
              "FlashAttention kernels for bf16/fp16 attention on CUDA (the original's attention)",
              "pip install flash-attn --no-build-isolation (CUDA only); without it attention uses PyTorch SDPA, "
              "which is numerically equivalent"),
    Optional_("mlx", ("mlx",), ("mlx",), "the MLX port (hrm.ports.mlx) on Apple silicon",
              "pip install mlx (macOS on Apple silicon)"),
    Optional_("onnxruntime", ("onnxruntime",), ("onnxruntime", "onnxruntime-gpu"),
              "running and verifying ONNX exports (hrm export onnx, hrm verify)", "pip install onnx onnxruntime"),
    Optional_("torch-mlir", ("torch_mlir",), ("torch-mlir",), "MLIR export of the model (hrm export mlir)",
              "pip install torch-mlir (wheels exist for some platforms only)"),
    Optional_("IREE", ("iree.compiler", "iree.runtime"), ("iree-base-compiler", "iree-base-runtime",
                                                          "iree-compiler", "iree-runtime"),
              "compiling and running MLIR exports with IREE (hrm verify)", "pip install iree-base-compiler iree-base-runtime"),
    Optional_("tensorboard", ("tensorboard",), ("tensorboard",), "logger=tensorboard in hrm train",
              "pip install 'hrm[tensorboard]'"),
    Optional_("wandb", ("wandb",), ("wandb",), "logger=wandb in hrm train (offline by default)", "pip install 'hrm[wandb]'"),
    Optional_("numba", ("numba",), ("numba",), "fast dataset building (the Sudoku solver)", "pip install 'hrm[data]'"),
]


def _find(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(distributions: tuple[str, ...]) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def report() -> dict:
    """Everything `hrm doctor` prints, as data."""
    import torch

    from hrm.device import choose, cpu_has_native_bf16

    out: dict = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__}
    try:
        choice = choose()
        out["device"] = {"device": str(choice.device), "dtype": str(choice.dtype).removeprefix("torch."),
                         "reason": choice.reason}
    except RuntimeError as e:                 # e.g. HRM_DEVICE names a missing device
        out["device"] = {"error": str(e)}
    out["cpu"] = {"threads": torch.get_num_threads(), "cores": os.cpu_count(), "native_bf16": cpu_has_native_bf16(),
                  "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    cuda = {"available": torch.cuda.is_available(), "built_with": torch.version.cuda}
    if cuda["available"]:
        cuda["devices"] = [{"name": torch.cuda.get_device_name(i),
                            "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
                            "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
                           for i in range(torch.cuda.device_count())]
        cuda["bf16"] = torch.cuda.is_bf16_supported()
        cuda["nccl"] = torch.distributed.is_nccl_available()
    out["cuda"] = cuda
    out["mps"] = {"available": torch.backends.mps.is_available(), "built": torch.backends.mps.is_built()}
    out["distributed"] = {"available": torch.distributed.is_available(),
                          "gloo": torch.distributed.is_available() and torch.distributed.is_gloo_available()}
    compiler = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++") or shutil.which("clang++")
    out["torch_compile"] = {"cpu_cxx_compiler": compiler, "triton": _find("triton")}
    out["optional"] = []
    for opt in OPTIONALS:
        found = any(_find(m) for m in opt.modules)
        out["optional"].append({**asdict(opt), "installed": found, "version": _version(opt.distributions) if found else None})
    return out


def format_report(r: dict) -> str:
    lines = [f"python {r['python']} on {r['platform']}", f"torch {r['torch']}"]
    d = r["device"]
    lines.append(f"device: {d['error']}" if "error" in d else f"device: {d['device']} {d['dtype']} ({d['reason']})")
    c = r["cpu"]
    lines.append(f"cpu: {c['cores']} cores, torch uses {c['threads']} threads, native bf16 matmul: "
                 f"{'yes' if c['native_bf16'] else 'no (float32 is the fast dtype here)'}")
    cuda = r["cuda"]
    if cuda["available"]:
        for i, dev in enumerate(cuda["devices"]):
            lines.append(f"cuda:{i}: {dev['name']}, compute {dev['capability']}, {dev['memory_gib']} GiB")
        lines.append(f"  bf16: {'yes' if cuda['bf16'] else 'no'}; nccl: {'yes' if cuda['nccl'] else 'no'}")
    else:
        built = f"torch built with CUDA {cuda['built_with']}" if cuda["built_with"] else "CPU-only torch build"
        lines.append(f"cuda: not available ({built})")
    lines.append(f"mps: {'available' if r['mps']['available'] else 'not available'}")
    lines.append(f"multi-process training: {'gloo' if r['distributed']['gloo'] else 'no gloo'}"
                 f"{' + nccl' if cuda.get('nccl') else ''} (torchrun --nproc-per-node N -m hrm.cli train ...)")
    tc = r["torch_compile"]
    lines.append("torch.compile: on by default on CUDA" + ("" if tc["triton"] or not cuda["available"] else
                 " (triton is missing: compilation will fall back to eager)"))
    if not tc["cpu_cxx_compiler"]:
        lines.append("  no C++ compiler: compile=true on the CPU falls back to eager (install g++ or clang++)")
    elif not cuda["available"]:
        # NOTE: a figure measured on the project's machine, not this one, and labelled so; `hrm bench train
        # --preset 27m --dtype bfloat16 --compile true|false` measures it here.
        lines.append("  on the CPU, compile=true pays for its compilation in runs longer than a few minutes "
                     "(27M in bf16: 2.00 -> 1.21 s/step on the project's 2-core Xeon with AMX, benchmarks/"
                     "RESULTS.md, not measured on this machine; hrm bench train --preset 27m --compile true "
                     "measures it here)")
    lines.append("")
    lines.append("optional packages:")
    width = max(len(o["name"]) for o in r["optional"])
    for o in r["optional"]:
        state = f"{o['version'] or 'installed'}" if o["installed"] else "missing"
        lines.append(f"  {o['name']:<{width}}  {state:<10}  {o['enables']}")
        if not o["installed"]:
            lines.append(f"  {'':<{width}}  {'':<10}  -> {o['advice']}")
    return "\n".join(lines)
