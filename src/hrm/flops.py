"""FLOP counts of a model as its recurrence actually runs, for model FLOPs utilisation (MFU).

Counted (multiply-add = 2 FLOPs; matmuls only, which is where the time goes):
  * every block application of a segment, the no-grad ones included (the architecture's config says how
    many: `block_applications()`; HRM: N·M L-updates of L_layers blocks and N H-updates of H_layers blocks);
  * in training, the extra forward for the Q target (a second full segment) where the halting policy has one;
  * the backward of the differentiated blocks (2× their forward; HRM: the last L and H update), and of the heads.
Norms, RoPE, softmax and elementwise ops are left out; they are a few percent at these sizes.
"""
from __future__ import annotations

from hrm.models.layers import swiglu_intermediate_size


def block_flops(cfg, batch: int) -> int:
    """One transformer block forward on (batch, T, D) (attention, or TRM's mlp_t in its place)."""
    D = cfg.hidden_size
    T = cfg.puzzle_emb_len + cfg.seq_len
    inter = swiglu_intermediate_size(D, cfg.expansion)
    tokens = batch * T
    mlp = 2 * tokens * (D * 2 * inter + inter * D)           # gate_up and down
    if getattr(cfg, "mlp_t", False):
        # TRM's mlp_t: a SwiGLU of width T over the positions of each of the batch·D channels, no attention.
        inter_t = swiglu_intermediate_size(T, cfg.expansion)
        return 2 * batch * D * (T * 2 * inter_t + inter_t * T) + mlp
    projections = 2 * tokens * (D * 3 * D + D * D)          # qkv and o
    attention = 2 * batch * T * T * D * 2                    # q·kᵀ and weights·v, all heads
    return projections + attention + mlp


def heads_flops(cfg, batch: int) -> int:
    T = cfg.puzzle_emb_len + cfg.seq_len
    return 2 * batch * T * cfg.hidden_size * cfg.vocab_size + 2 * batch * cfg.hidden_size * 2


def segment_flops(cfg, batch: int) -> int:
    """One inner forward: every block application plus the output heads."""
    applied, _ = cfg.block_applications()
    return applied * block_flops(cfg, batch) + heads_flops(cfg, batch)


def train_step_flops(cfg, batch: int) -> int:
    """One training step: segment + Q-target segment + backward of the differentiated blocks and heads."""
    _, differentiated = cfg.block_applications()
    forward = segment_flops(cfg, batch)
    q_target = segment_flops(cfg, batch) if cfg.halt_max_steps > 1 and cfg.halting_policy.q_target else 0
    backward = 2 * differentiated * block_flops(cfg, batch) + 2 * heads_flops(cfg, batch)
    return forward + q_target + backward


def eval_puzzle_flops(cfg) -> int:
    """One puzzle under the original eval protocol: halt_max_steps segments."""
    return cfg.halt_max_steps * segment_flops(cfg, 1)
