"""Training checkpoints: everything a run needs to continue exactly where it stopped.

    RUN_DIR/checkpoints/step_<N>/
        model.safetensors, config.json   the weights, puzzle-embedding table included (hrm.models.checkpoint)
        train_state.safetensors          AdamATan2's t, m, v per parameter; the ACT carry of the whole
                                         global batch (ranks concatenated in order); every rank's RNG states
        train_state.json                 step, iteration, data-loader position, dataset hash, world size,
                                         the RNG state parts that are not tensors

No pickle. A checkpoint is written into a partial folder beside its final name (`.step_<N>.partial-PID-*`,
hrm.files), its files fsynced, and renamed into place only when complete, so a process killed at any
moment leaves either the whole checkpoint or none; the next writer removes the partial folders of dead
writers. The last `keep` are kept (older ones are renamed away before they are deleted). SparseSignSGD
has no state: its table is part of the weights. Reading checks every key and shape it uses, so that a
damaged checkpoint is a one-line CheckpointError naming the file and key.
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

from hrm.files import atomic_write, atomic_write_text, commit_partial_dir, discard_dir, make_partial_dir, pid_alive, \
    remove_stale_partials
from hrm.models import ACTCarry, ACTLossHead
from hrm.models.act import empty_carry
from hrm.models.checkpoint import CheckpointError, load_state_into, read_json, read_safetensors, save_safetensors, \
    save_weights

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


def restore_rng(device: torch.device, tensors: dict[str, torch.Tensor], extra: dict[str, Any], source: str = "checkpoint") -> None:
    """Set this process's RNG states; a state the generators refuse is a CheckpointError naming `source`."""
    for name in ("torch_cpu", "numpy_keys"):
        if name not in tensors:
            raise CheckpointError(f"{source}: the RNG state {name} is missing")
    try:
        torch.set_rng_state(tensors["torch_cpu"])
        if device.type == "cuda" and "torch_cuda" in tensors:
            torch.cuda.set_rng_state(tensors["torch_cuda"], device)
        elif device.type == "mps" and "torch_mps" in tensors:
            torch.mps.set_rng_state(tensors["torch_mps"])
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: torch's RNG state cannot be restored: {str(e).splitlines()[0]}") from None
    n, p = extra["numpy"], extra["python"]
    try:
        keys = tensors["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    except (IndexError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{source}: numpy's RNG state cannot be restored: {e}") from None
    try:
        random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    except (IndexError, TypeError, ValueError, OverflowError, KeyError) as e:
        raise CheckpointError(f"{source}: Python's RNG state (rng_extra python.state) cannot be restored: {e}") from None


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
    for name, value in tensors.items():
        if name.startswith("carry.") and (value.dim() == 0 or value.shape[0] < rows.stop):
            raise CheckpointError(f"the checkpoint's {name} has shape {tuple(value.shape)}: fewer rows than the "
                                  f"global batch ({rows.stop} needed)")
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
        for key in ("exp_avg", "exp_avg_sq"):
            if keys[key].shape != param.shape or not keys[key].is_floating_point():
                raise CheckpointError(f"{source}: optimiser state {key} for {name} is {keys[key].dtype} of shape "
                                      f"{tuple(keys[key].shape)}; the parameter is {tuple(param.shape)}")
        if keys["step"].numel() != 1:
            raise CheckpointError(f"{source}: optimiser state step for {name} has shape {tuple(keys['step'].shape)}, "
                                  "expected one number")
        state[index[id(param)]] = keys
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


# ----------------------------------------------------------------------------------------------------
# Writing

def write_checkpoint(checkpoints_dir: Path, head: ACTLossHead, arch, progress: TrainProgress,
                     tensors: dict[str, torch.Tensor], keep: int, weights: str = "live") -> Path:
    """Write step_<progress.step> atomically and prune to the last `keep` (0: keep all). Rank 0 only.
    `weights` says in config.json which weights model.safetensors holds (live, or averaged).

    On an error (a full disk) nothing is left under the final name or beside it, and the OSError names
    the checkpoint; a kill leaves a partial folder that the next writer removes."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    remove_partial(checkpoints_dir)
    final = checkpoints_dir / f"step_{progress.step}"
    tmp = make_partial_dir(final)
    try:
        save_weights(head, arch, tmp, extra={"dataset_hash": progress.dataset_hash, "step": progress.step,
                                             "weights": weights})
        state = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        atomic_write(tmp / STATE_TENSORS, lambda path: save_safetensors(state, path, {"format": FORMAT}))
        atomic_write_text(tmp / STATE_JSON, json.dumps(asdict(progress), indent=1) + "\n")
        commit_partial_dir(tmp, final)     # replaces a stale step_<N> when re-running from an older checkpoint
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno is not None:
            # The failing file was in the partial folder, just deleted; a failed write() names no file.
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(final)) from e
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
            discard_dir(path)


LEGACY_TEMP = re.compile(r"^\.step_\d+\.(tmp|stale)-(\d+)$")      # hrm's earlier names for them


def remove_partial(checkpoints_dir: Path) -> None:
    """Delete the partial folders of checkpoints whose writer died (hrm.files.remove_stale_partials); those
    of a live process are left alone."""
    if not checkpoints_dir.is_dir():
        return
    for name in sorted({m.group(1) for p in checkpoints_dir.iterdir()
                        if (m := re.match(r"^\.(step_\d+)\.partial-", p.name))}):
        remove_stale_partials(checkpoints_dir / name)
    for path in checkpoints_dir.iterdir():
        if (m := LEGACY_TEMP.match(path.name)) and not pid_alive(int(m.group(2))):
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


# The JSON part's keys and types: a damaged train_state.json is an error that names the key.
PROGRESS_TYPES = {"step": int, "total_steps": int, "iteration": int, "iteration_finished": bool, "world_size": int,
                  "global_batch_size": int, "dataset_hash": str, "loader": dict, "rng_extra": list}
LOADER_TYPES = {"iterations": int, "set_index": int, "batches_yielded": int, "in_progress": bool, "seed": int,
                "global_batch_size": int, "epochs_per_iter": int}
RNG_TYPES = {"numpy": {"kind": str, "pos": int, "has_gauss": int, "cached_gaussian": float},
             "python": {"version": int, "state": list}}


def _check_types(values: dict[str, Any], types_: dict[str, type], where: str, prefix: str = "",
                 required: bool = True) -> None:
    for key, tp in types_.items():
        if key not in values:
            if required:
                raise CheckpointError(f"{where}: the key '{prefix}{key}' is missing")
            continue
        value = values[key]
        ok = (isinstance(value, bool) if tp is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if tp is float else
              isinstance(value, tp) and not isinstance(value, bool))
        if not ok:
            raise CheckpointError(f"{where}: '{prefix}{key}' must be {_KIND[tp]}, got {value!r}"[:300])
        if tp is int and value < 0:
            raise CheckpointError(f"{where}: '{prefix}{key}' must be >= 0, got {value}")


_KIND = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping", list: "a list"}


def parse_progress(raw: Any, where: str) -> TrainProgress:
    """train_state.json's value as a TrainProgress, or a CheckpointError naming the bad key."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: must be a JSON object, got {type(raw).__name__}")
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not an hrm training state (format={raw.get('format')!r})")
    if raw.get("version") != VERSION:
        raise CheckpointError(f"{where}: training-state version {raw.get('version')} is not supported "
                              f"(this hrm reads version {VERSION})")
    _check_types(raw, PROGRESS_TYPES, where)
    if raw["world_size"] < 1 or raw["global_batch_size"] < 1:
        raise CheckpointError(f"{where}: world_size and global_batch_size must be >= 1")
    _check_types(raw["loader"], {k: LOADER_TYPES[k] for k in ("iterations", "set_index", "batches_yielded", "in_progress")},
                 where, "loader.")
    _check_types(raw["loader"], LOADER_TYPES, where, "loader.", required=False)
    if len(raw["rng_extra"]) != raw["world_size"]:
        raise CheckpointError(f"{where}: rng_extra holds {len(raw['rng_extra'])} RNG states for {raw['world_size']} process(es)")
    for rank, extra in enumerate(raw["rng_extra"]):
        if not isinstance(extra, dict):
            raise CheckpointError(f"{where}: rng_extra[{rank}] must be a mapping")
        _check_types(extra, {"numpy": dict, "python": dict}, where, f"rng_extra[{rank}].")
        for part, types_ in RNG_TYPES.items():
            _check_types(extra[part], types_, where, f"rng_extra[{rank}].{part}.")
        if "gauss_next" not in extra["python"]:
            raise CheckpointError(f"{where}: the key 'rng_extra[{rank}].python.gauss_next' is missing")
    known = TrainProgress.__dataclass_fields__
    return TrainProgress(**{k: v for k, v in raw.items() if k in known})


def check_tensors(progress: TrainProgress, tensors: dict[str, torch.Tensor], where: str) -> None:
    """The RNG states and carry rows that every rank of `progress` needs are there, with their shapes."""
    cpu_state = torch.get_rng_state()
    for rank in range(progress.world_size):
        state, keys = tensors.get(f"rng.{rank}.torch_cpu"), tensors.get(f"rng.{rank}.numpy_keys")
        if state is None or keys is None:
            raise CheckpointError(f"{where}: the RNG state of rank {rank} (rng.{rank}.torch_cpu, rng.{rank}.numpy_keys) is missing")
        if state.shape != cpu_state.shape or state.dtype != cpu_state.dtype:
            raise CheckpointError(f"{where}: rng.{rank}.torch_cpu is {state.dtype} of shape {tuple(state.shape)}, "
                                  f"torch's generator state is {cpu_state.dtype} of shape {tuple(cpu_state.shape)}")
        if keys.shape != (624,):
            raise CheckpointError(f"{where}: rng.{rank}.numpy_keys has shape {tuple(keys.shape)}, expected (624,)")
    for name, value in tensors.items():
        if name.startswith("carry.") and (value.dim() == 0 or value.shape[0] != progress.global_batch_size):
            raise CheckpointError(f"{where}: {name} has shape {tuple(value.shape)}; its first dimension must be the "
                                  f"global batch, {progress.global_batch_size}")


def read_checkpoint(path: Path) -> tuple[TrainProgress, dict[str, torch.Tensor]]:
    """A checkpoint's training state, checked: keys, types, the RNG states and the carry's rows."""
    progress = parse_progress(read_json(path / STATE_JSON, "training state"), str(path / STATE_JSON))
    tensors = read_safetensors(path / STATE_TENSORS)
    check_tensors(progress, tensors, str(path / STATE_TENSORS))
    return progress, tensors


def check_carry_fits(inner: torch.nn.Module, tensors: dict[str, torch.Tensor], global_batch_size: int, source: str) -> None:
    """The saved carry's tensors have the shapes this model's carry has (rows: the global batch). `source`:
    the checkpoint folder."""
    if "carry.steps" not in tensors:
        return
    expected = {f"carry.{k}": v.shape for k, v in empty_carry(inner, global_batch_size, torch.device("meta")).items()}
    expected |= {"carry.steps": (global_batch_size,), "carry.halted": (global_batch_size,)}
    for name, shape in expected.items():
        if name in tensors and tuple(tensors[name].shape) != tuple(shape):
            raise CheckpointError(f"{Path(source) / STATE_TENSORS}: {name} has shape {tuple(tensors[name].shape)}, this model's carry "
                                  f"{tuple(shape)}")


def restore_loader(dataset, state: dict[str, Any], source: str) -> None:
    """PuzzleDataset.load_state_dict, its refusals as a CheckpointError naming `source`."""
    try:
        dataset.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


def load_weights_into(head: ACTLossHead, path: Path) -> None:
    load_state_into(head, read_safetensors(path / "model.safetensors"), str(path / "model.safetensors"))
