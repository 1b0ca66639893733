from __future__ import annotations

import math

import pytest
import torch

from hrm.models import HRMConfig, build_model
from hrm.models.layers import (Attention, RotaryEmbedding, apply_rotary_pos_emb, rms_norm, rotate_half,
                               swiglu_intermediate_size, trunc_normal_init_)


def test_trunc_normal_has_the_requested_std_and_bounds():
    torch.manual_seed(0)
    x = trunc_normal_init_(torch.empty(1_000_000), std=0.5)
    assert float(x.std()) == pytest.approx(0.5, rel=5e-3)
    c = 0.5 * 1.136847
    assert float(x.abs().max()) <= 2 * c + 1e-6
    assert float(x.abs().max()) > 2 * c * 0.99  # really truncated at ±2c, not ±2σ


def test_trunc_normal_with_zero_std_draws_nothing():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert torch.count_nonzero(trunc_normal_init_(torch.ones(10), std=0)) == 0
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("hidden,expected", [(512, 1536), (64, 256), (256, 768), (96, 256)])
def test_swiglu_intermediate_size(hidden, expected):
    assert swiglu_intermediate_size(hidden, 4) == expected


def test_released_architecture_has_27m_parameters():
    cfg = HRMConfig(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, batch_size=1)
    with torch.device("meta"):
        head = build_model(cfg, device="meta")
    assert sum(p.numel() for p in head.parameters()) == 27_275_266


def test_rms_norm_has_no_gain_and_computes_in_float32():
    x = torch.randn(3, 5, 8, dtype=torch.bfloat16)
    y = rms_norm(x, 1e-5)
    assert y.dtype == torch.bfloat16
    ref = x.float() / torch.sqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(y, ref.bfloat16())


def test_rotate_half_convention():
    x = torch.arange(4.0)
    assert rotate_half(x).tolist() == [-2.0, -3.0, 0.0, 1.0]


def test_attention_attends_over_positions_not_heads():
    """SDPA must see (B, H, T, d): permuting positions permutes the output (no mixing across heads)."""
    torch.manual_seed(0)
    attn = Attention(hidden_size=32, num_heads=4)
    h = torch.randn(2, 6, 32)
    perm = torch.randperm(6)
    torch.testing.assert_close(attn(h, None)[:, perm], attn(h[:, perm], None))
    # Explicit softmax(q k^T / sqrt(d)) v per head.
    qkv = attn.qkv_proj(h).view(2, 6, 12, 8)
    q, k, v = qkv[:, :, :4], qkv[:, :, 4:8], qkv[:, :, 8:]
    w = torch.softmax(torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(8), dim=-1)
    out = torch.einsum("bhts,bshd->bthd", w, v).reshape(2, 6, 32)
    torch.testing.assert_close(attn(h, None), attn.o_proj(out))


def test_rope_keeps_dtype_and_norm():
    q = torch.randn(1, 5, 2, 8, dtype=torch.bfloat16)
    k = torch.randn(1, 5, 2, 8, dtype=torch.bfloat16)
    from hrm.models.layers import RotaryEmbedding
    cos, sin = RotaryEmbedding(8, 5, 10000.0)()
    q2, k2 = apply_rotary_pos_emb(q, k, cos, sin)
    assert q2.dtype == torch.bfloat16
    torch.testing.assert_close(q2.float().norm(dim=-1), q.float().norm(dim=-1), rtol=2e-2, atol=2e-2)


def test_bf16_attention_with_gradients_agrees_with_sdpa():
    """Differentiated bf16 blocks on the CPU take the matmul form of attention; SDPA in float32 is the yardstick
    for its output and for the gradients that flow back through it."""
    torch.manual_seed(0)
    attn = Attention(hidden_size=64, num_heads=4)
    cos_sin = RotaryEmbedding(16, max_positions=10, base=10000.0)()
    h = torch.randn(3, 10, 64)

    def run(dtype):
        x = h.to(dtype).requires_grad_()
        out = attn(x, cos_sin)
        out.float().square().sum().backward()
        grads = [x.grad.float()] + [p.grad.float() for p in attn.parameters()]
        attn.zero_grad(set_to_none=True)
        return out.float(), grads

    out_bf16, grads_bf16 = run(torch.bfloat16)
    out_fp32, grads_fp32 = run(torch.float32)                  # the SDPA path
    torch.testing.assert_close(out_bf16, out_fp32, atol=0.05, rtol=0.05)
    for g_bf16, g_fp32 in zip(grads_bf16, grads_fp32):
        assert torch.nn.functional.cosine_similarity(g_bf16.flatten(), g_fp32.flatten(), dim=0) > 0.999
    with torch.no_grad():                                      # without gradients bf16 takes SDPA too
        torch.testing.assert_close(attn(h.bfloat16(), cos_sin).float(), out_fp32, atol=0.05, rtol=0.05)
