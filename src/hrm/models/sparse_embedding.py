"""The per-puzzle embedding table, trained sparsely by SignSGD (semantics §6.2, §9.3).

The table is a *buffer*, not a Parameter, so the dense optimiser never sees it. In training, the rows of
the current batch are copied into `local_weights`, a leaf that collects one gradient row per batch row.
"""
from __future__ import annotations

import torch
from torch import nn

from hrm.models.layers import trunc_normal_init_


class CastedSparseEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, batch_size: int, init_std: float, cast_to: torch.dtype):
        super().__init__()
        self.cast_to = cast_to
        self.weights = nn.Buffer(trunc_normal_init_(torch.empty(num_embeddings, embedding_dim), std=init_std), persistent=True)
        # Per-batch working copies; not saved.
        self.local_weights = nn.Buffer(torch.zeros(batch_size, embedding_dim, requires_grad=True), persistent=False)
        self.local_ids = nn.Buffer(torch.zeros(batch_size, dtype=torch.int32), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.weights[ids].to(self.cast_to)                 # eval: plain lookup, no gradient

        if ids.shape[0] != self.local_weights.shape[0]:
            raise ValueError(
                f"training batch has {ids.shape[0]} rows but the puzzle embedding was built for batch_size="
                f"{self.local_weights.shape[0]}; training batches must be full (the loader drops the last one)"
            )
        with torch.no_grad():
            self.local_weights.copy_(self.weights[ids])
            self.local_ids.copy_(ids)
        return self.local_weights.to(self.cast_to)
