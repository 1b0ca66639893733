"""TRM in MLX, for inference (hrm.models.trm): one supervision step of the one-network recursion.

    repeat H_cycles (T) times:
        repeat L_cycles (n) times:  z_L = net(z_L + z_H + x)
        z_H = net(z_H + z_L)
    logits, q_halt, q_continue from z_H (PuzzleIO.heads)

A block is post-norm attention + SwiGLU, or with `mlp_t` a SwiGLU across the L = P + S positions
(normalised over positions) + SwiGLU. Parameter names are the official state dict's without
`model.inner.`: one network, `L_level.layers.<i>`, and no `H_level`.
NOTE: inference only. Training in MLX (hrm.ports.mlx.train) is HRM's; TRM trains with `hrm train`.
"""
from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from hrm.ports.mlx.model import Attention, PuzzleIO, SwiGLU
from hrm.ports.numpy.trm import TRMArch


class TRMBlock(nn.Module):
    def __init__(self, arch: TRMArch):
        super().__init__()
        self.mlp_t_enabled = bool(arch.mlp_t)
        if self.mlp_t_enabled:
            self.mlp_t = SwiGLU(arch, width=arch.puzzle_emb_len + arch.seq_len)
        else:
            self.self_attn = Attention(arch)
        self.mlp = SwiGLU(arch)
        self.eps = arch.rms_norm_eps

    def __call__(self, h: mx.array) -> mx.array:
        if self.mlp_t_enabled:
            t = h.transpose(0, 2, 1)                                          # (B, D, L): mix along positions
            h = mx.fast.rms_norm(t + self.mlp_t(t), None, self.eps).transpose(0, 2, 1)   # over the L positions
        else:
            h = mx.fast.rms_norm(h + self.self_attn(h), None, self.eps)
        return mx.fast.rms_norm(h + self.mlp(h), None, self.eps)


class TRMNet(nn.Module):
    """net(z, injection) = Blocks(z + injection)."""

    def __init__(self, arch: TRMArch):
        super().__init__()
        self.layers = [TRMBlock(arch) for _ in range(arch.L_layers)]

    def __call__(self, z: mx.array, injection: mx.array) -> mx.array:
        z = z + injection
        for layer in self.layers:
            z = layer(z)
        return z


class TRMInner(PuzzleIO):
    def levels(self, arch: TRMArch) -> None:
        self.L_level = TRMNet(arch)

    def __call__(self, z_H: mx.array, z_L: mx.array, inputs: mx.array, puzzle_rows: mx.array | None):
        """One supervision step -> (z_H, z_L, logits, q_halt, q_continue)."""
        arch = self.arch
        x = self.input_embeddings(inputs, puzzle_rows)                        # (B, L, D)
        for _ in range(arch.H_cycles):
            for _ in range(arch.L_cycles):
                z_L = self.L_level(z_L, z_H + x)
            z_H = self.L_level(z_H, z_L)
        return (z_H, z_L, *self.heads(z_H))
