"""Models: a registry of architectures, each an inner model and its config, wrapped by one ACT wrapper.

    ARCHITECTURES["hrm_act_v1"] = Architecture(HRMConfig, HRMInner)
    build_model(config, forward_dtype)  ->  ACTLossHead(ACTModel(Inner(config), config.halting_policy))

NOTE: the registry maps names to classes that are imported here, explicitly: there are no "module@Class"
string lookups as in the originals. The originals' names are accepted as aliases so that their
`all_config.yaml` files load. Every architecture shares hrm.models.layers, hrm.models.act (the ACT wrapper)
and hrm.models.losses (the loss head); a config class declares `name`, `halt_max_steps`,
`halt_exploration_prob`, `loss` and a `halting_policy`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from hrm.models.act import ACTCarry, ACTModel, Carry
from hrm.models.hrm_act_v1 import HRMConfig, HRMInner, LossConfig
from hrm.models.losses import IGNORE_LABEL_ID, ACTLossHead
from hrm.models.transformer import TransformerConfig, TransformerInner
from hrm.models.trm import TRMConfig, TRMInner


@dataclass(frozen=True)
class Architecture:
    name: str
    config: type                      # a dataclass of hyper-parameters, the originals' field names
    inner: type[torch.nn.Module]      # inner(config, forward_dtype): one ACT segment, declares its carry
    summary: str


ARCHITECTURES: dict[str, Architecture] = {
    "hrm_act_v1": Architecture("hrm_act_v1", HRMConfig, HRMInner,
                               "HRM ACT v1: two recurrent modules (H, L), 1-step gradient, Q-learning halting"),
    "transformer": Architecture("transformer", TransformerConfig, TransformerInner,
                                "plain transformer baseline: the same blocks in one stack, one pass, no recursion"),
    "trm": Architecture("trm", TRMConfig, TRMInner,
                        "TRM: one small network for the latent and answer updates, full gradient through the "
                        "last cycle, halting on q_halt > 0"),
}
ALIASES = {
    "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1": "hrm_act_v1",
    "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1": "trm",
}
# Keys of the originals' arch configs that no hrm architecture field holds: `causal` (always False, ignored
# by the original too) and `forward_dtype`, which is a run setting here (hrm.training.config).
IGNORED_ARCH_KEYS = {"causal", "forward_dtype"}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def architecture(name: str) -> Architecture:
    name = canonical_name(name)
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def config_fields(config_class: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


def arch_config(values: dict[str, Any]) -> Any:
    """The config of the architecture `values["name"]` names (default hrm_act_v1), from a plain dict.

    Raises ValueError naming unknown keys; the originals' `loss.name` and IGNORED_ARCH_KEYS are accepted.
    """
    values = dict(values)
    name = canonical_name(str(values.pop("name", "hrm_act_v1")))
    cls = architecture(name).config
    loss = values.pop("loss", None) or {}
    unknown = set(values) - config_fields(cls) - IGNORED_ARCH_KEYS
    if unknown:
        raise ValueError(f"unknown {name} architecture keys {sorted(unknown)}")
    arch = {k: v for k, v in values.items() if k in config_fields(cls)}
    loss_type = loss.get("loss_type", LossConfig.loss_type) if isinstance(loss, dict) else LossConfig.loss_type
    return cls(**arch, name=name, loss=LossConfig(loss_type=loss_type))


def build_model(config, forward_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> ACTLossHead:
    """The model wrapped in its loss head, with float32 master weights, on `device`.

    NOTE: parameters are created on the CPU and then moved, so that a seeded init is the same on every
    device (the originals built on CUDA and drew from the CUDA RNG).
    """
    inner = architecture(config.name).inner(config, forward_dtype=forward_dtype)
    return ACTLossHead(ACTModel(inner, config.halting_policy), loss_type=config.loss.loss_type).to(device)


__all__ = ["HRMConfig", "HRMInner", "TransformerConfig", "TransformerInner", "TRMConfig", "TRMInner", "LossConfig", "ACTCarry", "ACTModel", "Carry", "ACTLossHead", "IGNORE_LABEL_ID",
           "ARCHITECTURES", "Architecture", "architecture", "arch_config", "build_model"]
