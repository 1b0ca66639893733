"""TRM in plain NumPy (hrm.models.trm): one supervision step of the one-network recursion.

    repeat H_cycles (T) times:
        repeat L_cycles (n) times:  z_L = net(z_L + z_H + x)
        z_H = net(z_H + z_L)
    logits, q_halt, q_continue from z_H (as HRM's heads)

Without gradients the no-grad / back-propagated split of the PyTorch model is invisible: all T cycles are
the same computation. A block is attention + SwiGLU, or with `mlp_t` a SwiGLU across the L positions
(normalised over positions) + SwiGLU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from hrm.act_driver import StepOutputs
from hrm.halting import Q_HALT_GT_Q_CONTINUE, Q_HALT_GT_ZERO
from hrm.ports.numpy.model import NumpyInner, PuzzleArch, attention, rms_norm, swiglu

BLOCK_KEYS = {
    False: ("self_attn.qkv_proj.weight", "self_attn.o_proj.weight"),
    True: ("mlp_t.gate_up_proj.weight", "mlp_t.down_proj.weight"),
}
MLP_KEYS = ("mlp.gate_up_proj.weight", "mlp.down_proj.weight")


@dataclass(frozen=True)
class TRMArch(PuzzleArch):
    H_cycles: int = 3
    L_cycles: int = 6
    L_layers: int = 2
    mlp_t: bool = False
    puzzle_emb_len: int = 16            # P; 0 means HRM's rule ceil(puzzle_emb_ndim / hidden_size)
    no_ACT_continue: bool = True

    def __post_init__(self):
        if self.puzzle_emb_len == 0:
            object.__setattr__(self, "puzzle_emb_len", -(self.puzzle_emb_ndim // -self.hidden_size))


def trm_block(h: np.ndarray, w: Mapping[str, np.ndarray], arch: TRMArch, cos_sin) -> np.ndarray:
    """Post-norm, as hrm.models.trm.Block."""
    if arch.mlp_t:
        t = h.transpose(0, 2, 1)                                   # (B, D, L): mix along positions
        mixed = swiglu(t, {"mlp.gate_up_proj.weight": w["mlp_t.gate_up_proj.weight"],
                           "mlp.down_proj.weight": w["mlp_t.down_proj.weight"]})
        h = rms_norm(t + mixed, arch.rms_norm_eps).transpose(0, 2, 1)   # normalised over the L positions
    else:
        h = rms_norm(h + attention(h, w, arch, cos_sin), arch.rms_norm_eps)
    return rms_norm(h + swiglu(h, w), arch.rms_norm_eps)


class NumpyTRM(NumpyInner):
    """One ACT step of TRM in NumPy; an `hrm.act_driver.StepFunction`."""

    def __init__(self, arch: TRMArch, weights: Mapping[str, np.ndarray], dtype: str | np.dtype = np.float32):
        super().__init__(arch, weights, dtype)
        keys = BLOCK_KEYS[bool(arch.mlp_t)] + MLP_KEYS
        self.L_level = [{k: self.get(f"L_level.layers.{i}.{k}") for k in keys} for i in range(arch.L_layers)]
        self.carry_init = {"z_H": self.get("H_init"), "z_L": self.get("L_init")}
        self.halt_rule = Q_HALT_GT_ZERO if arch.no_ACT_continue else Q_HALT_GT_Q_CONTINUE

    def net(self, z: np.ndarray, injection: np.ndarray) -> np.ndarray:
        """net(z, injection) = Blocks(z + injection)."""
        z = z + injection
        for w in self.L_level:
            z = trm_block(z, w, self.arch, self.cos_sin)
        return z

    def __call__(self, carry: Mapping[str, np.ndarray], inputs: np.ndarray,
                 puzzle_identifiers: np.ndarray) -> StepOutputs:
        arch = self.arch
        x = self.input_embeddings(np.asarray(inputs), np.asarray(puzzle_identifiers))
        z_H, z_L = np.asarray(carry["z_H"], dtype=self.dtype), np.asarray(carry["z_L"], dtype=self.dtype)
        for _ in range(arch.H_cycles):
            for _ in range(arch.L_cycles):
                z_L = self.net(z_L, z_H + x)
            z_H = self.net(z_H, z_L)
        return StepOutputs({"z_H": z_H, "z_L": z_L}, *self.heads(z_H))
