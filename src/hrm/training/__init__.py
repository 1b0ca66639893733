"""Training: the original's loop on CPU, CUDA and MPS, in one process or many, resuming exactly.

    from hrm.training import TrainConfig, load_config, train
    config = load_config("configs/sudoku_extreme_1k.yaml", ["data_path=data/my-sudoku", "epochs=100"])
    result = train(config, callback=lambda event: print(event.kind, event.step, event.metrics))

    config      TrainConfig and its sections, YAML presets, key=value overrides
    optimizers  AdamATan2 and the sparse puzzle-embedding SignSGD
    schedule    warm-up + cosine LR
    trainer     the loop, evaluation, checkpoints, progress
    checkpointing  what a resumable checkpoint holds, written atomically
    distributed torchrun processes (nccl / gloo)
    loggers     metrics.jsonl, TensorBoard, W&B
    commands    `hrm train`, `hrm plot`, `hrm doctor`

The trainer and its torch imports load on first use, so `hrm plot` and `hrm doctor` start quickly.
"""
from __future__ import annotations

from typing import Any

from hrm.training.config import ConfigError, DataConfig, LoggingConfig, TrainConfig, load_config

__all__ = ["TrainConfig", "DataConfig", "LoggingConfig", "ConfigError", "load_config", "train", "TrainEvent",
           "TrainResult", "Trainer"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainEvent", "TrainResult", "Trainer"):
        from hrm.training import trainer
        return getattr(trainer, name)
    raise AttributeError(f"module 'hrm.training' has no attribute {name!r}")
