"""HRM ACT v1: the hierarchical recurrent model with adaptive computation time (semantics §6, §7).

Reads top to bottom:
  HRMConfig                 the architecture hyper-parameters (the original's names) and its halting policy
  Block, ReasoningModule    post-norm transformer blocks; f(z, injection) = Blocks(z + injection)
  HRMInner                  one segment: embeddings, the H/L recurrence with the 1-step gradient, heads
The ACT wrapper (carry, reset of halted rows, halting, exploration, Q target) is hrm.models.act, shared by
every architecture; HRM is `ACTModel(HRMInner(config), config.halting_policy)`.

Shapes: B batch, S puzzle tokens, P puzzle-embedding positions, T = P + S, D hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from hrm.halting import Q_HALT_GT_Q_CONTINUE, HaltingPolicy
from hrm.models.act import Carry
from hrm.models.inner import PuzzleConfig, PuzzleInner
from hrm.models.layers import Attention, CosSin, SwiGLU, rms_norm, trunc_normal_init_


@dataclass
class LossConfig:
    loss_type: str = "stablemax_cross_entropy"   # or "softmax_cross_entropy"


@dataclass
class HRMConfig(PuzzleConfig):
    """Architecture of HRM ACT v1. Field names are the original's, so `arch.L_cycles=8` works."""

    # Dataset-derived sizes (filled in from the dataset metadata by the trainer).
    seq_len: int = 81
    vocab_size: int = 11
    num_puzzle_identifiers: int = 1
    batch_size: int = 1                 # per-process training batch; sizes the sparse-embedding buffers

    H_cycles: int = 2
    L_cycles: int = 2
    H_layers: int = 4
    L_layers: int = 4
    hidden_size: int = 512
    expansion: float = 4.0
    num_heads: int = 8
    pos_encodings: str = "rope"         # "rope" or "learned"
    puzzle_emb_ndim: int = 512          # 0 disables the puzzle embedding
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1

    # NOTE: the original's `forward_dtype` is not an architecture field here: the dtype is a run setting
    # (TrainConfig.dtype; `arch.forward_dtype=` still sets it) and is stored with the checkpoints.
    name: str = "hrm_act_v1"
    loss: LossConfig = field(default_factory=LossConfig)

    @property
    def halting_policy(self) -> HaltingPolicy:
        """Halt where q_halt > q_continue; Q-continue target from a second forward (Q-learning)."""
        return HaltingPolicy(rule=Q_HALT_GT_Q_CONTINUE, q_target=True)

    def block_applications(self) -> tuple[int, int]:
        """(blocks applied in one segment, blocks differentiated): N·M L-updates and N H-updates; the 1-step
        gradient goes through the last of each (hrm.flops counts with these)."""
        N, M = self.H_cycles, self.L_cycles
        return N * M * self.L_layers + N * self.H_layers, self.L_layers + self.H_layers


class Block(nn.Module):
    """Post-norm: h ← norm(h + attn(h)); h ← norm(h + mlp(h))."""

    def __init__(self, config: HRMConfig):
        super().__init__()
        self.self_attn = Attention(config.hidden_size, config.num_heads)
        self.mlp = SwiGLU(config.hidden_size, config.expansion)
        self.norm_eps = config.rms_norm_eps

    def forward(self, h: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        h = rms_norm(h + self.self_attn(h, cos_sin), self.norm_eps)
        h = rms_norm(h + self.mlp(h), self.norm_eps)
        return h


class ReasoningModule(nn.Module):
    """f(z, injection) = Blocks(z + injection): the injection is added once, before the first block."""

    def __init__(self, config: HRMConfig, num_layers: int, block: type[nn.Module] | None = None):
        super().__init__()
        block = block or Block
        self.layers = nn.ModuleList([block(config) for _ in range(num_layers)])

    def forward(self, z: torch.Tensor, injection: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        z = z + injection
        for layer in self.layers:
            z = layer(z, cos_sin)
        return z


class HRMInner(PuzzleInner):
    """One ACT segment. NOTE: construction order is the original's; it fixes the RNG stream of the init."""

    def __init__(self, config: HRMConfig, forward_dtype: torch.dtype):
        super().__init__()
        D = config.hidden_size
        self.build_io(config, forward_dtype)             # embed_tokens, lm_head, q_head, puzzle_emb, positions
        self.H_level = ReasoningModule(config, config.H_layers)
        self.L_level = ReasoningModule(config, config.L_layers)

        # NOTE: the initial states are sampled directly in the forward dtype and never trained.
        self.H_init = nn.Buffer(trunc_normal_init_(torch.empty(D, dtype=forward_dtype), std=1), persistent=True)
        self.L_init = nn.Buffer(trunc_normal_init_(torch.empty(D, dtype=forward_dtype), std=1), persistent=True)
        self.init_q_head()

    # The carry (hrm.models.act): z_H and z_L, (B, T, D); a fresh row holds H_init / L_init everywhere.
    def carry_init(self) -> dict[str, torch.Tensor]:
        return {"z_H": self.H_init, "z_L": self.L_init}

    def forward(self, carry: Carry, batch: dict[str, torch.Tensor]):
        N, M = self.config.H_cycles, self.config.L_cycles
        cos_sin = self.rope()
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])   # (B, T, D)

        # N·M L-updates and N H-updates; all but the last of each run without gradient.
        z_H, z_L = carry["z_H"], carry["z_L"]
        with torch.no_grad():
            for i in range(N):
                for j in range(M):
                    if not (i == N - 1 and j == M - 1):
                        z_L = self.L_level(z_L, z_H + x, cos_sin)
                if i != N - 1:
                    z_H = self.H_level(z_H, z_L, cos_sin)
        # The "1-step gradient": only these two updates are differentiated.
        z_L = self.L_level(z_L, z_H + x, cos_sin)
        z_H = self.H_level(z_H, z_L, cos_sin)

        logits, q = self.heads(z_H)                                         # the answer is decoded from z_H
        return {"z_H": z_H.detach(), "z_L": z_L.detach()}, logits, q
