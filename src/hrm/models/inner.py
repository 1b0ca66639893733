"""What every inner model shares: the puzzle's input embedding and the two heads (semantics §3, §6.1).

    PuzzleInner.build_io          embed_tokens, lm_head, q_head, puzzle_emb, rotary_emb | embed_pos, created
                                  in the originals' order (it fixes the RNG stream of a seeded init)
    PuzzleInner.input_embeddings  tokens (B, S) + puzzle ids (B,) -> x (B, T, D), T = P + S
    PuzzleInner.heads             the answer state (B, T, D) -> logits (B, S, V), (q_halt, q_continue) (B,)

An architecture subclasses PuzzleInner, builds its own blocks and initial states between `build_io` and
`init_q_head`, and declares its carry (hrm.models.act). The attributes keep the originals' names, so
state-dict keys stay `model.inner.embed_tokens.…` etc.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hrm.models.layers import CastedEmbedding, CastedLinear, CosSin, RotaryEmbedding
from hrm.models.sparse_embedding import CastedSparseEmbedding


class PuzzleConfig:
    """Checks and derived sizes shared by the architectures' config dataclasses (a mixin; no fields)."""

    POS_ENCODINGS = ("rope", "learned")         # the values `pos_encodings` may take (TRM adds "none")

    def __post_init__(self):
        # Sizes and counts an architecture has (a missing field is skipped): >= 1, so that no size is zero
        # or negative by the time a layer divides by it or allocates it.
        for name in ("seq_len", "vocab_size", "num_puzzle_identifiers", "batch_size", "hidden_size", "num_heads",
                     "H_cycles", "L_cycles"):
            if hasattr(self, name) and not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("H_layers", "L_layers"):          # 0 is an architecture's choice (TRM has no H stack)
            if hasattr(self, name) and not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if getattr(self, "puzzle_emb_ndim", 0) < 0:
            raise ValueError(f"puzzle_emb_ndim must be >= 0, got {self.puzzle_emb_ndim}")
        if not 0 <= getattr(self, "halt_exploration_prob", 0) <= 1:
            raise ValueError(f"halt_exploration_prob must be in [0, 1], got {self.halt_exploration_prob}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}")
        if self.pos_encodings not in self.POS_ENCODINGS:
            *rest, last = (repr(p) for p in self.POS_ENCODINGS)
            allowed = f"{', '.join(rest)} or {last}" if rest else last
            raise ValueError(f"pos_encodings must be {allowed}, got {self.pos_encodings!r}")
        if self.halt_max_steps < 1:
            raise ValueError(f"halt_max_steps must be >= 1, got {self.halt_max_steps}")

    @property
    def puzzle_emb_len(self) -> int:
        """P = ceil(puzzle_emb_ndim / hidden_size) positions prepended to the sequence."""
        return -(self.puzzle_emb_ndim // -self.hidden_size)


class PuzzleInner(nn.Module):
    """Base of the inner models. `config` needs seq_len, vocab_size, num_puzzle_identifiers, batch_size,
    hidden_size, num_heads, pos_encodings, puzzle_emb_ndim, rope_theta and a `puzzle_emb_len` (P)."""

    def build_io(self, config, forward_dtype: torch.dtype) -> None:
        self.config = config
        self.forward_dtype = forward_dtype
        D = config.hidden_size
        self.puzzle_emb_len = config.puzzle_emb_len
        self.embed_scale = math.sqrt(D)
        embed_init_std = 1.0 / self.embed_scale

        self.embed_tokens = CastedEmbedding(config.vocab_size, D, init_std=embed_init_std, cast_to=forward_dtype)
        self.lm_head = CastedLinear(D, config.vocab_size, bias=False)
        self.q_head = CastedLinear(D, 2, bias=True)                       # [halt, continue]
        if config.puzzle_emb_ndim > 0:
            # NOTE: zero init; the table is trained by sparse SignSGD, not by the dense optimiser.
            self.puzzle_emb = CastedSparseEmbedding(config.num_puzzle_identifiers, config.puzzle_emb_ndim,
                                                    batch_size=config.batch_size, init_std=0, cast_to=forward_dtype)
        T = self.carry_positions
        if config.pos_encodings == "rope":
            self.rotary_emb = RotaryEmbedding(D // config.num_heads, max_positions=T, base=config.rope_theta)
        elif config.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(T, D, init_std=embed_init_std, cast_to=forward_dtype)

    def init_q_head(self) -> None:
        """The Q head starts at "don't halt yet": zero weight, bias -5 on both logits (after its RNG draw)."""
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5)

    @property
    def carry_positions(self) -> int:
        """T: the puzzle-embedding positions, then the sequence."""
        return self.config.puzzle_emb_len + self.config.seq_len

    def rope(self) -> CosSin | None:
        return self.rotary_emb() if self.config.pos_encodings == "rope" else None

    def input_embeddings(self, inputs: torch.Tensor, puzzle_identifiers: torch.Tensor) -> torch.Tensor:
        D = self.config.hidden_size
        x = self.embed_tokens(inputs.to(torch.int32))                      # (B, S, D)
        if self.config.puzzle_emb_ndim > 0:
            e_p = self.puzzle_emb(puzzle_identifiers)                      # (B, puzzle_emb_ndim)
            pad = self.puzzle_emb_len * D - e_p.shape[-1]
            if pad > 0:
                e_p = F.pad(e_p, (0, pad))
            x = torch.cat((e_p.view(-1, self.puzzle_emb_len, D), x), dim=-2)   # (B, T, D): puzzle first
        if self.config.pos_encodings == "learned":
            # 1/√2 keeps the variance of the sum of two unit-variance embeddings.
            x = 0.707106781 * (x + self.embed_pos.embedding_weight.to(self.forward_dtype))
        return self.embed_scale * x

    def heads(self, z: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        logits = self.lm_head(z)[:, self.puzzle_emb_len:]                  # (B, S, vocab): drop puzzle positions
        # NOTE: the Q head reads position 0, the first puzzle-embedding position (the first token if P = 0).
        q = self.q_head(z[:, 0]).to(torch.float32)                          # (B, 2)
        return logits, (q[..., 0], q[..., 1])
