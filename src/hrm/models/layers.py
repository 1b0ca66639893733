"""Building blocks shared by every architecture: casted layers, RMSNorm, RoPE, attention, SwiGLU.

Master weights are float32; each layer casts them to the dtype of the activations on every call
(semantics §3). Initialisation is the JAX-style truncated normal of semantics §4.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

try:  # flash-attn is optional and only used on CUDA tensors
    from flash_attn_interface import flash_attn_func  # FlashAttention 3
except ImportError:
    try:
        from flash_attn import flash_attn_func  # FlashAttention 2
    except ImportError:
        flash_attn_func = None

CosSin = tuple[torch.Tensor, torch.Tensor]


def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0):
    """Fill `tensor` with a truncated normal whose standard deviation is exactly `std`.

    NOTE: this is JAX's construction, not `nn.init.trunc_normal_`: the underlying normal is cut at
    ±2 of *its* std and rescaled so that the result has std `std`. The RNG calls (`uniform_`, then
    `erfinv_`) are made in the original's order so that seeded inits are bit-identical.
    """
    with torch.no_grad():
        if std == 0:
            tensor.zero_()  # no RNG consumed, as in the original
            return tensor
        sqrt2 = math.sqrt(2)
        a = math.erf(lower / sqrt2)
        b = math.erf(upper / sqrt2)
        z = (b - a) / 2
        c = (2 * math.pi) ** -0.5
        pdf_u = c * math.exp(-0.5 * lower**2)
        pdf_l = c * math.exp(-0.5 * upper**2)
        comp_std = std / math.sqrt(1 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z) ** 2)

        tensor.uniform_(a, b)
        tensor.erfinv_()
        tensor.mul_(sqrt2 * comp_std)
        tensor.clip_(lower * comp_std, upper * comp_std)
    return tensor


class CastedLinear(nn.Module):
    """y = x·Wᵀ (+ b) with a float32 master weight cast to x's dtype. LeCun truncated-normal init."""

    def __init__(self, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(out_features, in_features), std=1.0 / math.sqrt(in_features)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


class CastedEmbedding(nn.Module):
    """Embedding with a float32 table; the whole table is cast to `cast_to` before the lookup."""

    def __init__(self, num_embeddings: int, embedding_dim: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.embedding_weight = nn.Parameter(trunc_normal_init_(torch.empty(num_embeddings, embedding_dim), std=init_std))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.embedding_weight.to(self.cast_to))


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm without a gain, computed in float32 and cast back (semantics §5.1)."""
    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)
    return x.to(dtype)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for T = puzzle positions + sequence positions, rotate-half convention (semantics §5.2)."""

    def __init__(self, head_dim: int, max_positions: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        t = torch.arange(max_positions, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)                     # (T, d/2)
        emb = torch.cat((freqs, freqs), dim=-1)              # (T, d)
        self.cos_cached = nn.Buffer(emb.cos(), persistent=False)
        self.sin_cached = nn.Buffer(emb.sin(), persistent=False)

    def forward(self) -> CosSin:
        return self.cos_cached, self.sin_cached


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """q, k: (B, T, H, d); cos, sin: (T, d) in float32. Rotation in float32, result in q's dtype."""
    dtype = q.dtype
    q, k = q.to(cos.dtype), k.to(cos.dtype)
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)          # broadcast over heads
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    return q.to(dtype), k.to(dtype)


class Attention(nn.Module):
    """Non-causal multi-head self-attention with no padding mask (semantics §5.3)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * num_heads * self.head_dim, bias=False)
        self.o_proj = CastedLinear(num_heads * self.head_dim, hidden_size, bias=False)

    def forward(self, h: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        B, T, _ = h.shape
        qkv = self.qkv_proj(h).view(B, T, 3 * self.num_heads, self.head_dim)   # heads: q | k | v
        q, k, v = qkv.split(self.num_heads, dim=2)                              # each (B, T, H, d)
        if cos_sin is not None:
            q, k = apply_rotary_pos_emb(q, k, *cos_sin)

        if flash_attn_func is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
            out = flash_attn_func(q, k, v, causal=False)
            out = out[0] if isinstance(out, tuple) else out                     # FA3 returns (out, lse)
        else:
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)           # (B, H, T, d)
            if q.requires_grad and q.device.type == "cpu" and q.dtype == torch.bfloat16:
                # NOTE: torch's CPU flash-attention backward in bf16 is ~4x slower than the matmul form
                # (27M shapes: 44 against 12 ms per block, fwd + bwd); only the differentiated blocks get here.
                scores = (q @ k.transpose(-2, -1)).float() * self.head_dim**-0.5
                out = torch.softmax(scores, dim=-1).to(v.dtype) @ v
            else:
                out = F.scaled_dot_product_attention(q, k, v)
            out = out.transpose(1, 2)
        return self.o_proj(out.reshape(B, T, -1))


def swiglu_intermediate_size(hidden_size: int, expansion: float) -> int:
    """round(expansion·D·2/3) rounded up to a multiple of 256 (Python's banker's `round`, as the original)."""
    inter = round(expansion * hidden_size * 2 / 3)
    return -(inter // -256) * 256


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, expansion: float):
        super().__init__()
        inter = swiglu_intermediate_size(hidden_size, expansion)
        self.gate_up_proj = CastedLinear(hidden_size, 2 * inter, bias=False)
        self.down_proj = CastedLinear(inter, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)     # first half gates, second half is "up"
        return self.down_proj(F.silu(gate) * up)
