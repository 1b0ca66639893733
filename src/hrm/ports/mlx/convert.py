"""Weights for the MLX port: from hrm checkpoints, from the original's, and MLX's own export format.

    load_mlx_model(path)    an MLX export directory, an hrm checkpoint directory, or an original
                            `torch.save`d checkpoint (step_N beside all_config.yaml) -> (model, arch dict)
    convert(path, out_dir)  writes an MLX export: weights.safetensors (MLX names) + config.json

Names: the original's state-dict keys minus `model.inner.` (and a `_orig_mod.` prefix if compiled),
with the embedding tables renamed to MLX's `weight`. Every tensor must be used and every MLX parameter
filled (load_weights(strict=True)): the fork's converter silently dropped the puzzle table (semantics §14.2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from hrm.files import atomic_write, atomic_write_text
from hrm.ports.mlx.model import HRMInner, PuzzleIO
from hrm.ports.mlx.trm import TRMInner
from hrm.ports.numpy.model import Arch
from hrm.ports.numpy.trm import TRMArch

FORMAT = "hrm-mlx"
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
# The architectures the MLX port serves (hrm.ports.SERVES lists their names): arch class, model class.
MODELS = {"hrm_act_v1": (Arch, HRMInner), "trm": (TRMArch, TRMInner)}
RENAMES = {
    "embed_tokens.embedding_weight": "embed_tokens.weight",
    "embed_pos.embedding_weight": "embed_pos.weight",
    "puzzle_emb.weights": "puzzle_emb.weight",
}


def mlx_name(state_dict_key: str) -> str:
    key = state_dict_key.removeprefix("_orig_mod.").removeprefix("model.inner.")
    return RENAMES.get(key, key)


def empty_model(arch_dict: dict[str, Any], source: str) -> PuzzleIO:
    """The MLX model of the architecture `arch_dict` names, with zero weights."""
    from hrm.ports import unsupported
    name = str(arch_dict.get("name", "hrm_act_v1"))
    reason = unsupported("mlx", name)
    if reason:
        raise ValueError(f"{source}: {reason}")
    arch_class, model_class = MODELS[name]
    return model_class(arch_class.from_dict(arch_dict), num_puzzle_identifiers=int(arch_dict.get("num_puzzle_identifiers", 1)))


def build(arch_dict: dict[str, Any], state: dict[str, Any], source: str, dtype: mx.Dtype = mx.float32) -> PuzzleIO:
    """The MLX model for `arch_dict` holding `state` (original key names, arrays of any kind)."""
    model = empty_model(arch_dict, source)
    weights = [(mlx_name(k), mx.array(np.asarray(v, dtype=np.float32)).astype(dtype)) for k, v in state.items()
               if k.removeprefix("_orig_mod.").startswith("model.inner.")]
    try:
        model.load_weights(weights, strict=True)
    except ValueError as e:
        raise ValueError(f"{source}: weights do not fit the MLX model: {e}") from e
    mx.eval(model.parameters())
    return model


def _read_state(path: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(arch dict, state dict with original names, format) for an hrm checkpoint or an original one."""
    if (path.is_dir() and (path / "model.safetensors").is_file()) or path.suffix == ".safetensors":
        directory = path if path.is_dir() else path.parent
        meta = json.loads((directory / "config.json").read_text())
        # mx.load reads bfloat16 (an H_init trained in bf16), which NumPy cannot.
        state = mx.load(str(directory / "model.safetensors" if path.is_dir() else path))
        return meta["arch"], {k: np.array(v.astype(mx.float32)) for k, v in state.items()}, "hrm"
    # The original's torch.save'd state dicts need torch (and hrm.runs for all_config.yaml and the dataset).
    from dataclasses import asdict

    from hrm.runs import open_run
    run = open_run(path, device="cpu", dtype="float32")
    return asdict(run.arch), {k: v.float().numpy() for k, v in run.head.state_dict().items()}, "original"


def load_mlx_model(path: str | Path, dtype: mx.Dtype = mx.float32) -> tuple[PuzzleIO, dict[str, Any]]:
    from hrm.runs import open_run

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if path.is_dir() and not (path / CONFIG_FILE).is_file():
        path = open_run(path, load=False).weights      # a run directory: its latest checkpoint (no torch model)
    config_path = (path if path.is_dir() else path.parent) / CONFIG_FILE
    if config_path.is_file():
        meta = json.loads(config_path.read_text())
        if meta.get("format") == FORMAT:
            model = empty_model(meta["arch"], str(config_path))
            try:
                model.load_weights(str(config_path.parent / WEIGHTS_FILE), strict=True)
            except ValueError as e:
                raise ValueError(f"{config_path.parent / WEIGHTS_FILE}: does not fit the MLX model: {e}") from e
            if dtype != mx.float32:
                model.set_dtype(dtype)
            return model, meta["arch"]
    arch, state, _ = _read_state(path)
    return build(arch, state, str(path), dtype), arch


def convert(path: str | Path, out_dir: str | Path) -> Path:
    """Write an MLX export of the checkpoint at `path` into `out_dir` (weights first, config last)."""
    from mlx.utils import tree_flatten

    out_dir = Path(out_dir)
    if (out_dir / "model.safetensors").exists():
        raise ValueError(f"{out_dir} holds an hrm checkpoint; write the MLX export to a directory of its own")
    model, arch = load_mlx_model(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": 1, "arch": arch, "converted_from": str(path)}
    atomic_write(out_dir / WEIGHTS_FILE, lambda tmp: mx.save_safetensors(tmp, dict(tree_flatten(model.parameters())),
                                                                  metadata={"format": FORMAT}))
    atomic_write_text(out_dir / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return out_dir


