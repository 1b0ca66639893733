"""The predictions file written by `hrm eval` and read by `hrm viz` and the ARC scorer.

The format is fixed by notes/PREDICTIONS.md:

    predictions.safetensors   tensors (row order = test split order, padding rows dropped)
        inputs (N,S) int32, labels (N,S) int32 (-100 = ignored), puzzle_identifiers (N,) int32,
        predictions (N,S) int32, q_halt_logits (N,) float32, q_continue_logits (N,) float32, exact (N,) bool
        optional: step_predictions (N,K,S) int32, step_q_halt_logits (N,K) f32, step_q_continue_logits (N,K) f32
    metadata: every value JSON-encoded: format="hrm-predictions", version="1", task, data_path, split,
        checkpoint, halt_max_steps, dataset_hash

or, with format=npz, predictions.npz (the same arrays) and predictions.json (the metadata as an object).
No pickle anywhere. Files are written to a temporary name and renamed, so a failed run leaves none.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hrm.files import atomic_write

FORMAT = "hrm-predictions"
VERSION = "1"
REQUIRED = {"inputs": np.int32, "labels": np.int32, "puzzle_identifiers": np.int32, "predictions": np.int32,
            "q_halt_logits": np.float32, "q_continue_logits": np.float32, "exact": np.bool_}
OPTIONAL = {"step_predictions": np.int32, "step_q_halt_logits": np.float32, "step_q_continue_logits": np.float32}
METADATA_KEYS = ("task", "data_path", "split", "checkpoint", "halt_max_steps", "dataset_hash")
FILE_FORMATS = ("safetensors", "npz")


class PredictionsError(ValueError):
    """A predictions file that does not follow the format; the message names the file and the problem."""


def _typed(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, dtype in {**REQUIRED, **OPTIONAL}.items():
        if name in arrays:
            out[name] = np.ascontiguousarray(arrays[name], dtype=dtype)
        elif name in REQUIRED:
            raise PredictionsError(f"predictions: required array '{name}' is missing")
    n = out["inputs"].shape[0]
    for name, array in out.items():
        if array.shape[0] != n:
            raise PredictionsError(f"predictions: '{name}' has {array.shape[0]} rows, 'inputs' has {n}")
    return out


def write_predictions(directory: str | Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any],
                      file_format: str = "safetensors") -> Path:
    """Write the predictions into `directory`; returns the path of the array file."""
    if file_format not in FILE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(FILE_FORMATS)}, got {file_format!r}")
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"predictions metadata is missing {', '.join(missing)}")
    arrays = _typed(arrays)
    meta = {"format": FORMAT, "version": VERSION, **{k: metadata[k] for k in METADATA_KEYS}}
    directory = Path(directory)
    if file_format == "safetensors":
        from safetensors.numpy import save_file

        path = directory / "predictions.safetensors"
        encoded = {k: json.dumps(v) for k, v in meta.items()}
        atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=encoded))
        return path
    path = directory / "predictions.npz"

    def write_npz(tmp: str) -> None:
        with open(tmp, "wb") as f:          # a file object: np.savez would append ".npz" to a name
            np.savez(f, **arrays)
    atomic_write(path, write_npz)
    atomic_write(directory / "predictions.json", lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1) + "\n"))
    return path


def read_predictions(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, metadata) from predictions.safetensors, predictions.npz, or a directory holding either."""
    path = Path(path)
    if path.is_dir():
        for name in ("predictions.safetensors", "predictions.npz"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise PredictionsError(f"{path}: no predictions.safetensors or predictions.npz in this folder")
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as e:
            raise PredictionsError(f"{path}: not a readable npz file: {e}") from e
        meta_path = path.with_suffix(".json")
        try:
            metadata = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise PredictionsError(f"{meta_path}: the metadata beside {path.name} is missing or malformed: {e}") from e
    else:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                arrays = {k: f.get_tensor(k) for k in f.keys()}
                raw = f.metadata() or {}
        except (SafetensorError, OSError) as e:
            raise PredictionsError(f"{path}: not a readable safetensors file: {e}") from e
        try:
            metadata = {k: json.loads(v) for k, v in raw.items()}
        except json.JSONDecodeError as e:
            raise PredictionsError(f"{path}: metadata value is not JSON: {e}") from e
    if metadata.get("format") != FORMAT:
        raise PredictionsError(f"{path}: not an hrm predictions file (format={metadata.get('format')!r})")
    if str(metadata.get("version")) != VERSION:
        raise PredictionsError(f"{path}: predictions version {metadata.get('version')!r} is not supported (expected {VERSION})")
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise PredictionsError(f"{path}: missing array(s) {', '.join(missing)}")
    return arrays, metadata
