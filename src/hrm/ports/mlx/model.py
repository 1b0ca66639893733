"""HRM ACT v1 in MLX: `mlx.nn` layers and the `mx.fast` kernels (attention, RMSNorm, RoPE).

    Attention, SwiGLU, Block, ReasoningModule     the layers of semantics §5.2-§5.6
    PuzzleIO                                      what every architecture shares: embeddings, heads, H/L_init
    HRMInner                                      one ACT segment with the 1-step gradient (semantics §6)
    MlxStep                                       a segment as an `hrm.act_driver.StepFunction`
TRM's inference port (hrm.ports.mlx.trm) builds on the same layers.

Parameter names follow the original's state dict without `model.inner.` (hrm.ports.mlx.convert maps
the three embedding tables, whose MLX attribute is `weight`). The puzzle table, H_init and L_init are
frozen: the dense optimiser never sees them (the table is trained by SignSGD, semantics §9.3).
On Linux this runs on the CPU with `mlx[cpu]`; on macOS on the Apple-silicon GPU.
"""
from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from hrm.act_driver import StepOutputs
from hrm.ports.numpy.model import Arch


def swiglu_intermediate_size(hidden_size: int, expansion: float) -> int:
    # NOTE: the same formula as hrm.models.layers (banker's round, then up to a multiple of 256); kept
    # here so that the MLX port imports no torch.
    inter = round(expansion * hidden_size * 2 / 3)
    return -(inter // -256) * 256


class Attention(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        D = arch.hidden_size
        self.num_heads, self.head_dim = arch.num_heads, arch.head_dim
        self.rope = arch.pos_encodings == "rope"
        self.rope_theta = arch.rope_theta
        self.qkv_proj = nn.Linear(D, 3 * D, bias=False)
        self.o_proj = nn.Linear(D, D, bias=False)

    def __call__(self, h: mx.array) -> mx.array:
        B, T, D = h.shape
        H, d = self.num_heads, self.head_dim
        qkv = self.qkv_proj(h).reshape(B, T, 3 * H, d).transpose(0, 2, 1, 3)      # (B, 3H, T, d): q | k | v
        q, k, v = qkv[:, :H], qkv[:, H:2 * H], qkv[:, 2 * H:]
        if self.rope:
            # Non-interleaved (rotate-half) RoPE over positions 0..T-1, puzzle positions included.
            q = mx.fast.rope(q, d, traditional=False, base=self.rope_theta, scale=1.0, offset=0)
            k = mx.fast.rope(k, d, traditional=False, base=self.rope_theta, scale=1.0, offset=0)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(d))   # non-causal, no mask
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, T, D))


class SwiGLU(nn.Module):
    """Over the last axis, of width `width` (default the hidden size; TRM's mlp_t mixes positions)."""

    def __init__(self, arch: Arch, width: int | None = None):
        super().__init__()
        width = width or arch.hidden_size
        inter = swiglu_intermediate_size(width, arch.expansion)
        self.gate_up_proj = nn.Linear(width, 2 * inter, bias=False)
        self.down_proj = nn.Linear(inter, width, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        gate, up = mx.split(self.gate_up_proj(x), 2, axis=-1)       # first half gates, second half is "up"
        return self.down_proj(nn.silu(gate) * up)


class Block(nn.Module):
    """Post-norm, RMSNorm without a gain."""

    def __init__(self, arch: Arch):
        super().__init__()
        self.self_attn = Attention(arch)
        self.mlp = SwiGLU(arch)
        self.eps = arch.rms_norm_eps

    def __call__(self, h: mx.array) -> mx.array:
        h = mx.fast.rms_norm(h + self.self_attn(h), None, self.eps)
        return mx.fast.rms_norm(h + self.mlp(h), None, self.eps)


class ReasoningModule(nn.Module):
    def __init__(self, arch: Arch, num_layers: int):
        super().__init__()
        self.layers = [Block(arch) for _ in range(num_layers)]

    def __call__(self, z: mx.array, injection: mx.array) -> mx.array:
        z = z + injection
        for layer in self.layers:
            z = layer(z)
        return z


class PuzzleIO(nn.Module):
    """Token and puzzle embeddings, positions, the two heads and the initial states; `levels()` adds the
    architecture's networks (built before the freeze, so that the freeze sees every attribute)."""

    def __init__(self, arch, num_puzzle_identifiers: int = 1):
        super().__init__()
        self.arch = arch
        D = arch.hidden_size
        self.puzzle_emb_len = arch.puzzle_emb_len
        self.embed_tokens = nn.Embedding(arch.vocab_size, D)
        self.lm_head = nn.Linear(D, arch.vocab_size, bias=False)
        self.q_head = nn.Linear(D, 2, bias=True)
        frozen = ["H_init", "L_init"]
        if arch.puzzle_emb_ndim > 0:
            self.puzzle_emb = nn.Embedding(num_puzzle_identifiers, arch.puzzle_emb_ndim)
            frozen.append("puzzle_emb")
        if arch.pos_encodings == "learned":
            self.embed_pos = nn.Embedding(self.puzzle_emb_len + arch.seq_len, D)
        self.levels(arch)
        self.H_init = mx.zeros((D,))
        self.L_init = mx.zeros((D,))
        self.freeze(keys=frozen, recurse=False)
        if arch.puzzle_emb_ndim > 0:
            self.puzzle_emb.freeze()

    def levels(self, arch) -> None:
        raise NotImplementedError

    def input_embeddings(self, inputs: mx.array, puzzle_rows: mx.array | None) -> mx.array:
        """Tokens, with the puzzle rows (B, puzzle_emb_ndim) prepended, zero-padded to P·D, scaled by √D."""
        arch, D = self.arch, self.arch.hidden_size
        x = self.embed_tokens(inputs)
        if puzzle_rows is not None:
            pad = self.puzzle_emb_len * D - puzzle_rows.shape[-1]
            if pad:
                puzzle_rows = mx.pad(puzzle_rows, [(0, 0), (0, pad)])
            x = mx.concatenate([puzzle_rows.reshape(-1, self.puzzle_emb_len, D).astype(x.dtype), x], axis=1)
        if arch.pos_encodings == "learned":
            x = 0.707106781 * (x + self.embed_pos.weight.astype(x.dtype))
        return math.sqrt(D) * x

    def puzzle_rows(self, puzzle_identifiers: mx.array) -> mx.array | None:
        return self.puzzle_emb(puzzle_identifiers) if self.arch.puzzle_emb_ndim > 0 else None

    def reset_carry(self, reset: mx.array, z_H: mx.array, z_L: mx.array) -> tuple[mx.array, mx.array]:
        reset = reset.reshape(-1, 1, 1)
        return mx.where(reset, self.H_init, z_H), mx.where(reset, self.L_init, z_L)

    def heads(self, z_H: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        """(logits without the puzzle positions, q_halt, q_continue); the Q head reads position 0."""
        q = self.q_head(z_H[:, 0]).astype(mx.float32)
        return self.lm_head(z_H)[:, self.puzzle_emb_len:], q[:, 0], q[:, 1]


class HRMInner(PuzzleIO):
    def levels(self, arch: Arch) -> None:
        self.H_level = ReasoningModule(arch, arch.H_layers)
        self.L_level = ReasoningModule(arch, arch.L_layers)

    def __call__(self, z_H: mx.array, z_L: mx.array, inputs: mx.array, puzzle_rows: mx.array | None):
        """One segment -> (z_H, z_L, logits, q_halt, q_continue).

        Under `mx.grad` only the last L- and H-updates are differentiated (the 1-step gradient): the
        states entering them are `stop_gradient`ed, as the original's `torch.no_grad` block does.
        """
        arch = self.arch
        N, M = arch.H_cycles, arch.L_cycles
        x = self.input_embeddings(inputs, puzzle_rows)
        for i in range(N):
            for j in range(M):
                if not (i == N - 1 and j == M - 1):
                    z_L = self.L_level(z_L, z_H + x)
            if i != N - 1:
                z_H = self.H_level(z_H, z_L)
        z_H, z_L = mx.stop_gradient(z_H), mx.stop_gradient(z_L)
        z_L = self.L_level(z_L, z_H + x)
        z_H = self.H_level(z_H, z_L)
        return (z_H, z_L, *self.heads(z_H))


class MlxStep:
    """The MLX model as an ACT step function (NumPy at the boundary, as every backend)."""

    name = "mlx"

    def __init__(self, model: PuzzleIO):
        self.model = model
        self.carry_init = {"z_H": np.array(model.H_init.astype(mx.float32)),
                           "z_L": np.array(model.L_init.astype(mx.float32))}
        self.carry_positions = model.puzzle_emb_len + model.arch.seq_len
        self.halt_max_steps = model.arch.halt_max_steps
        self.dtype = model.H_init.dtype
        # NOTE: mx.compile only on the GPU. On the CPU backend it generates and builds C++ kernels at the
        # first call (~50 s for the small test model) and is not faster afterwards.
        on_gpu = mx.default_device().type == mx.DeviceType.gpu
        self._step = mx.compile(self._segment, inputs=model.state) if on_gpu else self._segment

    def _segment(self, z_H, z_L, inputs, puzzle_identifiers):
        return self.model(z_H, z_L, inputs, self.model.puzzle_rows(puzzle_identifiers))

    def __call__(self, carry, inputs, puzzle_identifiers) -> StepOutputs:
        out = self._step(mx.array(np.asarray(carry["z_H"])).astype(self.dtype),
                         mx.array(np.asarray(carry["z_L"])).astype(self.dtype),
                         mx.array(np.asarray(inputs, np.int32)), mx.array(np.asarray(puzzle_identifiers, np.int32)))
        mx.eval(*out)
        z_H, z_L, logits, q_halt, q_continue = (np.array(o.astype(mx.float32)) for o in out)
        return StepOutputs({"z_H": z_H, "z_L": z_L}, logits, q_halt, q_continue)
