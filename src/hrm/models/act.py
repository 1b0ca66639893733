"""The ACT wrapper, shared by every architecture: carry, reset of halted rows, halting, exploration, Q target.

One call = one ACT segment (a "supervision step") for every row of the batch (HRM and TRM alike):

    1. rows that halted on the previous call restart: their carry takes the inner model's initial states,
       their step count is zeroed and they take the new batch's row; the other rows keep their puzzle;
    2. the inner model runs one segment: (carry, puzzle) -> (new carry, logits, q_halt, q_continue);
    3. halting: a row halts at halt_max_steps; in training also where the halting policy's rule says so,
       delayed by exploration; with `policy.q_target` a second inner forward gives the Q-continue target.

The inner model declares its carry: `carry_init()` maps each carry tensor's name (HRM: z_H, z_L) to the
(D,) state a fresh row starts from at every position, and `carry_positions` is T. Nothing here names them.

Shapes: B batch, T = puzzle positions + sequence positions, D hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hrm.halting import HaltingPolicy, says_halt

Carry = dict[str, torch.Tensor]          # name -> (B, T, D) in the forward dtype


@dataclass
class ACTCarry:
    inner_carry: Carry
    steps: torch.Tensor                  # (B,) int32: segments run on the current puzzle
    halted: torch.Tensor                 # (B,) bool: the row takes a new puzzle on the next call
    current_data: dict[str, torch.Tensor]


def empty_carry(inner: nn.Module, batch_size: int, device: torch.device | None = None) -> Carry:
    """Zeros in the carry's shape. NOTE: the originals leave these uninitialised; every row is reset before
    use, so zeros are equivalent and keep checkpoints of the carry deterministic."""
    shape = (batch_size, inner.carry_positions, inner.config.hidden_size)
    return {name: torch.zeros(shape, dtype=inner.forward_dtype, device=device) for name in inner.carry_init()}


def reset_carry(inner: nn.Module, reset: torch.Tensor, carry: Carry) -> Carry:
    """Rows where `reset` is True take the initial states, broadcast over positions."""
    reset = reset.view(-1, 1, 1)
    return {name: torch.where(reset, init, carry[name]) for name, init in inner.carry_init().items()}


class ACTModel(nn.Module):
    """An inner model plus its halting policy. State-dict keys are `inner.…`, as in the originals."""

    def __init__(self, inner: nn.Module, policy: HaltingPolicy):
        super().__init__()
        self.inner = inner
        self.policy = policy

    @property
    def config(self):
        return self.inner.config

    @property
    def puzzle_emb(self):
        return getattr(self.inner, "puzzle_emb", None)

    def initial_carry(self, batch: dict[str, torch.Tensor]) -> ACTCarry:
        B = batch["inputs"].shape[0]
        device = batch["inputs"].device
        return ACTCarry(
            inner_carry=empty_carry(self.inner, B, device),
            steps=torch.zeros(B, dtype=torch.int32, device=device),
            halted=torch.ones(B, dtype=torch.bool, device=device),          # every row starts by resetting
            current_data={k: torch.zeros_like(v) for k, v in batch.items()},
        )

    def exploration_draws(self, q_halt: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two random draws of exploration, in the originals' order (uniform, then randint).

        Kept as a method so that tests can inject recorded draws.
        """
        return (torch.rand_like(q_halt),
                torch.randint_like(steps, low=2, high=self.config.halt_max_steps + 1))

    def forward(self, carry: ACTCarry, batch: dict[str, torch.Tensor]):
        cfg = self.config
        # 1. Halted rows restart from the initial states and take the new batch's row; others keep theirs.
        inner_carry = reset_carry(self.inner, carry.halted, carry.inner_carry)
        steps = torch.where(carry.halted, 0, carry.steps)
        current_data = {
            k: torch.where(carry.halted.view((-1,) + (1,) * (batch[k].ndim - 1)), batch[k], v)
            for k, v in carry.current_data.items()
        }

        # 2. One segment.
        inner_carry, logits, (q_halt, q_continue) = self.inner(inner_carry, current_data)
        outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}

        # 3. Halting and the Q-learning target.
        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= cfg.halt_max_steps
            halted = is_last
            # In eval every row runs halt_max_steps segments, so batches stay in lock-step.
            if self.training and cfg.halt_max_steps > 1:
                halted = halted | says_halt(self.policy.rule, q_halt, q_continue)
                # Exploration can only delay halting, to a minimum drawn from U{2..halt_max_steps}.
                # NOTE: both draws are made even when the probability is 0, as in the originals.
                rand, randint = self.exploration_draws(q_halt, steps)
                min_halt_steps = (rand < cfg.halt_exploration_prob) * randint
                halted = halted & (steps >= min_halt_steps)

                if self.policy.q_target:
                    # Target from a second full forward on the updated carry (no target network).
                    _, _, (next_q_halt, next_q_continue) = self.inner(inner_carry, current_data)
                    outputs["target_q_continue"] = torch.sigmoid(
                        torch.where(is_last, next_q_halt, torch.maximum(next_q_halt, next_q_continue)))

        return ACTCarry(inner_carry, steps, halted, current_data), outputs
