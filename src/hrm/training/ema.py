"""An exponential moving average of a model's parameters (TRM's `ema=True`, rate 0.999 in every run).

    ema = EMA(model, mu=0.999)        # the shadow starts as a copy of the parameters
    ...  optimiser steps ...;  ema.update(model)           after every training step
    with ema.averaged(model):  evaluate(model)             the averaged weights, swapped in and back
    averaged = ema.copy(model)                             or a deep copy holding them (the original's ema_copy)
    state = ema.state_dict();  ema.load_state_dict(state)  exact resume

The shadow covers the trainable nn.Parameters only, under their `named_parameters()` names. Buffers (the
puzzle-embedding table, which its own SignSGD trains, and the initial states) are not averaged: the
averaged model uses the live ones, as the original does.

Update, per parameter θ with shadow s:  s ← (1 − mu)·θ + mu·s   (the original's order of operations).
NOTE: the original keeps no shadow in its checkpoints (its runs cannot resume the average); here the
shadow is a state dict of its own, for the trainer to save beside the model.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, mu: float = 0.999):
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f"EMA rate mu must be in [0, 1], got {mu}")
        self.mu = mu
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    def _parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        if params.keys() != self.shadow.keys():
            missing, extra = sorted(self.shadow.keys() - params.keys()), sorted(params.keys() - self.shadow.keys())
            raise ValueError(f"the model's parameters are not the EMA's (missing {missing}, unexpected {extra})")
        return params

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """s ← (1 − mu)·θ + mu·s for every parameter; call after each optimiser step."""
        for name, p in self._parameters(model).items():
            self.shadow[name] = (1.0 - self.mu) * p.detach() + self.mu * self.shadow[name]

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the averages (buffers untouched)."""
        for name, p in self._parameters(model).items():
            p.copy_(self.shadow[name])

    def copy(self, model: nn.Module) -> nn.Module:
        """A deep copy of `model` holding the averaged parameters and the model's live buffers."""
        averaged = copy.deepcopy(model)
        self.copy_to(averaged)
        return averaged

    @contextmanager
    def averaged(self, model: nn.Module) -> Iterator[nn.Module]:
        """Within the block `model` holds the averaged parameters; its own come back afterwards (also on
        an exception). Cheaper than `copy` for a large model: one spare copy of the parameters only."""
        params = self._parameters(model)
        live = {name: p.detach().clone() for name, p in params.items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(live[name])

    def state_dict(self) -> dict:
        return {"mu": self.mu, "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        shadow = state["shadow"]
        if shadow.keys() != self.shadow.keys():
            missing, extra = sorted(self.shadow.keys() - shadow.keys()), sorted(shadow.keys() - self.shadow.keys())
            raise ValueError(f"EMA state does not fit the model (missing {missing}, unexpected {extra})")
        for name, value in shadow.items():
            if value.shape != self.shadow[name].shape:
                raise ValueError(f"EMA state {name}: shape {tuple(value.shape)}, the model's is "
                                 f"{tuple(self.shadow[name].shape)}")
        self.mu = float(state["mu"])
        self.shadow = {k: v.detach().clone().to(self.shadow[k].device, self.shadow[k].dtype) for k, v in shadow.items()}
