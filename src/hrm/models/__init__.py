"""Models. Architectures are chosen by `arch.name` through a small registry of classes.

NOTE: the registry maps names to classes that are imported here, explicitly: there are no
"module@Class" string lookups as in the original. The original's names are accepted as aliases so
that its `all_config.yaml` files load. TRM and a transformer baseline will be added as siblings that
share `hrm.models.layers`.
"""
from __future__ import annotations

import torch

from hrm.models.hrm_act_v1 import HRM, ACTCarry, HRMConfig, InnerCarry, LossConfig
from hrm.models.losses import IGNORE_LABEL_ID, ACTLossHead

ARCHITECTURES: dict[str, type[torch.nn.Module]] = {
    "hrm_act_v1": HRM,
}
ALIASES = {
    "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1": "hrm_act_v1",
}


def architecture(name: str) -> type[torch.nn.Module]:
    name = ALIASES.get(name, name)
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def build_model(config: HRMConfig, forward_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> ACTLossHead:
    """The model wrapped in its loss head, with float32 master weights, on `device`.

    NOTE: parameters are created on the CPU and then moved, so that a seeded init is the same on every
    device (the original built on CUDA and drew from the CUDA RNG).
    """
    model = architecture(config.name)(config, forward_dtype=forward_dtype)
    return ACTLossHead(model, loss_type=config.loss.loss_type).to(device)


__all__ = ["HRM", "HRMConfig", "LossConfig", "ACTCarry", "InnerCarry", "ACTLossHead", "IGNORE_LABEL_ID",
           "ARCHITECTURES", "architecture", "build_model"]
