"""A plain transformer baseline: the same layers as HRM, no recursion (`arch.name=transformer`).

The question it answers: does the recursion help, or would the same parameters in a plain stack do as well?
It is the official TRM repository's `transformers_baseline` in HRM's ACT shape:

    x   = input embeddings (B, T, D), as HRM (token table, puzzle embedding positions, RoPE or learned)
    z_H = Blocks(z_H + x)        L_layers post-norm blocks, one application, fully differentiated
    logits = lm_head(z_H)[:, P:],  (q_halt, q_continue) = q_head(z_H[:, 0])

A fresh row's z_H is H_init (truncated normal, never trained), as HRM's. By default an ACT step is the
whole computation: halt_max_steps = 1, so every row halts after one pass and the Q head learns only
whether the answer is right (its q_halt loss); no Q-continue target is computed (as the official baseline,
whose loss head never asks for it). With halt_max_steps > 1 the stack is re-applied to its own output
(the official ACT V2 baseline), halting where q_halt > q_continue in training.

At L_layers = H_layers + L_layers of an HRM config the parameter count is HRM's: the same blocks, one
stack instead of two (and one initial state instead of two buffers).

Shapes: B batch, S puzzle tokens, P puzzle-embedding positions, T = P + S, D hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from hrm.halting import Q_HALT_GT_Q_CONTINUE, HaltingPolicy
from hrm.models.act import Carry
from hrm.models.hrm_act_v1 import LossConfig, ReasoningModule
from hrm.models.inner import PuzzleConfig, PuzzleInner
from hrm.models.layers import trunc_normal_init_


@dataclass
class TransformerConfig(PuzzleConfig):
    """The baseline's hyper-parameters, with HRM's names where they mean the same thing."""

    # Dataset-derived sizes (filled in from the dataset metadata by the trainer).
    seq_len: int = 81
    vocab_size: int = 11
    num_puzzle_identifiers: int = 1
    batch_size: int = 1

    L_layers: int = 8                   # HRM's H_layers + L_layers: the released HRM's parameter count
    hidden_size: int = 512
    expansion: float = 4.0
    num_heads: int = 8
    pos_encodings: str = "rope"         # "rope" or "learned"
    puzzle_emb_ndim: int = 512
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    halt_max_steps: int = 1             # one pass: no recursion at all
    halt_exploration_prob: float = 0.1

    name: str = "transformer"
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        super().__post_init__()
        if self.L_layers < 1:
            raise ValueError(f"L_layers must be >= 1, got {self.L_layers}")

    def block_applications(self) -> tuple[int, int]:
        """(blocks applied in one step, blocks differentiated): one pass, all of it differentiated."""
        return self.L_layers, self.L_layers

    @property
    def halting_policy(self) -> HaltingPolicy:
        """HRM's rule (it matters only with halt_max_steps > 1); no Q-continue target, as the official baseline."""
        return HaltingPolicy(rule=Q_HALT_GT_Q_CONTINUE, q_target=False)


class TransformerInner(PuzzleInner):
    """One ACT step: one pass of the block stack over the embedded puzzle."""

    def __init__(self, config: TransformerConfig, forward_dtype: torch.dtype):
        super().__init__()
        self.build_io(config, forward_dtype)             # embed_tokens, lm_head, q_head, puzzle_emb, positions
        self.blocks = ReasoningModule(config, config.L_layers)
        self.H_init = nn.Buffer(trunc_normal_init_(torch.empty(config.hidden_size, dtype=forward_dtype), std=1),
                                persistent=True)
        self.init_q_head()

    def carry_init(self) -> dict[str, torch.Tensor]:
        return {"z_H": self.H_init}

    def forward(self, carry: Carry, batch: dict[str, torch.Tensor]):
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])   # (B, T, D)
        z_H = self.blocks(carry["z_H"], x, self.rope())                          # Blocks(z_H + x), with gradient
        logits, q = self.heads(z_H)
        return {"z_H": z_H.detach()}, logits, q
