"""A trained model for the visualiser: exported to ONNX for the browser, or run in PyTorch for a PNG.

    load_model(path)                     a run directory, a checkpoints/step_<N> folder, hrm weights or an
                                         original checkpoint -> LoadedModel (float32, CPU, eval mode)
    export_browser_model(model, dir)     model.onnx (one ACT step, hrm.export.onnx) + model.json (below)
    torch_trajectory(model, inputs)      the answer at every ACT step, from PyTorch (hrm.evaluation.loop)

model.json tells the page everything it needs to drive the ACT loop (static/solver.js):
    task, seq_len, vocab_size, board_size, box, halt_max_steps, puzzle_identifier,
    carry_shape [1, T, D] and carry_init {z_H: H_init, z_L: L_init} (a fresh carry holds these at every
    position), and onnx: {inputs: [{name, role, dtype}], outputs: [{name, role}]} naming which graph input
    or output is the carry (z_H, z_L), the tokens, the puzzle identifiers, the logits and the Q logits.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrm.models import ACTLossHead, HRMConfig
from hrm.viz.png import Trajectory
from hrm.viz.tasks import IGNORE_LABEL, detect_task, sudoku_box

BROWSER_MODEL_FORMAT = "hrm-browser-model"


class ModelError(ValueError):
    """A model the visualiser cannot load or export; the message names the file."""


@dataclass
class LoadedModel:
    head: ACTLossHead
    config: HRMConfig
    path: Path                  # the weights that were read
    task: str
    box: tuple[int, int] | None # a Sudoku model's box shape
    data_path: Path | None      # the dataset the run was trained on, when recorded and present


def load_model(path: str | Path) -> LoadedModel:
    from hrm.data.format import DatasetFormatError, load_metadata
    from hrm.data.manifest import read_manifest
    from hrm.evaluation.runner import EvalError, resolve_checkpoint
    from hrm.models.checkpoint import CheckpointError, is_hrm_checkpoint, load_checkpoint

    try:
        resolved = resolve_checkpoint(path)
        data_path = _recorded_data_path(resolved)
        overrides = None
        if not is_hrm_checkpoint(resolved.weights) and data_path is not None:
            overrides = {"seq_len": load_metadata(data_path, "train").seq_len}
        # NOTE: float32 whatever the machine: the export and the browser compute in float32.
        head, config, _ = load_checkpoint(resolved.weights, device="cpu", dtype=torch.float32, arch_overrides=overrides)
    except (EvalError, CheckpointError, DatasetFormatError) as error:
        raise ModelError(str(error)) from None
    head.eval()
    manifest = (read_manifest(data_path) if data_path is not None else None) or {}
    task = detect_task(config.seq_len, config.vocab_size, manifest.get("builder"))
    box = None
    if task == "sudoku":
        from hrm.viz.data import _sudoku_box
        side = math.isqrt(config.seq_len)
        box = _sudoku_box((manifest.get("arguments") or {}).get("box")) or sudoku_box(side)
    return LoadedModel(head, config, resolved.weights, task, box, data_path)


def _recorded_data_path(resolved) -> Path | None:
    data_path = resolved.run_config.get("data_path")
    if not data_path:
        return None
    path = Path(data_path)
    if not path.exists() and not path.is_absolute() and resolved.run_dir is not None:
        path = resolved.run_dir / path
    return path if path.is_dir() else None


# ----------------------------------------------------------------------------------------------------
# The browser's model

def browser_metadata(model: LoadedModel, onnx_io: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    config, inner = model.config, model.head.model.inner
    positions = inner.puzzle_emb_len + config.seq_len
    side = math.isqrt(config.seq_len)
    return {
        "format": BROWSER_MODEL_FORMAT, "version": 1,
        "task": model.task, "checkpoint": str(model.path),
        "seq_len": config.seq_len, "vocab_size": config.vocab_size,
        "board_size": side if model.task == "sudoku" else None, "box": list(model.box) if model.box else None,
        "halt_max_steps": config.halt_max_steps, "puzzle_identifier": 0,
        "carry_shape": [1, positions, config.hidden_size],
        "carry_init": {"z_H": inner.H_init.float().tolist(), "z_L": inner.L_init.float().tolist()},
        "onnx": onnx_io,
    }


def export_browser_model(model: LoadedModel, out_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """Write model.onnx and model.json into out_dir; returns (onnx path, metadata)."""
    from hrm.export import onnx as onnx_export

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    onnx_export.export_step(model.head, onnx_path)
    metadata = browser_metadata(model, onnx_roles(onnx_path))
    (out_dir / "model.json").write_text(json.dumps(metadata) + "\n")
    return onnx_path, metadata


ROLES = {"z_H": "z_H", "z_L": "z_L", "inputs": "inputs", "puzzle_identifiers": "puzzle_identifiers",
         "logits": "logits", "q_halt": "q_halt", "q_continue": "q_continue"}


def onnx_roles(onnx_path: Path) -> dict[str, list[dict[str, str]]]:
    """Which graph input/output plays which role, from the names the exporter gave them."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    dtypes = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64"}

    def role(name: str) -> str:
        key = name.removeprefix("new_").removesuffix("_out").removesuffix("_logits")
        key = {"q_halt": "q_halt", "q_continue": "q_continue"}.get(key, key)
        if key not in ROLES:
            raise ModelError(f"{onnx_path}: graph input/output {name!r} has no known role ({', '.join(ROLES)})")
        return ROLES[key]

    inputs = [{"name": i.name, "role": role(i.name), "dtype": dtypes[i.type.tensor_type.elem_type]}
              for i in graph.input]
    outputs = [{"name": o.name, "role": role(o.name)} for o in graph.output]
    return {"inputs": inputs, "outputs": outputs}


# ----------------------------------------------------------------------------------------------------
# PyTorch trajectory, for the PNG

def torch_trajectory(model: LoadedModel, inputs: np.ndarray, labels: np.ndarray | None = None,
                     puzzle_identifier: int = 0, title: str = "") -> Trajectory:
    """Run the eval-mode ACT loop on one puzzle and keep every step's answer."""
    from hrm.evaluation.loop import run_act

    inputs = np.asarray(inputs, dtype=np.int32)
    if inputs.shape != (model.config.seq_len,):
        raise ModelError(f"the model takes {model.config.seq_len} tokens, the puzzle has {inputs.size}")
    batch = {"inputs": torch.from_numpy(inputs)[None],
             "labels": torch.from_numpy(np.full(inputs.shape, IGNORE_LABEL, np.int32) if labels is None
                                        else np.asarray(labels, dtype=np.int32))[None],
             "puzzle_identifiers": torch.tensor([puzzle_identifier], dtype=torch.int32)}
    out = run_act(model.head, batch, save_steps=True)
    return Trajectory(inputs, labels, out.step_predictions[0].numpy(), out.step_q_halt_logits[0].numpy(),
                      out.step_q_continue_logits[0].numpy(), title)
