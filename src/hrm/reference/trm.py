"""The TRM fixture's procedures for `hrm check-reference` (recorded from the official TRM code).

Besides HRM's groups (hrm.reference.hrm: init, eval, train_noexplore, grad, train, train (torch RNG)),
a TRM fixture holds:

  signsgd    train.call1.signsgd_weights_after: one step of hrm.training.optimizers.SparseSignSGD on the
             puzzle table with the call-1 gradients (duplicate ids summed)
  opt        opt.step{1..3}.*: three real optimiser steps, the sidecar's `optim` procedure: SparseSignSGD on
             the puzzle table, then torch.optim.SGD (standing in for the CUDA-only AdamATan2), then the
             EMA update; loss, halting and step counts per step, the live weights after step 3
  ema        ema.shadow.* (hrm.training.ema.EMA after the three updates) and ema.eval.step*: the eval loop
             with the averaged parameters and the live (SignSGD-trained) puzzle table
  variant_*  the sidecar's `procedure.variants`: each one's config change, weights (its own param.* over
             the main ones, or another variant's), its eval loop, training calls and gradients
"""
from __future__ import annotations

import torch

from hrm.models import build_model
from hrm.reference.hrm import FixtureError, GroupReport, ReferenceRun
from hrm.training.ema import EMA
from hrm.training.optimizers import SparseSignSGD


class TRMReferenceRun(ReferenceRun):
    GROUPS = {
        **{k: v for k, v in ReferenceRun.GROUPS.items() if not k.startswith("variant_")},
        "signsgd": "train.call1.signsgd_weights_after",
        "opt": "opt.step*",
        "ema": "ema.*",
        "variant_mlp_t": "variant_mlp_t.*",
        "variant_mlp_t_deep": "variant_mlp_t_deep.*",
        "variant_learned": "variant_learned.*",
        "variant_pe1": "variant_pe1.*",
    }

    def variants(self) -> dict[str, dict]:
        """The sidecar's procedure.variants whose records the fixture holds."""
        procedure = self.fx.meta.get("procedure")
        described = procedure.get("variants", {}) if isinstance(procedure, dict) else {}
        held = sorted({name.split(".")[0] for name in self.fx.records if name.startswith("variant_")})
        for name in held:
            if not isinstance(described.get(name), dict) or not isinstance(described[name].get("change"), dict):
                raise FixtureError(f"{self.fx.json_path}: records {name}.* but the sidecar has no "
                                   f"'procedure.variants.{name}.change' (the config it was recorded with)")
        return {name: described[name] for name in held}

    def init_records(self) -> list[tuple[str, dict]]:
        # Variants with weights of their own (variant_mlp_t: its blocks differ in shape) and learned positions.
        return [("param.", {})] + [(f"{name}.param.", v["change"]) for name, v in self.variants().items()
                                   if "params_from" not in v]

    def variant_params(self, name: str, variant: dict, head_keys) -> dict[str, torch.Tensor]:
        """The weights a variant was recorded with: its own param.* (or those of `params_from`), each key
        the variant does not hold taken from the main param.*."""
        own = self.fx.params(f"{variant.get('params_from', name)}.param.")
        unused = sorted(set(own) - set(head_keys))
        if unused:
            raise FixtureError(f"{self.fx.json_path}: {name}'s weights {unused} do not fit its model")
        main = self.fx.params()
        return {k: own[k] if k in own else main[k] for k in head_keys if k in own or k in main}

    # --- procedures ---------------------------------------------------------------------------------

    def run_signsgd(self) -> None:
        """One SparseSignSGD step on the puzzle table with the gradients of train call 1 (rows all fresh)."""
        settings = self.fx.meta.get("optim_settings", {})
        head = self.model(halt_exploration_prob=0.0)
        head.train()
        batch = self.fx.batch(1)
        _, loss, _, _, _ = head(head.initial_carry(batch), batch)
        ((1 / self.fx.batch_size) * loss).backward()
        table = head.model.puzzle_emb
        SparseSignSGD(table, lr=settings.get("signsgd_lr", 1e-2), weight_decay=settings.get("signsgd_wd", 0.1)).step()
        self.check("signsgd", "train.call1.signsgd_weights_after", table.weights)

    def run_opt(self) -> None:
        """The sidecar's `optim` procedure: three steps of SignSGD + SGD, each followed by the EMA update."""
        settings = self.fx.meta.get("optim_settings", {})
        head = self.model(halt_exploration_prob=0.0)
        head.train()
        ema = EMA(head, mu=settings.get("ema_mu", 0.5))
        optimisers = [SparseSignSGD(head.model.puzzle_emb, lr=settings.get("signsgd_lr", 1e-2),
                                    weight_decay=settings.get("signsgd_wd", 0.1)),
                      torch.optim.SGD(head.parameters(), lr=settings.get("sgd_lr", 0.05))]
        torch.manual_seed(self.fx.meta["seeds"].get("train_rng", 1234))
        carry = head.initial_carry(self.fx.batch(1))
        steps = self.fx.calls("opt", "step")
        for n in range(1, steps + 1):
            carry, loss, _, _, _ = head(carry, self.fx.batch(n))
            ((1 / self.fx.batch_size) * loss).backward()
            for optimiser in optimisers:
                optimiser.step()
                optimiser.zero_grad()
            ema.update(head)
            self.check("opt", f"opt.step{n}.loss", loss)
            self.check("opt", f"opt.step{n}.halted", carry.halted)
            self.check("opt", f"opt.step{n}.steps", carry.steps)
        for k, v in head.state_dict().items():
            self.check("opt", f"opt.step{steps}.param.{k}", v)
        for k, v in ema.shadow.items():
            self.check("ema", f"ema.shadow.{k}", v)
        self.run_eval("ema", ema.copy(head), "ema.eval")

    def run_variants(self) -> None:
        for name, variant in self.variants().items():
            changes = variant["change"]
            head_keys = self.model_keys(**changes)
            params = self.variant_params(name, variant, head_keys)
            if self.fx.has_prefix(f"{name}.eval."):
                self.run_eval(name, self.model(params, **changes), f"{name}.eval")
            if self.fx.has_prefix((f"{name}.train_noexplore.", f"{name}.grad.")):
                self.run_train(name, f"{name}.train_noexplore", inject=False, params=params,
                               call1_grads=f"{name}.grad", **{**changes, "halt_exploration_prob": 0.0})

    def model_keys(self, **changes) -> list[str]:
        return list(build_model(self.fx.config(**changes), forward_dtype=torch.float32).state_dict())

    def run_all(self) -> dict[str, GroupReport]:
        groups = super().run_all()                      # init, eval, train*, grad, and run_variants
        if self.fx.has("train.call1.signsgd_weights_after"):
            self.run_signsgd()
        if self.fx.has_prefix(("opt.", "ema.")):
            self.run_opt()
        self.absent = {group: self._absent_reason(group) for group in self.GROUPS if group not in self.groups}
        # The report lists the groups in the fixture's order of procedures.
        self.groups = {g: self.groups[g] for g in self.GROUPS if g in self.groups}
        return self.groups
