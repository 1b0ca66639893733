"""HRM ACT v1 inference in plain NumPy: the minimal-dependency definition of the model (semantics §5, §6).

It reads top to bottom as the spec does, and is the judge of the other backends:

    PuzzleArch, Arch      the hyper-parameters the forward pass needs (read from config.json, no torch)
    rms_norm, rope, attention, swiglu, block, reasoning_module     the layers (semantics §5.1-§5.6)
    NumpyInner            what every architecture shares: weights, input embeddings, heads
    NumpyHRM.__call__     one ACT segment of HRM (semantics §6)
    evaluate              the eval ACT loop (hrm.act_driver)
The transformer baseline's port (hrm.ports.numpy.transformer) builds on the same layers.

Computes in float32 or float64 throughout. The float32 path follows the PyTorch model's numerics
(RoPE tables and the Q head in float32) except that the two reductions, RMSNorm's mean and softmax's
sum, accumulate in float64: NumPy sums float32 less accurately than torch's CPU kernels, and over the
recurrence's 24 block applications that alone reached 1.2e-5 relative on a fixture batch (3e-6 with
the float64 accumulation). The float64 path is a more exact reference.
Weights are a dict of arrays under the original's state-dict names (`model.inner.…`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hrm.act_driver import ACTResult, StepOutputs, run_act
from hrm.halting import Q_HALT_GT_Q_CONTINUE

PREFIX = "model.inner."


@dataclass(frozen=True)
class PuzzleArch:
    """The fields every architecture's forward pass reads (hrm.models.inner.PuzzleInner's)."""
    seq_len: int
    vocab_size: int
    hidden_size: int
    num_heads: int
    expansion: float
    puzzle_emb_ndim: int
    pos_encodings: str = "rope"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    halt_max_steps: int = 16

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PuzzleArch":
        """From an `arch` dict (config.json, an HRMConfig's fields); other keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @property
    def puzzle_emb_len(self) -> int:
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class Arch(PuzzleArch):
    """HRM ACT v1."""
    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 4
    L_layers: int = 4


def load_hrm_weights(path: str | Path) -> tuple[PuzzleArch, dict[str, np.ndarray], dict[str, Any]]:
    """hrm's weight format (a directory with model.safetensors and config.json): (arch, weights, arch dict).

    Read with safetensors' NumPy loader. NOTE: NumPy has no bfloat16; a checkpoint trained in bf16 stores
    H_init/L_init in bf16, and only then is torch used to read the file (and widen those to float32).
    """
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    weights = directory / "model.safetensors" if path.is_dir() else path
    meta = json.loads((directory / "config.json").read_text())
    try:
        from safetensors.numpy import load_file
        state = load_file(str(weights))
    except TypeError:
        from safetensors.torch import load_file as load_torch
        state = {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in load_torch(str(weights)).items()}
    from hrm.ports.numpy import port
    return port(meta["arch"].get("name", "hrm_act_v1"))[0].from_dict(meta["arch"]), state, meta["arch"]


# ----------------------------------------------------------------------------------------------------
# Layers

def rms_norm(x: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x²) + eps), no gain (semantics §5.1). NOTE: the mean accumulates in float64."""
    ms = np.mean(np.square(x, dtype=np.float64), axis=-1, keepdims=True)
    return (x / np.sqrt(ms + eps)).astype(x.dtype)


def rope_tables(arch: PuzzleArch, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin of shape (T, d): positions 0..T-1 include the puzzle-embedding positions (semantics §5.2)."""
    d = arch.head_dim
    T = arch.puzzle_emb_len + arch.seq_len
    inv_freq = 1.0 / (dtype.type(arch.rope_theta) ** (np.arange(0, d, 2, dtype=dtype) / dtype.type(d)))
    freqs = np.outer(np.arange(T, dtype=dtype), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(dtype), np.sin(emb).astype(dtype)


def rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True, dtype=np.float64)).astype(x.dtype)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def attention(h: np.ndarray, w: Mapping[str, np.ndarray], arch: PuzzleArch, cos_sin) -> np.ndarray:
    """Non-causal multi-head attention, q | k | v heads in one projection, RoPE on q and k (semantics §5.3)."""
    B, T, _ = h.shape
    H, d = arch.num_heads, arch.head_dim
    qkv = (h @ w["self_attn.qkv_proj.weight"].T).reshape(B, T, 3 * H, d)
    q, k, v = (qkv[:, :, i * H:(i + 1) * H].transpose(0, 2, 1, 3) for i in range(3))   # (B, H, T, d)
    if cos_sin is not None:
        cos, sin = cos_sin
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
    scores = (q @ k.transpose(0, 1, 3, 2)) * h.dtype.type(1 / math.sqrt(d))
    out = softmax(scores) @ v                                      # (B, H, T, d)
    return out.transpose(0, 2, 1, 3).reshape(B, T, H * d) @ w["self_attn.o_proj.weight"].T


def swiglu(x: np.ndarray, w: Mapping[str, np.ndarray]) -> np.ndarray:
    gate, up = np.split(x @ w["mlp.gate_up_proj.weight"].T, 2, axis=-1)
    return (silu(gate) * up) @ w["mlp.down_proj.weight"].T


def block(h: np.ndarray, w: Mapping[str, np.ndarray], arch: PuzzleArch, cos_sin) -> np.ndarray:
    """Post-norm: h ← norm(h + attn(h)); h ← norm(h + mlp(h)) (semantics §5.5)."""
    h = rms_norm(h + attention(h, w, arch, cos_sin), arch.rms_norm_eps)
    return rms_norm(h + swiglu(h, w), arch.rms_norm_eps)


def reasoning_module(z: np.ndarray, injection: np.ndarray, layers: list, arch: PuzzleArch, cos_sin) -> np.ndarray:
    """f(z, injection) = Blocks(z + injection) (semantics §5.6)."""
    z = z + injection
    for w in layers:
        z = block(z, w, arch, cos_sin)
    return z


# ----------------------------------------------------------------------------------------------------
# The model

class NumpyInner:
    """The weights and the parts every architecture shares; subclasses define __call__ (one ACT step)."""

    name = "numpy"
    halt_rule = Q_HALT_GT_Q_CONTINUE

    def __init__(self, arch: PuzzleArch, weights: Mapping[str, np.ndarray], dtype: str | np.dtype = np.float32):
        self.arch = arch
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"the NumPy reference computes in float32 or float64, not {self.dtype}")
        self.weights = {k.removeprefix(PREFIX): np.asarray(v) for k, v in weights.items()
                        if k.startswith(PREFIX) or not k.startswith("model.")}
        self.embed_tokens = self.get("embed_tokens.embedding_weight")
        self.puzzle_emb = self.get("puzzle_emb.weights") if arch.puzzle_emb_ndim > 0 else None
        self.embed_pos = self.get("embed_pos.embedding_weight") if arch.pos_encodings == "learned" else None
        self.cos_sin = rope_tables(arch, self.dtype) if arch.pos_encodings == "rope" else None
        self.lm_head = self.get("lm_head.weight")
        self.q_head_weight = self.get("q_head.weight")
        self.q_head_bias = self.get("q_head.bias")
        self.carry_positions = arch.puzzle_emb_len + arch.seq_len

    def get(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise KeyError(f"weight {PREFIX}{name} is missing (have {len(self.weights)} tensors)")
        return self.weights[name].astype(self.dtype)

    def stack(self, name: str, n: int) -> list[dict[str, np.ndarray]]:
        """The weights of a block stack `name` (e.g. H_level) of n blocks."""
        keys = ("self_attn.qkv_proj.weight", "self_attn.o_proj.weight", "mlp.gate_up_proj.weight",
                "mlp.down_proj.weight")
        return [{k: self.get(f"{name}.layers.{i}.{k}") for k in keys} for i in range(n)]

    def input_embeddings(self, inputs: np.ndarray, puzzle_identifiers: np.ndarray) -> np.ndarray:
        """Token embeddings, the puzzle embedding prepended (zero-padded to P·D), scaled by √D (semantics §6.1)."""
        arch, D = self.arch, self.arch.hidden_size
        x = self.embed_tokens[inputs]                                          # (B, S, D)
        if self.puzzle_emb is not None:
            e_p = self.puzzle_emb[puzzle_identifiers]                          # (B, puzzle_emb_ndim)
            pad = arch.puzzle_emb_len * D - e_p.shape[-1]
            e_p = np.pad(e_p, ((0, 0), (0, pad)))
            x = np.concatenate([e_p.reshape(-1, arch.puzzle_emb_len, D), x], axis=1)   # (B, T, D)
        if self.embed_pos is not None:
            x = self.dtype.type(0.707106781) * (x + self.embed_pos)
        return self.dtype.type(math.sqrt(D)) * x

    def heads(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """logits (puzzle positions dropped), q_halt, q_continue: the Q head reads position 0."""
        logits = z[:, self.arch.puzzle_emb_len:] @ self.lm_head.T
        q = (z[:, 0] @ self.q_head_weight.T + self.q_head_bias).astype(np.float32)
        return logits, q[:, 0], q[:, 1]


class NumpyHRM(NumpyInner):
    """One ACT step of HRM in NumPy; an `hrm.act_driver.StepFunction`."""

    def __init__(self, arch: Arch, weights: Mapping[str, np.ndarray], dtype: str | np.dtype = np.float32):
        super().__init__(arch, weights, dtype)
        self.H_level = self.stack("H_level", arch.H_layers)
        self.L_level = self.stack("L_level", arch.L_layers)
        self.carry_init = {"z_H": self.get("H_init"), "z_L": self.get("L_init")}

    def __call__(self, carry: Mapping[str, np.ndarray], inputs: np.ndarray,
                 puzzle_identifiers: np.ndarray) -> StepOutputs:
        """One segment: N·M L-updates and N H-updates, then the heads (no gradient, so no 1-step split)."""
        arch = self.arch
        x = self.input_embeddings(np.asarray(inputs), np.asarray(puzzle_identifiers))
        z_H, z_L = np.asarray(carry["z_H"], dtype=self.dtype), np.asarray(carry["z_L"], dtype=self.dtype)
        for i in range(arch.H_cycles):
            for _ in range(arch.L_cycles):
                z_L = reasoning_module(z_L, z_H + x, self.L_level, arch, self.cos_sin)
            z_H = reasoning_module(z_H, z_L, self.H_level, arch, self.cos_sin)
        return StepOutputs({"z_H": z_H, "z_L": z_L}, *self.heads(z_H))


def evaluate(model: NumpyInner, inputs: np.ndarray, puzzle_identifiers: np.ndarray, halt_early: bool = False) -> ACTResult:
    """The eval ACT loop: a fresh carry, `halt_max_steps` steps, the last step's argmax (semantics §11.1)."""
    return run_act(model, inputs, puzzle_identifiers, model.arch.halt_max_steps, halt_early=halt_early,
                   halt_rule=model.halt_rule)
