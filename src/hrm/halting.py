"""The halting rule of ACT, written once, as data (semantics §7).

An ACT model halts a row when its Q head says so. Architectures differ in what "says so" means:

    "q_halt > q_continue"   HRM ACT v1: the Q head's two logits compared (Q-learning on both)
    "q_halt > 0"            TRM (no_ACT_continue): sigmoid(q_halt) > 0.5, the continue logit is unused

The rule travels as one of these strings: in the model's halting policy, in export metadata (the browser
solver reads it from there) and in evaluation results, so that every consumer applies the same rule.

NOTE: this module imports nothing but the standard library. `says_halt` works on NumPy arrays, torch tensors
and MLX arrays alike (only `>` is used), so the torch-free ports share it.
"""
from __future__ import annotations

from dataclasses import dataclass

Q_HALT_GT_Q_CONTINUE = "q_halt > q_continue"
Q_HALT_GT_ZERO = "q_halt > 0"
HALT_RULES = (Q_HALT_GT_Q_CONTINUE, Q_HALT_GT_ZERO)


def check_rule(rule: str) -> str:
    if rule not in HALT_RULES:
        raise ValueError(f"unknown halt rule {rule!r}; known rules: {', '.join(repr(r) for r in HALT_RULES)}")
    return rule


def says_halt(rule: str, q_halt, q_continue):
    """Boolean array: True where the Q head says halt under `rule` (strict comparisons, as the originals)."""
    if rule == Q_HALT_GT_Q_CONTINUE:
        return q_halt > q_continue
    if rule == Q_HALT_GT_ZERO:
        return q_halt > 0
    raise ValueError(f"unknown halt rule {rule!r}")


@dataclass(frozen=True)
class HaltingPolicy:
    """How an architecture halts in training, declared as data.

    rule           the halt rule above
    q_target       True: a second inner forward on the updated carry gives the Q-continue target (HRM's
                   Q-learning); False: no target, no q_continue loss (TRM's default)
    """
    rule: str = Q_HALT_GT_Q_CONTINUE
    q_target: bool = True

    def __post_init__(self):
        check_rule(self.rule)
