"""Inference in plain NumPy, float32 or float64: the reference the other backends are judged by.

One port per architecture of hrm.models' registry, chosen by the architecture's name:

    numpy_model(arch_dict, weights, dtype)    the step function of the architecture arch_dict["name"] names
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from hrm.ports.numpy.model import Arch, NumpyHRM, NumpyInner, PuzzleArch, evaluate, load_hrm_weights
from hrm.ports.numpy.transformer import NumpyTransformer, TransformerArch
from hrm.ports.numpy.trm import NumpyTRM, TRMArch

PORTS: dict[str, tuple[type[PuzzleArch], type[NumpyInner]]] = {
    "hrm_act_v1": (Arch, NumpyHRM),
    "transformer": (TransformerArch, NumpyTransformer),
    "trm": (TRMArch, NumpyTRM),
}


def port(name: str) -> tuple[type[PuzzleArch], type[NumpyInner]]:
    if name not in PORTS:
        raise ValueError(f"the NumPy port has no architecture {name!r} (it has {', '.join(sorted(PORTS))})")
    return PORTS[name]


def numpy_model(arch: Mapping[str, Any], weights: Mapping[str, np.ndarray], dtype=np.float32) -> NumpyInner:
    arch_class, model_class = port(str(arch.get("name", "hrm_act_v1")))
    return model_class(arch_class.from_dict(arch), weights, dtype)


__all__ = ["Arch", "NumpyHRM", "NumpyTransformer", "NumpyTRM", "PuzzleArch", "TransformerArch", "TRMArch", "PORTS", "evaluate",
           "load_hrm_weights", "numpy_model", "port"]
