"""A trained model for the visualiser: exported to ONNX for the browser, or run in PyTorch for a PNG.

    load_model(path)                     whatever hrm.runs.open_run opens (a run directory, a folder of
                                         runs: the newest, a checkpoints/step_<N> folder, hrm weights or
                                         an original checkpoint) -> LoadedModel (float32, CPU, eval mode)
    export_browser_model(model, dir)     model.onnx (one ACT step, hrm.export.onnx) + model.json (below)
    torch_trajectory(model, inputs)      the answer at every ACT step, from PyTorch (hrm.evaluation.loop)

model.json tells the page everything it needs to drive the ACT loop (static/solver.js):
    everything in the export's metadata (hrm.export.metadata: seq_len, vocab_size, halt_max_steps,
    carry_shape [1, T, D], carry_init {z_H: H_init, z_L: L_init}, io), plus task, board_size, box,
    puzzle_identifier, and onnx = the export's io: which graph input or output is the carry (z_H, z_L),
    the tokens, the puzzle identifiers, the logits and the Q logits.
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
from hrm.puzzles import Family, family_name
from hrm.viz.png import Trajectory
from hrm.viz.tasks import IGNORE_LABEL

BROWSER_MODEL_FORMAT = "hrm-browser-model"


class ModelError(ValueError):
    """A model the visualiser cannot load or export; the message names the file."""


@dataclass
class LoadedModel:
    head: ACTLossHead
    config: HRMConfig
    path: Path                  # the weights that were read
    family: Family | None       # the puzzle family (hrm.puzzles); None when it cannot be told
    box: tuple[int, int] | None # a Sudoku model's box shape
    data_path: Path | None      # the dataset the run was trained on, when recorded and present

    @property
    def task(self) -> str:
        return family_name(self.family)


def load_model(path: str | Path) -> LoadedModel:
    """The run at `path`, opened by hrm.runs.open_run. NOTE: float32 on the CPU whatever the machine: the
    export and the browser compute in float32."""
    from hrm.runs import RunError, open_run

    try:
        run = open_run(path, device="cpu", dtype="float32", split="train")
    except RunError as error:
        raise ModelError(str(error)) from None
    config = run.arch
    box = run.family.box_shape(config.seq_len, run.box) if run.family is not None else None
    return LoadedModel(run.head, config, run.weights, run.family, box, run.data_path)


# ----------------------------------------------------------------------------------------------------
# The browser's model

def browser_metadata(model: LoadedModel, export: dict[str, Any]) -> dict[str, Any]:
    """The export's own metadata (hrm.export.metadata) plus what the page needs to know about the puzzles."""
    side = math.isqrt(model.config.seq_len)
    return {
        **export,
        "format": BROWSER_MODEL_FORMAT, "version": 1, "export_format": export["format"],
        "task": model.task, "checkpoint": str(model.path),
        "board_size": side if model.box is not None else None, "box": list(model.box) if model.box else None,
        "puzzle_identifier": 0,          # Sudoku datasets give every puzzle identifier 0 (formats §2)
        "onnx": export["io"],
    }


def export_browser_model(model: LoadedModel, out_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """Export one ACT step to out_dir/model.onnx (hrm.export) and write model.json; returns (onnx, metadata)."""
    from hrm.export.metadata import read_sidecar
    from hrm.export.onnx_export import export_onnx
    from hrm.files import atomic_write_text

    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ModelError(f"solving in the browser needs the ONNX exporter's packages ({error.name} is missing): "
                         "pip install 'hrm[ports]' (or onnx and onnxscript)") from None
    out_dir = Path(out_dir)
    onnx_path = export_onnx(model.head.model.inner, out_dir / "model.onnx", kind="step", source=str(model.path))
    if (out_dir / "model.onnx.data").exists():
        raise ModelError(f"{model.path}: the model is over 1 GiB and was exported with external weights, "
                         "which the browser cannot load")
    metadata = browser_metadata(model, read_sidecar(onnx_path))
    atomic_write_text(out_dir / "model.json", json.dumps(metadata) + "\n")
    return onnx_path, metadata


# ----------------------------------------------------------------------------------------------------
# PyTorch trajectory, for the PNG

def torch_trajectory(model: LoadedModel, inputs: np.ndarray, labels: np.ndarray | None = None,
                     puzzle_identifier: int = 0, title: str = "") -> Trajectory:
    """Run the eval-mode ACT loop on one puzzle and keep every step's answer."""
    from hrm.evaluation.loop import run_batch

    inputs = np.asarray(inputs, dtype=np.int32)
    if inputs.shape != (model.config.seq_len,):
        raise ModelError(f"the model takes {model.config.seq_len} tokens, the puzzle has {inputs.size}")
    batch = {"inputs": torch.from_numpy(inputs)[None],
             "labels": torch.from_numpy(np.full(inputs.shape, IGNORE_LABEL, np.int32) if labels is None
                                        else np.asarray(labels, dtype=np.int32))[None],
             "puzzle_identifiers": torch.tensor([puzzle_identifier], dtype=torch.int32)}
    out = run_batch(model.head, batch, save_steps=True)
    return Trajectory(inputs, labels, out.step_predictions[0], out.step_q_halt[0], out.step_q_continue[0], title,
                      model.config.halting_policy.rule)
