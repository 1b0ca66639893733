"""The transformer baseline in plain NumPy (hrm.models.transformer): one pass of its block stack.

    z_H = Blocks(z_H + x);  logits, q_halt, q_continue from z_H (as HRM's heads)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from hrm.act_driver import StepOutputs
from hrm.ports.numpy.model import NumpyInner, PuzzleArch, reasoning_module


@dataclass(frozen=True)
class TransformerArch(PuzzleArch):
    L_layers: int = 8
    halt_max_steps: int = 1


class NumpyTransformer(NumpyInner):
    """One ACT step of the baseline; an `hrm.act_driver.StepFunction`."""

    def __init__(self, arch: TransformerArch, weights: Mapping[str, np.ndarray], dtype: str | np.dtype = np.float32):
        super().__init__(arch, weights, dtype)
        self.blocks = self.stack("blocks", arch.L_layers)
        self.carry_init = {"z_H": self.get("H_init")}

    def __call__(self, carry: Mapping[str, np.ndarray], inputs: np.ndarray,
                 puzzle_identifiers: np.ndarray) -> StepOutputs:
        x = self.input_embeddings(np.asarray(inputs), np.asarray(puzzle_identifiers))
        z_H = reasoning_module(np.asarray(carry["z_H"], dtype=self.dtype), x, self.blocks, self.arch, self.cos_sin)
        return StepOutputs({"z_H": z_H}, *self.heads(z_H))
