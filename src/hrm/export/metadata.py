"""The JSON that travels with every export: what the graph computes and how to drive it.

    {"format": "hrm-export", "version": 1, "kind": "step" | "whole_puzzle", "backend": "onnx" | "mlir",
     "seq_len", "vocab_size", "halt_max_steps", "puzzle_emb_len", "hidden_size",
     "carry_shape": [1, T, D],                  # the batch dimension (0) is dynamic
     "carry_init": {"z_H": [D floats], "z_L": [D floats]},   # a fresh row's carry at every position
     "io": {"inputs": [{"name", "role", "dtype", "shape"}], "outputs": [...]},
     "arch": {...HRMConfig...}, "source": checkpoint path}

Roles of the one-step graph: inputs z_H, z_L, inputs, puzzle_identifiers; outputs z_H, z_L, logits,
q_halt, q_continue. The ONNX export stores the same JSON in the model's metadata (key "hrm"), and
beside it as `<file>.json`, which the browser visualiser reads as its `onnx` section.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hrm.files import atomic_write_text
from hrm.models.hrm_act_v1 import HRMConfig, HRMInner

FORMAT = "hrm-export"
VERSION = 1

STEP_ROLES = {
    "inputs": [("z_H", "z_H"), ("z_L", "z_L"), ("inputs", "inputs"), ("puzzle_identifiers", "puzzle_identifiers")],
    "outputs": [("new_z_H", "z_H"), ("new_z_L", "z_L"), ("logits", "logits"), ("q_halt", "q_halt"),
                ("q_continue", "q_continue")],
}
WHOLE_ROLES = {
    "inputs": [(n, n) for n in ("inputs", "puzzle_identifiers", "halt_early")],
    "outputs": [(n, n) for n in ("logits", "q_halt", "q_continue", "steps", "step_predictions", "step_q_halt",
                                 "step_q_continue")],
}


def _shapes(config: HRMConfig, T: int) -> dict[str, tuple[list, str]]:
    S, D, V, K = config.seq_len, config.hidden_size, config.vocab_size, config.halt_max_steps
    carry = (["batch", T, D], "float32")
    return {
        "z_H": carry, "z_L": carry, "new_z_H": carry, "new_z_L": carry,
        "inputs": (["batch", S], "int32"), "puzzle_identifiers": (["batch"], "int32"),
        "halt_early": ([], "bool"),
        "logits": (["batch", S, V], "float32"), "q_halt": (["batch"], "float32"),
        "q_continue": (["batch"], "float32"), "steps": (["batch"], "int32"),
        "step_predictions": (["batch", K, S], "int64"), "step_q_halt": (["batch", K], "float32"),
        "step_q_continue": (["batch", K], "float32"),
    }


def describe(inner: HRMInner, kind: str, backend: str, source: str | None = None) -> dict[str, Any]:
    """The metadata of an export of `inner` (kind "step" or "whole_puzzle")."""
    config = inner.config
    T = inner.puzzle_emb_len + config.seq_len
    shapes = _shapes(config, T)
    roles = STEP_ROLES if kind == "step" else WHOLE_ROLES
    io = {side: [{"name": name, "role": role, "dtype": shapes[name][1], "shape": shapes[name][0]}
                 for name, role in pairs] for side, pairs in roles.items()}
    return {
        "format": FORMAT, "version": VERSION, "kind": kind, "backend": backend,
        "seq_len": config.seq_len, "vocab_size": config.vocab_size, "halt_max_steps": config.halt_max_steps,
        "puzzle_emb_len": inner.puzzle_emb_len, "hidden_size": config.hidden_size,
        "carry_shape": [1, T, config.hidden_size],
        "carry_init": {"z_H": inner.H_init.float().cpu().tolist(), "z_L": inner.L_init.float().cpu().tolist()},
        "io": io,
        # The browser visualiser reads the roles of an ONNX graph under "onnx" (hrm/viz/static/solver.js).
        **({"onnx": io} if backend == "onnx" else {}),
        "arch": asdict(config),
        "source": source,
    }


def sidecar_path(export_path: str | Path) -> Path:
    return Path(str(export_path) + ".json")


def write_sidecar(export_path: str | Path, metadata: dict[str, Any]) -> Path:
    path = sidecar_path(export_path)
    atomic_write_text(path, json.dumps(metadata, indent=1) + "\n")
    path.chmod(0o644)          # mkstemp creates files readable by their owner only
    return path


def read_metadata(text: str, source: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: malformed export metadata at line {e.lineno}, column {e.colno}: {e.msg}") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{source}: not hrm export metadata (format={meta.get('format')!r})")
    return meta


def read_sidecar(export_path: str | Path) -> dict[str, Any]:
    path = sidecar_path(export_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the export's metadata is missing (it is written beside the export)")
    return read_metadata(path.read_text(), str(path))


def carry_init(metadata: dict[str, Any]) -> tuple[Any, Any]:
    import numpy as np
    init = metadata["carry_init"]
    return np.asarray(init["z_H"], dtype=np.float32), np.asarray(init["z_L"], dtype=np.float32)
