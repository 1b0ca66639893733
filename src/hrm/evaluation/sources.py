"""Where an evaluation's inputs come from, and whether they fit: the checkpoint, its run, the dataset.

    resolve_checkpoint(path)     a run directory (its latest checkpoint), checkpoints/step_<N>, hrm weights,
                                 or an original step_<N> file; with the run's all_config.yaml if there is one
    resolve_data_path(...)       the dataset given, else the one the run trained on
    check_dataset(...)           sizes always, the content hash when the checkpoint recorded one
    dataset_task / dataset_box   what the dataset holds (its manifest's builder, else guessed from sizes)
    choose_batch_size, default_out
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


class EvalError(ValueError):
    """A problem with the checkpoint, the dataset or the options; the message says what and where."""


@dataclass
class Resolved:
    weights: Path                 # what load_checkpoint reads
    run_dir: Path | None          # where all_config.yaml lives, if anywhere
    run_config: dict[str, Any]    # all_config.yaml, as plain YAML
    step_name: str                # e.g. "step_26040"


def resolve_checkpoint(path: str | Path) -> Resolved:
    from hrm.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE

    path = Path(path)
    if not path.exists():
        raise EvalError(f"{path}: no such checkpoint (give a run directory, a checkpoints/step_<N> folder, "
                        f"a folder with {WEIGHTS_FILE} and {CONFIG_FILE}, or an original step_<N> file)")
    if path.is_dir() and not (path / WEIGHTS_FILE).is_file():
        from hrm.models.checkpoint import CheckpointError
        from hrm.training.checkpointing import find_checkpoint

        try:
            path = find_checkpoint(path)
        except CheckpointError as e:
            raise EvalError(f"{e} and no {WEIGHTS_FILE} in it") from None
    folder = path if path.is_dir() else path.parent
    run_dir = None
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / "all_config.yaml").is_file():
            run_dir = candidate
            break
    run_config: dict[str, Any] = {}
    if run_dir is not None:
        import yaml

        try:
            run_config = yaml.safe_load((run_dir / "all_config.yaml").read_text()) or {}
        except yaml.YAMLError as e:
            raise EvalError(f"{run_dir / 'all_config.yaml'}: malformed YAML: {e}") from e
    step_name = path.stem if path.suffix == ".safetensors" else path.name
    if path.is_dir() and path.name not in ("", ".") and (path / WEIGHTS_FILE).is_file():
        step_name = path.name
    return Resolved(path, run_dir, run_config, step_name)


def recorded_data_path(resolved: Resolved) -> Path | None:
    """The dataset the checkpoint's run trained on, if its all_config.yaml names one that is here."""
    recorded = resolved.run_config.get("data_path")
    if not recorded:
        return None
    path = Path(recorded)
    if not path.exists() and not path.is_absolute() and resolved.run_dir is not None:
        path = resolved.run_dir / path           # relative to the run, as a moved run folder would have it
    return path if path.is_dir() else None


def resolve_data_path(config, resolved: Resolved) -> Path:
    path = Path(config.data_path) if config.data_path else recorded_data_path(resolved)
    if path is None:
        recorded = resolved.run_config.get("data_path")
        raise EvalError(f"{resolved.weights}: " + (f"its run's data_path {recorded} is not here" if recorded else
                                                    "no data_path recorded with this checkpoint") + "; pass data_path=DATASET")
    if not path.is_dir():
        raise EvalError(f"{path}: dataset folder not found (pass data_path=DATASET)")
    return path


def dataset_task(data_path: Path | None, seq_len: int, vocab_size: int) -> str:
    """sudoku | maze | arc | unknown: the dataset manifest's builder, else guessed from the sizes."""
    from hrm.data import read_manifest
    from hrm.data.draw import guess_kind

    builder = str(((read_manifest(data_path) if data_path else None) or {}).get("builder", ""))
    for task in ("sudoku", "maze", "arc"):
        if builder.startswith(task):
            return task
    if builder:
        return "unknown"             # a builder we do not know (e.g. a test dataset): no guessing
    try:
        return guess_kind(seq_len, vocab_size)
    except ValueError:
        return "unknown"


def dataset_box(data_path: Path | None) -> str | None:
    """A Sudoku dataset's box shape ("2x3") as its builder recorded it, if it did."""
    from hrm.data import read_manifest

    box = (((read_manifest(data_path) if data_path else None) or {}).get("arguments") or {}).get("box")
    return box if isinstance(box, str) else None


def check_dataset(arch, info: dict[str, Any], data_path: Path, split: str, force: bool,
                  warn: Callable[[str], None]) -> tuple[Any, str | None]:
    """The split's metadata, and the dataset hash; errors when the checkpoint does not fit the dataset."""
    from hrm.data import DatasetFormatError, dataset_hash, load_metadata

    try:
        meta = load_metadata(data_path, split)
    except DatasetFormatError as e:
        raise EvalError(str(e)) from None
    sizes = [(name, getattr(arch, name), getattr(meta, name)) for name in ("vocab_size", "seq_len", "num_puzzle_identifiers")]
    wrong = [f"{name} {ours} (checkpoint) vs {theirs} (dataset)" for name, ours, theirs in sizes if ours != theirs]
    if wrong:
        raise EvalError(f"checkpoint {info.get('path')} does not fit dataset {data_path}: {'; '.join(wrong)}. "
                        "It was trained on another dataset or task; give the data_path it was trained on "
                        "(for original checkpoints: the dataset built by the original code, with its identifiers.json)")
    recorded = info.get("dataset_hash")
    if recorded:
        actual = dataset_hash(data_path)
        if actual != recorded:
            message = (f"dataset {data_path} (hash {actual[:12]}) is not the dataset checkpoint {info.get('path')} was "
                       f"trained on (hash {recorded[:12]})")
            if not force:
                raise EvalError(message + "; pass force=true to evaluate anyway")
            warn("WARNING: " + message + " (force=true)")
        return meta, actual
    warn(f"note: checkpoint {info.get('path')} records no dataset hash (original checkpoints do not); evaluate it on "
         "the dataset it was trained on: rebuilt ARC datasets number the puzzles differently (docs/formats.md §2) and "
         "then score near zero without any error")
    return meta, None


def untrained_embeddings(head, data_path: Path, split: str, sets: list[str]) -> tuple[int, int]:
    """(test puzzle identifiers whose embedding row is all zeros, identifiers used): a mismatch signal."""
    emb = head.model.puzzle_emb
    if emb is None:
        return 0, 0
    from hrm.data.format import array_path

    ids = np.unique(np.concatenate([np.load(array_path(data_path, split, s, "puzzle_identifiers")) for s in sets]))
    rows = emb.weights[torch.from_numpy(ids.astype(np.int64))]
    return int((rows == 0).all(dim=-1).sum()), len(ids)


# Without CUDA, attention runs as matmul + softmax: keep one layer's attention scores under this many bytes.
CPU_ATTENTION_BYTES = 1 << 30


def choose_batch_size(requested: int | None, run_batch: int | None, arch, device: torch.device, examples: int,
                      world: int) -> int:
    """The global eval batch: as requested, else the run's global_batch_size (the original's choice), capped
    at the split's size (padding rows are wasted work) and, off CUDA, by the attention scores' memory.
    Always a multiple of the number of processes. Answers do not depend on it."""
    if requested:
        batch = requested
    else:
        batch = min(int(run_batch or 768), examples)
        if torch.device(device).type != "cuda":
            T = arch.puzzle_emb_len + arch.seq_len
            batch = min(batch, max(1, CPU_ATTENTION_BYTES // (arch.num_heads * T * T * 4)))
    return math.ceil(max(batch, 1) / world) * world


def default_out(resolved: Resolved, data_path: Path, config) -> Path:
    """RUN_DIR/eval/<step>-<dataset>-<split>[-halting_q][-tta<K>][-<backend>]: one folder per setting."""
    folder = resolved.weights if resolved.weights.is_dir() else resolved.weights.parent
    run_dir = resolved.run_dir or (folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent)
    name = f"{resolved.step_name}-{data_path.resolve().name}-{config.split}"
    name += "-halting_q" * (config.halting == "q") + (f"-tta{config.tta}" if config.tta > 1 else "")
    name += f"-{config.backend}" * (config.backend != "torch")
    return run_dir / "eval" / name
