"""The JSON that travels with every export: what the graph computes and how to drive it.

    {"format": "hrm-export", "version": 1, "kind": "step" | "whole_puzzle", "backend": "onnx" | "mlir",
     "seq_len", "vocab_size", "halt_max_steps", "halt_rule", "puzzle_emb_len", "hidden_size",
     "carry_shape": [1, T, D],                  # the batch dimension (0) is dynamic
     "carry_init": {name: [D floats], ...},     # the carry the model declares (HRM: z_H, z_L), in graph order
     "io": {"inputs": [{"name", "role", "dtype", "shape"}], "outputs": [...]},
     "arch": {"name": ..., ...}, "source": checkpoint path}

Roles of the one-step graph: inputs: one per carry tensor (its name), inputs, puzzle_identifiers; outputs:
the new carry (role = the carry tensor's name), logits, q_halt, q_continue. "halt_rule" is the model's
halting rule (hrm.halting), which the drivers apply when asked to halt early. The ONNX export stores the
same JSON in the model's metadata (key "hrm"), and beside it as `<file>.json`, which the browser visualiser
reads as its `onnx` section.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hrm.files import atomic_write_text

FORMAT = "hrm-export"
VERSION = 1


def step_roles(carry_names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(graph name, role) of the one-step graph's inputs and outputs, as hrm.export.torch_step.OneStep names them."""
    return {
        "inputs": [(n, n) for n in carry_names] + [("inputs", "inputs"), ("puzzle_identifiers", "puzzle_identifiers")],
        "outputs": [(f"new_{n}", n) for n in carry_names] + [(n, n) for n in ("logits", "q_halt", "q_continue")],
    }


WHOLE_ROLES = {
    "inputs": [(n, n) for n in ("inputs", "puzzle_identifiers", "halt_early")],
    "outputs": [(n, n) for n in ("logits", "q_halt", "q_continue", "steps", "step_predictions", "step_q_halt",
                                 "step_q_continue")],
}


def _shapes(config, T: int, carry_names: list[str]) -> dict[str, tuple[list, str]]:
    S, D, V, K = config.seq_len, config.hidden_size, config.vocab_size, config.halt_max_steps
    carry = (["batch", T, D], "float32")
    return {
        **{n: carry for n in carry_names}, **{f"new_{n}": carry for n in carry_names},
        "inputs": (["batch", S], "int32"), "puzzle_identifiers": (["batch"], "int32"),
        "halt_early": ([], "bool"),
        "logits": (["batch", S, V], "float32"), "q_halt": (["batch"], "float32"),
        "q_continue": (["batch"], "float32"), "steps": (["batch"], "int32"),
        "step_predictions": (["batch", K, S], "int64"), "step_q_halt": (["batch", K], "float32"),
        "step_q_continue": (["batch", K], "float32"),
    }


def describe(inner, kind: str, backend: str, source: str | None = None) -> dict[str, Any]:
    """The metadata of an export of `inner` (kind "step" or "whole_puzzle")."""
    config = inner.config
    T = inner.carry_positions
    init = inner.carry_init()
    shapes = _shapes(config, T, list(init))
    roles = step_roles(list(init)) if kind == "step" else WHOLE_ROLES
    io = {side: [{"name": name, "role": role, "dtype": shapes[name][1], "shape": shapes[name][0]}
                 for name, role in pairs] for side, pairs in roles.items()}
    return {
        "format": FORMAT, "version": VERSION, "kind": kind, "backend": backend,
        "seq_len": config.seq_len, "vocab_size": config.vocab_size, "halt_max_steps": config.halt_max_steps,
        "halt_rule": config.halting_policy.rule,
        "puzzle_emb_len": T - config.seq_len, "hidden_size": config.hidden_size,
        "carry_shape": [1, T, config.hidden_size],
        "carry_init": {name: value.float().cpu().tolist() for name, value in init.items()},
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


def carry_init(metadata: dict[str, Any]) -> dict[str, Any]:
    """{name: (D,) float32 array}: a fresh row's carry, in graph order."""
    import numpy as np
    return {name: np.asarray(value, dtype=np.float32) for name, value in metadata["carry_init"].items()}


def halt_rule(metadata: dict[str, Any]) -> str:
    """The model's halt rule; exports from before it was recorded are HRM's."""
    from hrm.halting import Q_HALT_GT_Q_CONTINUE, check_rule
    return check_rule(metadata.get("halt_rule", Q_HALT_GT_Q_CONTINUE))
