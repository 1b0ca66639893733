"""Where a run's metrics go: `metrics.jsonl` always, TensorBoard or Weights & Biases on request.

Every record is one JSON line {"step": N, "time": unix seconds, "train/lm_loss": ..., ...}; `hrm plot`
reads it. TensorBoard and W&B are optional imports, needed only when chosen with `logger=...`; W&B runs
offline unless `logging.wandb_mode=online`, so nothing needs an account or a network. Only rank 0 logs.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from hrm.files import atomic_write_text, read_jsonl_lines

METRICS_FILE = "metrics.jsonl"


class MetricsFile:
    """Append-only JSON lines, flushed per record so a killed run keeps what it logged."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.path = run_dir / METRICS_FILE
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        # NOTE: a fresh run starts the file afresh: one in its folder is from a run killed before its first
        # checkpoint (the trainer refuses a folder that holds checkpoints), whose steps are not this run's.
        self.file = open(self.path, "a" if resume_step is not None else "w", encoding="utf-8")

    def _truncate_after(self, step: int) -> None:
        """Drop records past the checkpoint we resume from: the killed run's steps are re-done."""
        kept = [line for line in read_jsonl_lines(self.path) if json.loads(line).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, "time": round(time.time(), 3), **{k: _finite(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None      # JSON has no NaN


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file (is this a run directory of `hrm train`?)")
    return [json.loads(line) for line in read_jsonl_lines(path)]


class TensorBoardLogger:
    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise RuntimeError("logger=tensorboard needs the tensorboard package: pip install 'hrm[tensorboard]' "
                               "(or pip install tensorboard)") from e
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, run_dir: Path, project: str, name: str, config: dict[str, Any], mode: str):
        try:
            import wandb
        except ImportError as e:
            raise RuntimeError("logger=wandb needs the wandb package: pip install 'hrm[wandb]' (or pip install wandb)") from e
        self.wandb = wandb
        # NOTE: the run id is derived from the run directory so that a resumed run continues the same W&B run.
        run_id = "".join(c if c.isalnum() else "-" for c in run_dir.resolve().name)[-64:]
        self.run = wandb.init(project=project, name=name, config=config, dir=str(run_dir), mode=mode,
                              id=run_id, resume="allow")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


class Loggers:
    """The JSONL file plus the optional backend, behind one log() call."""

    def __init__(self, run_dir: Path, logger: str, project: str, name: str, config: dict[str, Any],
                 wandb_mode: str = "offline", resume_step: int | None = None):
        self.backends: list[Any] = [MetricsFile(run_dir, resume_step)]
        if logger == "tensorboard":
            self.backends.append(TensorBoardLogger(run_dir))
        elif logger == "wandb":
            self.backends.append(WandbLogger(run_dir, project, name, config, wandb_mode))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for backend in self.backends:
            backend.log(step, metrics)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
