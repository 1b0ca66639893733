"""The trainer: the original's training loop (spec §8) on any device, in one process or many, resumable.

    from hrm.training import TrainConfig, train
    result = train(config, callback=lambda event: print(event.kind, event.step, event.metrics))

The loop, as `pretrain.py` runs it:
  * `epochs / eval_interval` iterations; each is one pass of the train loader over `eval_interval` epochs,
    then an evaluation on the test split, then a checkpoint (every evaluation, or only the last).
  * a step is ONE ACT segment for every row of the batch (the carry persists across batches, halted rows
    take new puzzles), backward of loss / global_batch_size, gradients summed over ranks, then for each
    optimiser in the order [sparse SignSGD, AdamATan2]: set the scheduled LR, step, zero the grads.
  * steps past total_steps consume data without training (the loader drops short last batches).
hrm adds checkpoints that resume exactly (`checkpoint_interval`, `resume=RUN_DIR`), a progress bar, metric
files, and `torch.compile` on CUDA by default, falling back to eager with a warning if compilation fails.
"""
from __future__ import annotations

import dataclasses
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrm.device import choose, compile_enabled, warn_compile_failed
from hrm.models import IGNORE_LABEL_ID, build_model
from hrm.training import checkpointing as ckpt
from hrm.training import distributed as dist_
from hrm.models.checkpoint import CheckpointError
from hrm.training.config import ConfigError, TrainConfig, config_to_dict, save_config
from hrm.training.loggers import Loggers
from hrm.training.optimizers import AdamATan2, SparseSignSGD
from hrm.training.run_lock import RunLock
from hrm.training.schedule import cosine_schedule_with_warmup, total_steps as count_steps


@dataclass
class TrainEvent:
    """What a callback sees. kind: "start", "log" (every logging.log_interval steps), "eval",
    "checkpoint" (path set) or "end". Returning False from the callback stops the run after a checkpoint."""
    kind: str
    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None
    path: Path | None = None


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    total_steps: int
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float]
    checkpoint: Path | None
    stopped_early: bool


Callback = Callable[[TrainEvent], "bool | None"]


def train(config: TrainConfig, callback: Callback | None = None) -> TrainResult:
    """Train (or, with config.resume set, continue) a run. Returns where it is and its last metrics."""
    trainer = Trainer(config, callback)
    try:
        return trainer.run()
    finally:
        trainer.close()


def default_run_dir(config: TrainConfig) -> tuple[str, str, Path]:
    """The original's naming: project "<Dataset> ACT-torch", run "<arch> <slug>", dir checkpoints/<project>/<run>.

    NOTE: the run slug is the start time, not a random `coolname`, so names sort by date.
    """
    project = config.project_name or f"{Path(config.data_path).name.capitalize()} ACT-torch"
    run = config.run_name or f"{config.arch.name.split('@')[0].split('.')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    return project, run, Path(config.checkpoint_path or Path("checkpoints") / project / run)


class Trainer:
    def __init__(self, config: TrainConfig, callback: Callback | None = None):
        from hrm.data import PuzzleDataset, dataset_hash

        self.config = config = dataclasses.replace(config)
        self.callback = callback
        choice = choose(config.device, config.dtype)
        self.processes = dist_.init_processes(choice.device)
        self.owns_process_group = self.processes.distributed
        self.device, self.dtype = dist_.device_for(choice.device, self.processes), choice.dtype
        self.device_reason = choice.reason
        rank, world = self.processes.rank, self.processes.world_size
        if config.global_batch_size % world:
            raise ConfigError(f"global_batch_size={config.global_batch_size} is not divisible by the {world} processes")

        # Data. Every rank walks the same global batches and keeps its slice.
        self.train_data = PuzzleDataset(config.data_path, "train", config.global_batch_size, rank, world,
                                        seed=config.seed, epochs_per_iter=config.eval_interval)
        eval_batch = config.data.eval_batch_size or config.global_batch_size
        self.test_data = None
        if config.data.eval_max_examples != 0:
            self.test_data = PuzzleDataset(config.data_path, "test", eval_batch, rank, world, seed=config.seed,
                                           test_set_mode=True)
        self.dataset_hash = dataset_hash(config.data_path)
        meta = self.train_data.metadata
        config.arch = dataclasses.replace(config.arch, seq_len=meta.seq_len, vocab_size=meta.vocab_size,
                                          num_puzzle_identifiers=meta.num_puzzle_identifiers,
                                          batch_size=config.global_batch_size // world)
        self.total_steps = count_steps(config.epochs, meta.total_groups, meta.mean_puzzle_examples, config.global_batch_size)

        # Model: seeded seed + rank as the original, then rank 0's weights everywhere. NOTE: numpy's and
        # Python's global generators are seeded too (the original leaves them), so a run is a function of
        # its config alone.
        torch.random.manual_seed(config.seed + rank)
        np.random.seed(config.seed + rank)
        random.seed(config.seed + rank)
        self.head = build_model(config.arch, forward_dtype=self.dtype, device=self.device)
        dist_.broadcast_module(self.head, self.processes)
        self.named_params = list(self.head.named_parameters())
        self.params = [p for _, p in self.named_params]
        self.optimizers: list[torch.optim.Optimizer] = []
        self.base_lrs: list[float] = []
        if self.head.model.puzzle_emb is not None:
            self.optimizers.append(SparseSignSGD(self.head.model.puzzle_emb, lr=0, weight_decay=config.puzzle_emb_weight_decay))
            self.base_lrs.append(config.puzzle_emb_lr)
        self.optimizers.append(AdamATan2(self.params, lr=0, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay))
        self.base_lrs.append(config.lr)
        self.adam = self.optimizers[-1]
        self.forward = self._compiled_forward()

        self.step, self.iteration, self.carry = 0, 0, None
        self.start_iteration_finished = False
        if config.resume:                    # the run directory is where the checkpoint is, wherever it moved
            config.checkpoint_path = str(ckpt.find_checkpoint(config.resume).parent.parent)
        project, run, self.run_dir = default_run_dir(config)
        project, run, self.run_dir = dist_.broadcast_object((project, run, self.run_dir), self.processes)
        config.project_name, config.run_name, config.checkpoint_path = project, run, str(self.run_dir)
        self.checkpoints_dir = self.run_dir / "checkpoints"
        self.loggers = None
        # One writer per run: rank 0 holds the run's lock from before it reads a checkpoint until close().
        self.run_lock = RunLock(self.run_dir).acquire() if self.processes.is_main else None
        try:
            resume_step = self._resume() if config.resume else None
            if resume_step is None and self.processes.is_main and ckpt.list_checkpoints(self.checkpoints_dir):
                raise FileExistsError(f"{self.run_dir} already holds checkpoints: continue it with resume={self.run_dir}, "
                                      "or choose another run_name / checkpoint_path")
            if self.processes.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                ckpt.remove_partial(self.checkpoints_dir)
                save_config(dataclasses.replace(config, resume=None), self.run_dir / "all_config.yaml")
                self.loggers = Loggers(self.run_dir, config.logging.logger, project, run, config_to_dict(config),
                                       config.logging.wandb_mode, resume_step)
        except BaseException:
            if self.run_lock is not None:
                self.run_lock.release()
            raise
        self._metric_sums: torch.Tensor | None = None
        self._metric_keys: list[str] = []
        self._logged_steps, self._log_time = 0, time.perf_counter()
        self.last_train: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self.last_checkpoint: Path | None = None
        self._interrupted = False

    # ------------------------------------------------------------------------------------------------
    # Setup helpers

    def _compiled_forward(self):
        if not compile_enabled(self.config.compile, self.device):
            return self.head
        import torch._inductor.config as inductor_config
        # NOTE: compiled code draws the exploration randoms from torch's generator, like eager code, so a
        # compiled run is reproducible and resumes exactly.
        inductor_config.fallback_random = True
        return torch.compile(self.head, dynamic=False)

    def _call(self, carry, batch, return_keys=()):
        if self.forward is not self.head:
            try:
                return self.forward(carry, batch, return_keys)
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any compiler failure; the eager model still works
                warn_compile_failed(e)
                self.forward = self.head
        return self.head(carry, batch, return_keys)

    def _resume(self) -> int:
        """Load the latest (or the named) checkpoint of config.resume; returns its step."""
        path = ckpt.find_checkpoint(self.config.resume)
        progress, tensors = ckpt.read_checkpoint(path)
        where = str(path)
        if progress.world_size != self.processes.world_size:
            raise CheckpointError(f"{where} was written by {progress.world_size} process(es); resume it with the same "
                             f"number (this run has {self.processes.world_size}) to continue exactly")
        if progress.global_batch_size != self.config.global_batch_size:
            raise CheckpointError(f"{where}: global_batch_size was {progress.global_batch_size}, now {self.config.global_batch_size}")
        if progress.dataset_hash != self.dataset_hash:
            raise CheckpointError(f"{where} was trained on dataset {progress.dataset_hash[:16]}..., but {self.config.data_path} "
                             f"hashes to {self.dataset_hash[:16]}...: resume needs the same data")
        ckpt.load_weights_into(self.head, path)
        ckpt.load_adam(self.adam, self.named_params, tensors, where)
        local = self.config.global_batch_size // self.processes.world_size
        rows = slice(self.processes.rank * local, (self.processes.rank + 1) * local)
        ckpt.check_carry_fits(self.head.model.inner, tensors, self.config.global_batch_size, where)
        self.carry = ckpt.carry_from_tensors(tensors, rows, self.device, self.head.model.inner.carry_init())
        ckpt.restore_loader(self.train_data, progress.loader, where)
        rank = self.processes.rank
        rng = {k.removeprefix(f"rng.{rank}."): v for k, v in tensors.items() if k.startswith(f"rng.{rank}.")}
        ckpt.restore_rng(self.device, rng, progress.rng_extra[rank], where)
        self.step, self.iteration = progress.step, progress.iteration
        self.start_iteration_finished = progress.iteration_finished
        if self.processes.is_main:
            print(f"resuming {self.run_dir} from {path.name} (step {self.step}/{progress.total_steps})", flush=True)
        return progress.step

    # ------------------------------------------------------------------------------------------------
    # The loop

    def run(self) -> TrainResult:
        config, main = self.config, self.processes.is_main
        total_iters = config.epochs // config.eval_interval
        first = self.iteration + 1 if self.start_iteration_finished else self.iteration
        if main:
            n_params = sum(p.numel() for p in self.params)
            print(f"hrm train: {self.device_summary()}\n  {n_params:,} parameters, {self.total_steps} steps "
                  f"({total_iters} iterations of {config.eval_interval} epochs), run dir {self.run_dir}", flush=True)
        self._emit(TrainEvent("start", self.step, self.total_steps, run_dir=self.run_dir))
        bar = self._progress_bar()
        stopped = False
        previous_handler = self._install_interrupt_handler()
        try:
            for self.iteration in range(first, total_iters):
                self.forward.train()             # the compiled wrapper passes the mode on to the model
                for _set_name, batch, _global_size in self.train_data:
                    self.step += 1
                    if self.step > self.total_steps:
                        continue                       # the original consumes the rest of the pass
                    self._train_step(batch)
                    if bar is not None:
                        bar.update(1)
                    stop = False
                    if self.step % config.logging.log_interval == 0 or self.step == self.total_steps:
                        stop = self._log_train(bar)
                    if config.checkpoint_interval and self.step % config.checkpoint_interval == 0:
                        stop |= self._checkpoint(iteration_finished=False)
                    if stop or self._interrupted:
                        if not (config.checkpoint_interval and self.step % config.checkpoint_interval == 0):
                            self._checkpoint(iteration_finished=False)
                        stopped = True
                        break
                if stopped:
                    break
                stop = self._evaluate_and_log(bar)
                if config.checkpoint_every_eval or self.iteration == total_iters - 1 or stop:
                    stop |= self._checkpoint(iteration_finished=True)
                if stop or self._interrupted:
                    stopped = self.iteration < total_iters - 1
                    break
        finally:
            if bar is not None:
                bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        if main and self._interrupted:
            print(f"interrupted: continue with  hrm train resume={self.run_dir}", flush=True)
        self._emit(TrainEvent("end", self.step, self.total_steps, {**self.last_train, **self.last_eval}, self.run_dir))
        return TrainResult(self.run_dir, self.step, self.total_steps, self.last_train, self.last_eval,
                           self.last_checkpoint, stopped)

    def _train_step(self, batch: dict[str, torch.Tensor]) -> None:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.carry is None:
            self.carry = self.head.initial_carry(batch)
        self.carry, loss, metrics, _, _ = self._call(self.carry, batch)
        ((1 / self.config.global_batch_size) * loss).backward()
        dist_.all_reduce_grads(self.params, self.processes)
        for optimizer, base_lr in zip(self.optimizers, self.base_lrs):
            lr = cosine_schedule_with_warmup(self.step, base_lr, self.config.lr_warmup_steps,
                                             self.config.lr_schedule_steps or self.total_steps, self.config.lr_min_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        self._accumulate({**metrics, "loss": loss.detach()})

    def _accumulate(self, metrics: dict[str, torch.Tensor]) -> None:
        """Sum raw metrics on the device, without a host sync, until the next log."""
        if self._metric_sums is None:
            self._metric_keys = sorted(metrics)
            sum_dtype = torch.float32 if self.device.type == "mps" else torch.float64
            self._metric_sums = torch.zeros(len(self._metric_keys), dtype=sum_dtype, device=self.device)
        self._metric_sums += torch.stack([metrics[k].to(self._metric_sums.dtype) for k in self._metric_keys])
        self._logged_steps += 1

    def _log_train(self, bar) -> bool:
        """Reduce the summed metrics to rank 0 and normalise them as the original (losses per example,
        the rest per counted row). Returns True if the callback asked to stop."""
        sums = dist_.reduce_to_main(self._metric_sums, self.processes).tolist()
        raw = dict(zip(self._metric_keys, sums))
        n, now = self._logged_steps, time.perf_counter()
        count = max(raw["count"], 1)
        metrics = {f"train/{k}": v / (self.config.global_batch_size * n if k.endswith("loss") else count)
                   for k, v in raw.items() if k != "count"}
        # NOTE: the original logs count/count (= 1); the halted rows per step says more.
        metrics["train/count"] = raw["count"] / n
        metrics["train/lr"] = self.optimizers[-1].param_groups[0]["lr"]
        metrics["train/steps_per_second"] = n / max(now - self._log_time, 1e-9)
        self._metric_sums.zero_()
        self._logged_steps, self._log_time = 0, now
        self.last_train = metrics
        if self.loggers is not None:
            self.loggers.log(self.step, metrics)
        if bar is not None:
            bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", exact=f"{metrics['train/exact_accuracy']:.3f}",
                            lr=f"{metrics['train/lr']:.2e}", refresh=False)
        return self._emit(TrainEvent("log", self.step, self.total_steps, metrics, self.run_dir))

    def _evaluate_and_log(self, bar) -> bool:
        if self.test_data is None:
            return False
        from hrm.evaluation.metrics import normalise

        module = self.forward
        module.eval()
        try:
            sums, rows = self._evaluate(module)
        except Exception as e:  # noqa: BLE001 - a compiler failure in eval mode: retry eagerly
            if module is self.head or isinstance(e, torch.OutOfMemoryError):
                raise
            warn_compile_failed(e, " in evaluation")
            self.forward = self.head
            self.head.eval()
            sums, rows = self._evaluate(self.head)
        metrics = {f"eval/{k}": float(v) for k, v in normalise(sums).items()}
        self.last_eval = metrics
        if self.processes.is_main:
            self.loggers.log(self.step, metrics)
            message = (f"eval at step {self.step}: exact_accuracy {metrics['eval/exact_accuracy']:.4f}, "
                       f"accuracy {metrics['eval/accuracy']:.4f} on {metrics['eval/count']:.0f} examples")
            (bar.write if bar is not None else print)(message)
            if rows is not None:
                self._save_predictions(rows)
        return self._emit(TrainEvent("eval", self.step, self.total_steps, metrics, self.run_dir))

    def _evaluate(self, module) -> tuple[dict[str, float], Any]:
        """The test split (or its first data.eval_max_examples) in eval mode: every row runs halt_max_steps
        segments from a fresh carry (spec §8.6). Returns the loss head's metric sums over all ranks and,
        when eval_save_outputs asks for them, the rows (hrm.evaluation.loop.evaluate gathers them)."""
        from hrm.evaluation.loop import METRIC_KEYS, evaluate, run_act

        max_examples = self.config.data.eval_max_examples
        if self.config.eval_save_outputs:
            outputs = evaluate(module, self.test_data, self.device, max_examples=max_examples)
            return outputs.metric_sums, (outputs.rows if self.processes.is_main else None)
        # Without outputs to save only the sums are kept, so a large test split costs no host memory.
        data = self.test_data
        offsets = torch.arange(data.local_batch_size) + data.rank * data.local_batch_size
        sums = torch.zeros(len(METRIC_KEYS), dtype=torch.float64)
        seen = 0
        for test_batch in data.iter_test_batches():
            if max_examples is not None and seen >= max_examples:
                break
            real = test_batch.global_size if max_examples is None else min(test_batch.global_size, max_examples - seen)
            seen += test_batch.global_size
            batch = dict(test_batch.batch)
            if real < test_batch.global_size:          # the prefix ends inside this batch: ignore the rest
                batch["labels"] = torch.where((offsets >= real).unsqueeze(-1), IGNORE_LABEL_ID, batch["labels"])
            out = run_act(module, {k: v.to(self.device) for k, v in batch.items()})
            sums += torch.tensor([float(out.metrics[k]) for k in METRIC_KEYS], dtype=torch.float64)
        sums = dist_.reduce_to_main(sums.to(self.device if self.device.type == "cuda" else "cpu"), self.processes)
        return dict(zip(METRIC_KEYS, sums.tolist())), None

    def _save_predictions(self, rows: dict) -> None:
        """NOTE: the original saves the keys named in eval_save_outputs with torch.save; hrm writes the
        standard predictions file (notes/PREDICTIONS.md) whenever eval_save_outputs is not empty."""
        from hrm.data import read_manifest
        from hrm.evaluation.metrics import exact
        from hrm.evaluation.predictions import write_predictions

        rows = dict(rows, exact=exact(rows["predictions"], rows["labels"]))
        builder = (read_manifest(self.config.data_path) or {}).get("builder", "unknown")
        task = builder if builder in ("sudoku", "maze", "arc") else "unknown"
        write_predictions(self.run_dir / "predictions" / f"step_{self.step}", rows, {
            "task": task, "data_path": str(self.config.data_path), "split": "test",
            "checkpoint": str(self.checkpoints_dir / f"step_{self.step}"),
            "halt_max_steps": self.config.arch.halt_max_steps,
            "dataset_hash": self.dataset_hash})

    # ------------------------------------------------------------------------------------------------
    # Checkpoints

    def _checkpoint(self, iteration_finished: bool) -> bool:
        """Write a checkpoint (rank 0 writes; every rank contributes its carry and RNG). Returns the
        callback's stop request."""
        tensors: dict[str, torch.Tensor] = {}
        if self.carry is not None:
            for name, value in ckpt.carry_tensors(self.carry).items():
                gathered = dist_.all_gather_rows(value.to(torch.uint8) if value.dtype == torch.bool else value)
                tensors[name] = gathered.bool() if value.dtype == torch.bool else gathered
        rng_tensors, rng_extra = ckpt.capture_rng(self.device)
        per_rank = dist_.gather_objects((rng_tensors, rng_extra), self.processes)
        if not self.processes.is_main:
            return self._emit(TrainEvent("checkpoint", self.step, self.total_steps, run_dir=self.run_dir))
        for rank, (rank_tensors, _) in enumerate(per_rank):
            tensors.update({f"rng.{rank}.{k}": v for k, v in rank_tensors.items()})
        tensors.update(ckpt.adam_tensors(self.adam, {p: n for n, p in self.named_params}))
        progress = ckpt.TrainProgress(
            step=self.step, total_steps=self.total_steps, iteration=self.iteration,
            iteration_finished=iteration_finished, world_size=self.processes.world_size,
            global_batch_size=self.config.global_batch_size, dataset_hash=self.dataset_hash,
            loader=self.train_data.state_dict(), rng_extra=[extra for _, extra in per_rank])
        self.last_checkpoint = ckpt.write_checkpoint(self.checkpoints_dir, self.head, self.config.arch, progress,
                                                     tensors, self.config.keep_checkpoints)
        return self._emit(TrainEvent("checkpoint", self.step, self.total_steps, run_dir=self.run_dir,
                                     path=self.last_checkpoint))

    # ------------------------------------------------------------------------------------------------
    # Feedback

    def device_summary(self) -> str:
        compiled = "compiled" if self.forward is not self.head else "eager"
        procs = f", {self.processes.world_size} processes" if self.processes.distributed else ""
        return (f"device={self.device} dtype={str(self.dtype).removeprefix('torch.')} ({self.device_reason}), "
                f"{compiled}{procs}")

    def _progress_bar(self):
        if not (self.processes.is_main and self.config.logging.progress):
            return None
        from hrm.progress import progress_bar
        return progress_bar(total=self.total_steps, initial=min(self.step, self.total_steps), unit="step", desc="train")

    def _emit(self, event: TrainEvent) -> bool:
        """Call the callback on rank 0; True when it returned False (stop). Ranks agree on the answer."""
        stop = False
        if self.callback is not None and self.processes.is_main:
            stop = self.callback(event) is False
        if self.processes.distributed and event.kind in ("log", "eval", "checkpoint"):
            stop = bool(dist_.broadcast_object(stop, self.processes))
        return stop

    def _install_interrupt_handler(self):
        """Ctrl-C finishes the current step, writes a checkpoint and exits (one process; a second Ctrl-C
        interrupts at once). Under torchrun the default handling stays."""
        if self.processes.distributed or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        try:
            def handler(signum, frame):
                if self._interrupted:
                    raise KeyboardInterrupt
                self._interrupted = True
                print("\nstopping after this step (Ctrl-C again to abort without a checkpoint)", file=sys.stderr, flush=True)
            return signal.signal(signal.SIGINT, handler)
        except ValueError:           # not the main thread
            return None

    def close(self) -> None:
        if self.loggers is not None:
            self.loggers.close()
            self.loggers = None
        if self.run_lock is not None:
            self.run_lock.release()
        if self.owns_process_group:
            dist_.shutdown(self.processes)
            self.owns_process_group = False
