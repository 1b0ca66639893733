"""Checkpoints and datasets for the evaluation tests, each made once per test session.

    sudoku_run(tmp)   a 4x4 Sudoku model trained in the test (~15 s on one core) with hrm.training, and its run
    maze_ckpt(tmp)    an untrained maze model on 6x6 generated mazes, saved with the dataset's hash
    arc_ckpt(tmp)     an untrained ARC model on a three-task ARC dataset built from hand-written tasks
Untrained models exercise the plumbing (files, shapes, checks, messages); the trained one the figures.
Test modules wrap these in session fixtures; the results are cached here, so several modules share one training run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from hrm.models import HRMConfig, build_model
from hrm.models.checkpoint import save_weights

TINY = dict(H_layers=1, L_layers=1, H_cycles=1, L_cycles=1, hidden_size=32, num_heads=2, expansion=2.0,
            puzzle_emb_ndim=32, halt_max_steps=3)


@dataclass
class Trained:
    run_dir: Path
    data_path: Path
    checkpoint: Path
    eval_metrics: dict[str, float]


_cache: dict[str, object] = {}


def cached(function):
    def wrapper(tmp_path_factory):
        if function.__name__ not in _cache:
            _cache[function.__name__] = function(tmp_path_factory)
        return _cache[function.__name__]
    wrapper.__name__ = function.__name__
    return wrapper


@cached
def sudoku_run(tmp_path_factory) -> Trained:
    from hrm.data.sudoku import build_generated_dataset
    from hrm.training import train
    from hrm.training.config import load_config

    root = tmp_path_factory.mktemp("sudoku")
    data = build_generated_dataset(root / "s4", 300, 64, box=(2, 2), num_aug=3, seed=0, min_blanks=3, max_blanks=6,
                                   log=lambda *_: None)
    config = load_config(None, [
        f"data_path={data}", f"checkpoint_path={root / 'run'}", "global_batch_size=64", "epochs=60", "eval_interval=30",
        "lr=3e-3", "puzzle_emb_lr=1e-2", "lr_warmup_steps=5", "arch.hidden_size=64", "arch.num_heads=2",
        "arch.expansion=2", "arch.H_layers=1", "arch.L_layers=1", "arch.H_cycles=1", "arch.L_cycles=2",
        "arch.halt_max_steps=3", "arch.puzzle_emb_ndim=64", "arch.forward_dtype=float32", "device=cpu",
        "logging.progress=false"])
    # NOTE: one thread: these matmuls are too small to gain from two, and a busy machine makes two threads
    # that wait for each other much slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(config)
    finally:
        torch.set_num_threads(threads)
    assert result.checkpoint is not None
    return Trained(result.run_dir, Path(data), result.checkpoint, result.eval_metrics)


def save_untrained(data_path: Path, out: Path, seed: int = 0) -> Path:
    from hrm.data import dataset_hash, load_metadata

    meta = load_metadata(data_path, "train")
    config = HRMConfig(seq_len=meta.seq_len, vocab_size=meta.vocab_size, num_puzzle_identifiers=meta.num_puzzle_identifiers,
                       batch_size=8, **TINY)
    torch.manual_seed(seed)
    head = build_model(config)
    with torch.no_grad():          # a Q head that is not constant, so halting decisions vary
        head.model.inner.q_head.weight.normal_(0, 0.5)
        head.model.inner.q_head.bias.copy_(torch.tensor([0.0, 0.0]))
        if head.model.puzzle_emb is not None:
            head.model.puzzle_emb.weights.normal_(0, 0.1)
    return save_weights(head, config, out, extra={"dataset_hash": dataset_hash(data_path)})


@cached
def maze_ckpt(tmp_path_factory) -> tuple[Path, Path]:
    from hrm.data.maze import build_generated

    root = tmp_path_factory.mktemp("maze")
    data = build_generated(root / "m6", 8, 4, size=6, min_path_length=3, seed=0, log=lambda *_: None)
    return save_untrained(Path(data), root / "ckpt"), Path(data)


ARC_TASKS = {
    # name: (train pairs, test pairs); the outputs flip the input left-right.
    "aaaa0001": ([([[1, 2], [3, 4]], [[2, 1], [4, 3]])], [([[5, 6, 7]], [[7, 6, 5]]), ([[1], [2]], [[1], [2]])]),
    "aaaa0002": ([([[0, 1]], [[1, 0]])], [([[2, 3], [4, 5]], [[3, 2], [5, 4]])]),
}


def write_arc_task(path: Path, train, test) -> Path:
    path.write_text(json.dumps({"train": [{"input": i, "output": o} for i, o in train],
                                "test": [{"input": i, "output": o} for i, o in test]}))
    return path


@cached
def arc_ckpt(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(checkpoint, dataset, folder of the evaluation task files)."""
    from hrm.data.arc import build

    root = tmp_path_factory.mktemp("arc")
    evaluation = root / "raw" / "evaluation"
    evaluation.mkdir(parents=True)
    for name, (train, test) in ARC_TASKS.items():
        write_arc_task(evaluation / f"{name}.json", train, test)
    training = root / "raw" / "training"
    training.mkdir()
    write_arc_task(training / "bbbb0001.json", [([[1]], [[1]])], [([[2]], [[2]])])
    data = build(root / "arc", [root / "raw"], num_aug=3, seed=0, log=lambda *_: None)
    return save_untrained(Path(data), root / "ckpt"), Path(data), evaluation
