"""Training checkpoints: everything a run needs to continue exactly where it stopped.

    RUN_DIR/checkpoints/step_<N>/
        model.safetensors, config.json   the weights, puzzle-embedding table included (hrm.models.checkpoint)
        train_state.safetensors          AdamATan2's t, m, v per parameter; the ACT carry of the whole
                                         global batch (ranks concatenated in order); every rank's RNG states
        train_state.json                 step, iteration, data-loader position, dataset hash, world size,
                                         the RNG state parts that are not tensors

No pickle. A checkpoint is written into a temporary folder beside its final name and renamed into place
only when complete, so a process killed at any moment leaves either the whole checkpoint or none; the
last `keep` are kept. SparseSignSGD has no state: its table is part of the weights.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from hrm.models import ACTCarry, ACTLossHead
from hrm.models.checkpoint import CheckpointError, load_state_into, read_safetensors, save_weights

FORMAT = "hrm-train-state"
VERSION = 1
STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainProgress:
    """The JSON part of a training checkpoint."""
    step: int
    total_steps: int
    iteration: int                  # the outer iteration (eval_interval epochs) this state belongs to
    iteration_finished: bool        # its evaluation is done: a resumed run starts iteration + 1
    world_size: int
    global_batch_size: int
    dataset_hash: str
    loader: dict[str, Any]          # PuzzleDataset.state_dict() (identical on every rank)
    rng_extra: list[dict[str, Any]] = field(default_factory=list)   # per rank: numpy and python RNG parts
    lr_horizon: int = 0             # steps the LR schedule spans (0: written before it was recorded)
    format: str = FORMAT
    version: int = VERSION


# ----------------------------------------------------------------------------------------------------
# RNG states, per process

def capture_rng(device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states: (tensors, JSON-able rest). Torch's generators drive exploration."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["torch_cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        tensors["torch_mps"] = torch.mps.get_rng_state()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    version, python_state, gauss_next = random.getstate()
    extra = {"numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
             "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next}}
    return tensors, extra


def restore_rng(device: torch.device, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in tensors:
        torch.cuda.set_rng_state(tensors["torch_cuda"], device)
    elif device.type == "mps" and "torch_mps" in tensors:
        torch.mps.set_rng_state(tensors["torch_mps"])
    n = extra["numpy"]
    np.random.set_state((n["kind"], tensors["numpy_keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = extra["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ----------------------------------------------------------------------------------------------------
# Carry and optimiser state <-> flat tensor dicts

def carry_tensors(carry: ACTCarry) -> dict[str, torch.Tensor]:
    """carry.<name> for each tensor the inner model declares (HRM: carry.z_H, carry.z_L), carry.steps,
    carry.halted, carry.current_data.<key>."""
    out = {f"carry.{name}": value for name, value in carry.inner_carry.items()}
    out |= {"carry.steps": carry.steps, "carry.halted": carry.halted}
    out.update({f"carry.current_data.{k}": v for k, v in carry.current_data.items()})
    return out


def carry_from_tensors(tensors: dict[str, torch.Tensor], rows: slice, device: torch.device,
                       names: Iterable[str]) -> ACTCarry | None:
    """This rank's rows of a saved global carry, or None if the checkpoint has none. `names`: the inner
    model's carry tensors (its carry_init())."""
    if "carry.steps" not in tensors:
        return None
    names = list(names)
    missing = [f"carry.{n}" for n in names if f"carry.{n}" not in tensors]
    if missing:
        raise CheckpointError(f"the checkpoint's carry lacks {', '.join(missing)}: it was written by another architecture")
    take = lambda name: tensors[name][rows].to(device)                           # noqa: E731
    data = {k.removeprefix("carry.current_data."): take(k) for k in tensors if k.startswith("carry.current_data.")}
    return ACTCarry({n: take(f"carry.{n}") for n in names}, take("carry.steps"), take("carry.halted"), data)


def adam_tensors(optimizer: torch.optim.Optimizer, names: dict[torch.Tensor, str]) -> dict[str, torch.Tensor]:
    out = {}
    for param, state in optimizer.state.items():
        for key, value in state.items():
            out[f"optim.adam.{names[param]}.{key}"] = value
    return out


def load_adam(optimizer: torch.optim.Optimizer, named_params: list[tuple[str, torch.nn.Parameter]],
              tensors: dict[str, torch.Tensor], source: str) -> None:
    """Fill AdamATan2's state from `optim.adam.<name>.<key>` tensors; every parameter must be present."""
    index = {id(p): i for i, p in enumerate(optimizer.param_groups[0]["params"])}
    state = {}
    for name, param in named_params:
        keys = {k: tensors.get(f"optim.adam.{name}.{k}") for k in ("step", "exp_avg", "exp_avg_sq")}
        if all(v is None for v in keys.values()):
            continue                                       # never stepped (e.g. a checkpoint at step 0)
        if any(v is None for v in keys.values()):
            raise CheckpointError(f"{source}: incomplete optimiser state for {name}")
        if keys["exp_avg"].shape != param.shape:
            raise CheckpointError(f"{source}: optimiser state for {name} has shape {tuple(keys['exp_avg'].shape)}, "
                                  f"the parameter {tuple(param.shape)}")
        state[index[id(param)]] = keys
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


# ----------------------------------------------------------------------------------------------------
# Writing

def write_checkpoint(checkpoints_dir: Path, head: ACTLossHead, arch, progress: TrainProgress,
                     tensors: dict[str, torch.Tensor], keep: int, weights: str = "live") -> Path:
    """Write step_<progress.step> atomically and prune to the last `keep` (0: keep all). Rank 0 only.
    `weights` says in config.json which weights model.safetensors holds (live, or averaged)."""
    from safetensors.torch import save_file

    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step_{progress.step}"
    tmp = checkpoints_dir / f".step_{progress.step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_weights(head, arch, tmp, extra={"dataset_hash": progress.dataset_hash, "step": progress.step,
                                             "weights": weights})
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / STATE_TENSORS),
                  metadata={"format": FORMAT})
        (tmp / STATE_JSON).write_text(json.dumps(asdict(progress), indent=1) + "\n")
        if final.exists():                 # re-running from an older checkpoint: replace the stale one
            stale = checkpoints_dir / f".step_{progress.step}.stale-{os.getpid()}"
            os.replace(final, stale)
            os.replace(tmp, final)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(checkpoints_dir, keep)
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in checkpoints_dir.iterdir()
             if (m := STEP_DIR.match(p.name)) and (p / STATE_JSON).is_file()]
    return sorted(found)


def prune(checkpoints_dir: Path, keep: int) -> None:
    if keep > 0:
        for _, path in list_checkpoints(checkpoints_dir)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)


def remove_partial(checkpoints_dir: Path) -> None:
    """Delete the temporary folders of checkpoints whose writer was killed."""
    if checkpoints_dir.is_dir():
        for path in checkpoints_dir.glob(".step_*.*-*"):
            shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------
# Reading

def find_checkpoint(path: str | Path) -> Path:
    """A run directory (its latest checkpoint), a checkpoints folder, or one step_<N> folder."""
    path = Path(path)
    if (path / STATE_JSON).is_file():
        return path
    for folder in (path / "checkpoints", path):
        found = list_checkpoints(folder)
        if found:
            return found[-1][1]
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory")
    raise CheckpointError(f"{path}: no complete training checkpoint in it (looked for checkpoints/step_<N>/{STATE_JSON})")


def read_checkpoint(path: Path) -> tuple[TrainProgress, dict[str, torch.Tensor]]:
    try:
        raw = json.loads((path / STATE_JSON).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / STATE_JSON}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"{path / STATE_JSON}: not an hrm training state (format={raw.get('format')!r})")
    if raw.get("version") != VERSION:
        raise CheckpointError(f"{path / STATE_JSON}: training-state version {raw.get('version')} is not supported "
                              f"(this hrm reads version {VERSION})")
    known = TrainProgress.__dataclass_fields__
    progress = TrainProgress(**{k: v for k, v in raw.items() if k in known})
    return progress, read_safetensors(path / STATE_TENSORS)


def load_weights_into(head: ACTLossHead, path: Path) -> None:
    load_state_into(head, read_safetensors(path / "model.safetensors"), str(path / "model.safetensors"))
