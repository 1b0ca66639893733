"""One device policy for the whole package: which device, which forward dtype, whether to compile, and why.

Order: an explicit choice (config or argument), then the `HRM_DEVICE` environment variable, then
CUDA, MPS, CPU. The forward dtype: an explicit choice, then `HRM_DTYPE`, then (for a checkpoint) the dtype
it was trained in where the device runs it natively, then the device's default: bfloat16 on CUDA; on CPU
bfloat16 only where the processor has native bf16 matrix instructions (AMX or AVX-512 BF16), float32
elsewhere; float32 on MPS.
Nothing here calls `.cuda()`: callers move tensors with `.to(choice.device)`.
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


class DeviceError(ValueError, RuntimeError):
    """A device or dtype that torch or this machine cannot give; the message names it, where it came from and
    what to choose instead. (A RuntimeError too, as these errors were before.)"""


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype
    reason: str

    def describe(self) -> str:
        return f"device={self.device} dtype={str(self.dtype).removeprefix('torch.')} ({self.reason})"


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AMX-BF16 or AVX512-BF16), read from /proc/cpuinfo.

    Falls back to torch's oneDNN capability check on platforms without /proc/cpuinfo.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        return "amx_bf16" in flags or "avx512_bf16" in flags
    except OSError:
        pass
    check = getattr(torch.backends.mkldnn, "is_bf16_supported", None)
    return bool(check and check())


def parse_dtype(name: str, source: str = "") -> torch.dtype:
    if name not in DTYPES:
        where = f"{source}: " if source else ""
        raise DeviceError(f"{where}unknown dtype {name!r}; choose one of {', '.join(DTYPES)} or 'auto'")
    return DTYPES[name]


def pick_device(requested: str | None = None) -> tuple[torch.device, str]:
    """The device to run on, and why it was chosen."""
    if requested and requested != "auto":
        return _checked(requested, "device"), f"{requested} requested"
    env = os.environ.get("HRM_DEVICE")
    if env:
        return _checked(env, "HRM_DEVICE"), "HRM_DEVICE"
    if torch.cuda.is_available():
        return torch.device("cuda"), "CUDA is available"
    if torch.backends.mps.is_available():
        return torch.device("mps"), "Apple MPS is available"
    return torch.device("cpu"), "no CUDA or MPS device"


def _checked(name: str, source: str) -> torch.device:
    """`name` as a device this machine has, or a DeviceError naming `source` (the key or variable it came from)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"{source}={name}: unknown device; choose auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{source}={name}: this device is not supported; choose auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{source}={name}: CUDA is not available in this torch build or on this machine "
                              "(device=cpu or device=auto runs without it)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{source}={name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{source}={name}: Apple MPS is not available (device=cpu or device=auto runs without it)")
    return device


def runs_natively(device: torch.device, dtype: torch.dtype) -> bool:
    """False where `dtype` would be emulated at a fraction of float32's speed: half types on a CPU without
    native bf16 matrix instructions (float16 on any CPU)."""
    if device.type != "cpu":
        return True
    if dtype == torch.bfloat16:
        return cpu_has_native_bf16()
    return dtype != torch.float16


def pick_dtype(device: torch.device, requested: str | None = None, trained: str | None = None) -> tuple[torch.dtype, str]:
    """The forward dtype for `device`, and why. `trained`: the dtype a checkpoint was trained in."""
    if requested and requested != "auto":
        return parse_dtype(requested, "dtype"), f"{requested} requested"
    env = os.environ.get("HRM_DTYPE")
    if env:
        return parse_dtype(env, "HRM_DTYPE"), "HRM_DTYPE"
    if trained and trained in DTYPES:
        if runs_natively(device, DTYPES[trained]):
            return DTYPES[trained], f"the checkpoint's training dtype {trained}"
        default, why = pick_dtype(device)
        return default, f"trained in {trained}, which this {device.type} does not run natively ({why})"
    if device.type == "cuda":
        return torch.bfloat16, "bfloat16 on CUDA, as the released runs"
    if device.type == "mps":
        return torch.float32, "float32 on MPS"
    if cpu_has_native_bf16():
        return torch.bfloat16, "CPU has native bf16 matrix instructions"
    return torch.float32, "CPU without native bf16 matmul"


def choose(device: str | None = None, dtype: str | None = None, trained: str | None = None) -> DeviceChoice:
    """Device and dtype; `trained` is the dtype a checkpoint was trained in (evaluation's default)."""
    dev, dev_reason = pick_device(device)
    dt, dt_reason = pick_dtype(dev, dtype, trained)
    return DeviceChoice(dev, dt, f"{dev_reason}; {dt_reason}")


AUTOCAST = ("none", "auto", "bfloat16", "float16")


def pick_autocast(device: torch.device, forward_dtype: torch.dtype, requested: str = "none") -> tuple[torch.dtype | None, str]:
    """The dtype of the matmuls under `torch.autocast` in training (None: no autocast), and why.

    Mixed precision: the forward dtype (the carry, the residual stream, the norms, the loss) stays float32 and
    only the matrix products and attention run in the half type. "auto" takes bfloat16 where the device runs
    it natively (CUDA, MPS, a CPU with AMX or AVX-512 BF16) and nothing elsewhere."""
    if requested not in AUTOCAST:
        raise DeviceError(f"autocast: unknown value {requested!r}; choose one of {', '.join(AUTOCAST)}")
    if requested == "none":
        return None, "no autocast"
    if forward_dtype != torch.float32:
        if requested == "auto":
            return None, f"no autocast (the forward dtype is already {str(forward_dtype).removeprefix('torch.')})"
        raise DeviceError(f"autocast={requested} needs dtype=float32 (the state it keeps in float32), got "
                          f"{str(forward_dtype).removeprefix('torch.')}")
    if requested == "auto":
        if not runs_natively(device, torch.bfloat16):
            return None, "no autocast (no native bf16 matmul on this CPU)"
        requested = "bfloat16"
    return DTYPES[requested], f"{requested} matmuls under autocast"


def compile_enabled(requested: bool | None, device: torch.device) -> bool:
    """`compile=true|false`; unset, torch.compile runs on CUDA only. On a CPU it pays off too (27M: 1.5x in
    evaluation, 1.7x in training) but first costs tens of seconds of compilation, so it is asked for."""
    return requested if requested is not None else device.type == "cuda"


def warn_compile_failed(error: Exception, where: str = "") -> None:
    """The warning for a torch.compile failure, after which the caller runs the eager model."""
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    warnings.warn(f"torch.compile failed{where} ({type(error).__name__}: {first_line}); continuing in eager mode "
                  "(compile=false skips compilation)", RuntimeWarning, stacklevel=3)
