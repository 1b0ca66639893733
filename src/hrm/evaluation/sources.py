"""Whether an evaluation's inputs fit, and what follows from them (the run itself is opened by hrm.runs).

    check_dataset(...)           sizes always, the content hash when the checkpoint recorded one
    untrained_embeddings(...)    test identifiers whose embedding row was never trained
    choose_batch_size, default_out
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


class EvalError(ValueError):
    """A problem with the checkpoint, the dataset or the options; the message says what and where."""


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


def default_out(run, data_path: Path, config) -> Path:
    """RUN_DIR/eval/<step>-<dataset>-<split>[-halting_q][-tta<K>][-<backend>]: one folder per setting.
    `run` is the hrm.runs.OpenedRun."""
    folder = run.weights if run.weights.is_dir() else run.weights.parent
    run_dir = run.run_dir or (folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent)
    name = f"{run.step_name}-{data_path.resolve().name}-{config.split}"
    name += "-halting_q" * (config.halting == "q") + (f"-tta{config.tta}" if config.tta > 1 else "")
    name += f"-{config.backend}" * (config.backend != "torch")
    return run_dir / "eval" / name
