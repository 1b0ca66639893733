"""The loss head: LM loss, Q-halt and Q-continue losses, and the raw metric sums (semantics §8)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hrm.data.format import IGNORE_LABEL_ID


def stablemax(x: torch.Tensor, epsilon: float = 1e-30) -> torch.Tensor:
    """s(x) = x + 1 for x ≥ 0 and 1 / (1 - x) for x < 0: a softmax surrogate with linear growth."""
    return torch.where(x < 0, 1 / (1 - x + epsilon), x + 1)


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    s_x = stablemax(x)
    return torch.log(s_x / torch.sum(s_x, dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-token stablemax cross-entropy, 0 at ignored labels.

    NOTE: computed in float64 as the original does: in float32 a logit of exactly 1.0 makes the unused
    branch of the `where` produce 0·∞ = NaN in the gradient. Devices without float64 (MPS) fall back to
    float32.
    """
    dtype = torch.float32 if logits.device.type == "mps" else torch.float64
    logprobs = log_stablemax(logits.to(dtype), dim=-1)
    valid = labels != ignore_index
    safe_labels = torch.where(valid, labels, 0).to(torch.long)
    label_logprobs = torch.gather(logprobs, index=safe_labels.unsqueeze(-1), dim=-1).squeeze(-1)
    return -torch.where(valid, label_logprobs, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    # NOTE: reshape, not the original's view: the logits without their puzzle positions are a strided slice,
    # which view refuses when they are float32 already (in bf16 the cast copies, so the original never saw it).
    flat = F.cross_entropy(logits.to(torch.float32).reshape(-1, logits.shape[-1]), labels.to(torch.long).reshape(-1),
                           ignore_index=ignore_index, reduction="none")
    return flat.view(labels.shape)


LOSS_FUNCTIONS = {
    "stablemax_cross_entropy": stablemax_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
}


class ACTLossHead(nn.Module):
    """Wraps an ACT model. Its state-dict keys (`model.inner.…`) are the original's."""

    def __init__(self, model: nn.Module, loss_type: str = "stablemax_cross_entropy"):
        super().__init__()
        if loss_type not in LOSS_FUNCTIONS:
            raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {sorted(LOSS_FUNCTIONS)}")
        self.model = model
        self.loss_fn = LOSS_FUNCTIONS[loss_type]

    def initial_carry(self, batch: dict[str, torch.Tensor]):
        return self.model.initial_carry(batch)

    def forward(self, carry, batch: dict[str, torch.Tensor], return_keys: tuple[str, ...] = ()):
        """Returns (new_carry, loss, metrics, detached_outputs, all_halted). Metrics are raw sums."""
        new_carry, outputs = self.model(carry, batch)
        # The answer, for evaluators (TRM's loss head returns it; HRM's callers take the argmax themselves).
        outputs["preds"] = torch.argmax(outputs["logits"], dim=-1)
        # NOTE: labels come from the carry: rows that did not halt are still working on their old puzzle.
        labels = new_carry.current_data["labels"]
        lm_loss, q_halt_loss, metrics = act_losses(outputs["logits"], labels, outputs["q_halt_logits"],
                                                   new_carry.steps, new_carry.halted, self.loss_fn)

        q_continue_loss = 0
        if "target_q_continue" in outputs:
            q_continue_loss = F.binary_cross_entropy_with_logits(
                outputs["q_continue_logits"], outputs["target_q_continue"], reduction="sum")
            metrics["q_continue_loss"] = q_continue_loss.detach()

        detached = {k: outputs[k].detach() for k in return_keys if k in outputs}
        loss = lm_loss + 0.5 * (q_halt_loss + q_continue_loss)
        return new_carry, loss, metrics, detached, new_carry.halted.all()


def act_losses(logits: torch.Tensor, labels: torch.Tensor, q_halt_logits: torch.Tensor, steps: torch.Tensor,
               halted: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(lm_loss, q_halt_loss, metric sums) of one ACT call (semantics §8.1, §8.2).

    logits (B, S, V), labels (B, S), q_halt_logits (B,), steps (B,) and halted (B,) after the call. The losses
    carry the gradient; the metrics count halted rows that have labels. The loss head calls this in training;
    evaluation calls it on the driver's final outputs, so both report the same figures by the same code.
    """
    with torch.no_grad():
        mask = labels != IGNORE_LABEL_ID
        loss_counts = mask.sum(-1)                                      # n_b
        loss_divisor = loss_counts.clamp_min(1).unsqueeze(-1)           # max(n_b, 1)
        is_correct = mask & (torch.argmax(logits, dim=-1) == labels)
        seq_is_correct = is_correct.sum(-1) == loss_counts              # padding rows count as correct
        valid = halted & (loss_counts > 0)                              # metrics: halted rows with labels
        metrics = {
            "count": valid.sum(),
            "accuracy": torch.where(valid, (is_correct.to(torch.float32) / loss_divisor).sum(-1), 0).sum(),
            "exact_accuracy": (valid & seq_is_correct).sum(),
            "q_halt_accuracy": (valid & ((q_halt_logits >= 0) == seq_is_correct)).sum(),
            "steps": torch.where(valid, steps, 0).sum(),
        }

    # lm_loss is a sum over rows of per-row mean token losses.
    lm_loss = (loss_fn(logits, labels) / loss_divisor).sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(q_halt_logits, seq_is_correct.to(q_halt_logits.dtype),
                                                     reduction="sum")
    metrics["lm_loss"] = lm_loss.detach()
    metrics["q_halt_loss"] = q_halt_loss.detach()
    return lm_loss, q_halt_loss, metrics
