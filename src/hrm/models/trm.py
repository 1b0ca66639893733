"""TRM, the Tiny Recursive Model ("Less is More: Recursive Reasoning with Tiny Networks"), `arch.name=trm`.

Reads top to bottom:
  TRMConfig        the hyper-parameters, under the official names (so the official `all_config.yaml` and
                   `arch.X=` keys work), and the halting policy they imply
  Block            a post-norm block: attention or, with `mlp_t`, a SwiGLU across positions; then a SwiGLU
  TRMInner         one supervision step: T cycles of n latent updates and one answer update, all by ONE
                   network; T-1 cycles without gradient, the last one fully back-propagated
The ACT wrapper (carry, reset, halting, exploration) is hrm.models.act, shared with HRM; the loss head is
hrm.models.losses. See docs/semantics.md §15.

The official code keeps HRM's names: z_H is the paper's answer latent y, z_L the reasoning latent z,
H_cycles is T, L_cycles is n, halt_max_steps is N_sup. One step, with x the embedded puzzle:

    repeat T times:                                  (the first T-1 under no_grad)
        repeat n times:  z_L = net(z_L + z_H + x)    reasoning update
        z_H = net(z_H + z_L)                         answer update (no x)
    logits = lm_head(z_H)[:, P:],  (q_halt, q_continue) = q_head(z_H[:, 0])

Shapes: B batch, S puzzle tokens, P puzzle-embedding positions, L = P + S, D hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from hrm.halting import Q_HALT_GT_Q_CONTINUE, Q_HALT_GT_ZERO, HaltingPolicy
from hrm.models.act import Carry
from hrm.models.hrm_act_v1 import LossConfig, ReasoningModule
from hrm.models.inner import PuzzleConfig, PuzzleInner
from hrm.models.layers import Attention, CosSin, SwiGLU, rms_norm, trunc_normal_init_


@dataclass
class TRMConfig(PuzzleConfig):
    """Architecture of TRM. Field names and defaults are the official `config/arch/trm.yaml`'s."""

    # Dataset-derived sizes (filled in from the dataset metadata by the trainer).
    seq_len: int = 81
    vocab_size: int = 11
    num_puzzle_identifiers: int = 1
    batch_size: int = 1                 # per-process training batch; sizes the sparse-embedding buffers

    H_cycles: int = 3                   # T: cycles per supervision step
    L_cycles: int = 6                   # n: latent updates per cycle (the README's ARC and Maze runs use 4)
    H_layers: int = 0                   # NOTE: unused, as in the official code (one network); kept so its configs load
    L_layers: int = 2                   # the blocks of the one network
    hidden_size: int = 512
    expansion: float = 4.0
    num_heads: int = 8
    pos_encodings: str = "rope"         # "rope", "learned" or "none"
    puzzle_emb_ndim: int = 512          # 0 disables the puzzle embedding (then set puzzle_emb_len=0)
    # P, the puzzle positions prepended to the sequence. 0 means HRM's rule ceil(puzzle_emb_ndim / hidden_size).
    # NOTE: __post_init__ resolves 0 to that number, so every consumer reads P here (as HRM's property).
    puzzle_emb_len: int = 16
    mlp_t: bool = False                 # True: the attention is replaced by a SwiGLU across the L positions
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    halt_max_steps: int = 16
    halt_exploration_prob: float = 0.1
    no_ACT_continue: bool = True        # True: halt where q_halt > 0, no Q-continue target (the official runs)

    name: str = "trm"
    loss: LossConfig = field(default_factory=LossConfig)

    # NOTE: the official code treats any other string as "none", so a typo silently drops the positions;
    # here it is an error.
    POS_ENCODINGS = ("rope", "learned", "none")

    def __post_init__(self):
        super().__post_init__()
        for key in ("H_cycles", "L_cycles", "L_layers"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.puzzle_emb_len < 0:
            raise ValueError(f"puzzle_emb_len must be >= 0, got {self.puzzle_emb_len}")
        if self.puzzle_emb_len == 0:
            self.puzzle_emb_len = -(self.puzzle_emb_ndim // -self.hidden_size)
        # NOTE: the official code crashes on both of these inside the forward pass.
        elif self.puzzle_emb_ndim == 0:
            raise ValueError(f"puzzle_emb_len={self.puzzle_emb_len} needs a puzzle embedding (puzzle_emb_ndim > 0); "
                             "without one set puzzle_emb_len=0")
        elif self.puzzle_emb_len * self.hidden_size < self.puzzle_emb_ndim:
            raise ValueError(f"puzzle_emb_len={self.puzzle_emb_len} positions of width {self.hidden_size} cannot hold "
                             f"puzzle_emb_ndim={self.puzzle_emb_ndim}; use at least "
                             f"{-(self.puzzle_emb_ndim // -self.hidden_size)} (or 0 for that rule)")

    @property
    def halting_policy(self) -> HaltingPolicy:
        """no_ACT_continue: halt where sigmoid(q_halt) > 1/2, no target. Otherwise HRM's Q-learning.

        NOTE: the official no_ACT_continue=False path crashes in training (it unpacks the inner model's
        three outputs into five names); here it is HRM's rule and Q target, which is what it intends.
        """
        if self.no_ACT_continue:
            return HaltingPolicy(rule=Q_HALT_GT_ZERO, q_target=False)
        return HaltingPolicy(rule=Q_HALT_GT_Q_CONTINUE, q_target=True)

    def block_applications(self) -> tuple[int, int]:
        """(blocks applied in one step, blocks differentiated): T(n+1) network applications, the last n+1
        (the last cycle) back-propagated (hrm.flops counts with these)."""
        T, n = self.H_cycles, self.L_cycles
        return T * (n + 1) * self.L_layers, (n + 1) * self.L_layers


class Block(nn.Module):
    """Post-norm. Attention: h ← norm(h + attn(h)); mlp_t: the same with a SwiGLU across positions in
    place of attention, normalised over positions. Then h ← norm(h + mlp(h)) in both."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        self.mlp_t_enabled = config.mlp_t
        if config.mlp_t:
            # Its width is the number of positions L: its weights are indexed by position, so it needs no
            # positional encoding (the Sudoku-MLP run uses none).
            self.mlp_t = SwiGLU(config.puzzle_emb_len + config.seq_len, config.expansion)
        else:
            self.self_attn = Attention(config.hidden_size, config.num_heads)
        self.mlp = SwiGLU(config.hidden_size, config.expansion)
        self.norm_eps = config.rms_norm_eps

    def forward(self, h: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        if self.mlp_t_enabled:
            h = h.transpose(1, 2)                                      # (B, D, L): mix along positions
            h = rms_norm(h + self.mlp_t(h), self.norm_eps)             # NOTE: RMSNorm over the L positions
            h = h.transpose(1, 2)                                      # (B, L, D)
        else:
            h = rms_norm(h + self.self_attn(h, cos_sin), self.norm_eps)
        return rms_norm(h + self.mlp(h), self.norm_eps)


class TRMInner(PuzzleInner):
    """One supervision step. NOTE: construction order is the official one; it fixes the RNG stream of the
    init (embed_tokens, lm_head, q_head, puzzle_emb, positions, the blocks, H_init, L_init)."""

    def __init__(self, config: TRMConfig, forward_dtype: torch.dtype):
        super().__init__()
        D = config.hidden_size
        self.build_io(config, forward_dtype)             # embed_tokens, lm_head, q_head, puzzle_emb, positions
        # The one network, used for both updates. Named L_level as in the official state dict; no H_level.
        self.L_level = ReasoningModule(config, config.L_layers, block=Block)

        # NOTE: the initial states are sampled directly in the forward dtype and never trained.
        self.H_init = nn.Buffer(trunc_normal_init_(torch.empty(D, dtype=forward_dtype), std=1), persistent=True)
        self.L_init = nn.Buffer(trunc_normal_init_(torch.empty(D, dtype=forward_dtype), std=1), persistent=True)
        self.init_q_head()

    # The carry (hrm.models.act): z_H (answer y) and z_L (reasoning z), (B, L, D).
    def carry_init(self) -> dict[str, torch.Tensor]:
        return {"z_H": self.H_init, "z_L": self.L_init}

    def cycle(self, z_H: torch.Tensor, z_L: torch.Tensor, x: torch.Tensor, cos_sin: CosSin | None):
        """n reasoning updates with the injection z_H + x, then one answer update from z_L."""
        for _ in range(self.config.L_cycles):
            z_L = self.L_level(z_L, z_H + x, cos_sin)
        z_H = self.L_level(z_H, z_L, cos_sin)
        return z_H, z_L

    def forward(self, carry: Carry, batch: dict[str, torch.Tensor]):
        cos_sin = self.rope()
        x = self.input_embeddings(batch["inputs"], batch["puzzle_identifiers"])   # (B, L, D)

        z_H, z_L = carry["z_H"], carry["z_L"]
        # T-1 cycles improve the latents without gradient ...
        with torch.no_grad():
            for _ in range(self.config.H_cycles - 1):
                z_H, z_L = self.cycle(z_H, z_L, x, cos_sin)
        # ... and the last is back-propagated through all of its n+1 network applications (not HRM's
        # 1-step gradient); x gets gradient through each of its n injections.
        z_H, z_L = self.cycle(z_H, z_L, x, cos_sin)

        logits, q = self.heads(z_H)                                         # the answer latent is decoded
        return {"z_H": z_H.detach(), "z_L": z_L.detach()}, logits, q
