"""The trainer: the original's training loop (semantics §9) on any device, in one process or many, resumable.

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

Everything the loop changes lives in one `TrainState` (hrm.training.state), saved and restored whole. The
loop has one stop condition, `stop_requested`: a callback returned False, or Ctrl-C; either way the run
writes a checkpoint and ends.
"""
from __future__ import annotations

import contextlib
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

from hrm.compiling import maybe_compiled
from hrm.device import choose, compile_enabled, pick_autocast
from hrm.host_memory import keep_freed_memory
from hrm.models import build_model
from hrm.processes import device_for, init_processes, shutdown
from hrm.training import checkpointing as ckpt
from hrm.training import distributed as dist_
from hrm.models.checkpoint import CheckpointError
from hrm.training.config import ConfigError, TrainConfig, config_to_dict, save_config
from hrm.training.ema import EMA
from hrm.training.loggers import Loggers
from hrm.training.optimizers import AdamATan2, SparseSignSGD
from hrm.training.run_lock import RunLock
from hrm.training.schedule import cosine_schedule_with_warmup, total_steps as count_steps
from hrm.training.state import TrainState


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


class StepTimer:
    """Seconds per part of a training step, summed (`hrm bench` sets `Trainer.timer = StepTimer(device)`).

    Each part ends with a device synchronisation, so that it holds its own device work: a timed run is a
    little slower than an untimed one, and its parts add up to the step. The untimed trainer uses `no_timer`.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, part: str):
        start = time.perf_counter()
        yield
        self.synchronize()
        self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start

    def synchronize(self) -> None:
        """Wait for the device's queued work (CPU ops are synchronous already)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()


def no_timer(part: str):
    return contextlib.nullcontext()


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
        self.processes = init_processes(choice.device)
        self.owns_process_group = self.processes.distributed
        self.device, self.dtype = device_for(choice.device, self.processes), choice.dtype
        self.device_reason = choice.reason
        keep_freed_memory(self.device)       # no page faults on the step's reused buffers (hrm.host_memory)
        # Mixed precision (autocast=): the matmuls in a half type, everything the recurrence keeps in float32.
        self.autocast_dtype, autocast_reason = pick_autocast(self.device, self.dtype, config.autocast)
        if self.autocast_dtype is not None:
            self.device_reason += f"; {autocast_reason}"
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
        if config.load_checkpoint and not config.resume:     # a resumed run restores its own weights
            from hrm.training.initial_weights import load_initial_weights
            loaded = load_initial_weights(self.head, config.load_checkpoint)
            if self.processes.is_main:
                print(f"hrm train: {loaded}", flush=True)
        dist_.broadcast_module(self.head, self.processes)
        self.params = [p for _, p in self.head.named_parameters()]
        optimizers: list[torch.optim.Optimizer] = []
        self.base_lrs: list[float] = []
        if self.head.model.puzzle_emb is not None:
            optimizers.append(SparseSignSGD(self.head.model.puzzle_emb, lr=0, weight_decay=config.puzzle_emb_weight_decay))
            self.base_lrs.append(config.puzzle_emb_lr)
        optimizers.append(AdamATan2(self.params, lr=0, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay))
        self.base_lrs.append(config.lr)
        self.forward = self._compiled_forward()
        # Everything the loop changes, saved and restored whole (hrm.training.state).
        self.state = TrainState(self.head, optimizers, self.train_data,
                                ema=EMA(self.head, config.ema_rate) if config.ema else None,
                                lr_horizon=config.lr_schedule_steps or self.total_steps)

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
        self.stop_requested = False           # the one stop condition: a callback said stop, or Ctrl-C
        self._interrupted = False
        self._eval_runner = None
        self.timer = no_timer                 # a StepTimer times each part of a step (hrm bench)

    # ------------------------------------------------------------------------------------------------
    # Setup helpers

    def _compiled_forward(self):
        return maybe_compiled(self.head, compile_enabled(self.config.compile, self.device))

    def autocast(self):
        """The training forward's autocast context (disabled without autocast=)."""
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                              enabled=self.autocast_dtype is not None)

    def _call(self, carry, batch, return_keys=()):
        # NOTE: only the training forward runs under autocast; backward follows the forward's dtypes, and
        # evaluation runs the float32 model the checkpoint holds.
        with self.autocast():
            return self.forward(carry, batch, return_keys)

    def _resume(self) -> int:
        """Load the latest (or the named) checkpoint of config.resume into the state; returns its step."""
        path = ckpt.find_checkpoint(self.config.resume)
        progress = self.state.restore(path, self.processes, self.device, self.config.global_batch_size,
                                      self.dataset_hash, self.config.data_path)
        if self.config.lr_schedule_steps:    # asked for on the command line (or recorded in all_config.yaml)
            self.state.lr_horizon = self.config.lr_schedule_steps
        if self.processes.is_main:
            print(f"resuming {self.run_dir} from {path.name} (step {self.state.step}/{progress.total_steps})", flush=True)
        return self.state.step

    # ------------------------------------------------------------------------------------------------
    # The loop

    def run(self) -> TrainResult:
        config, state = self.config, self.state
        total_iters = config.epochs // config.eval_interval
        if self.processes.is_main:
            n_params = sum(p.numel() for p in self.params)
            print(f"hrm train: {self.device_summary()}\n  {n_params:,} parameters, {self.total_steps} steps "
                  f"({total_iters} iterations of {config.eval_interval} epochs), run dir {self.run_dir}", flush=True)
        self._emit(TrainEvent("start", state.step, self.total_steps, run_dir=self.run_dir))
        bar = self._progress_bar()
        previous_handler = self._install_interrupt_handler()
        try:
            for state.iteration in range(state.first_iteration, total_iters):
                state.iteration_finished = False
                self.forward.train()             # the compiled wrapper passes the mode on to the model
                for _set_name, batch, _global_size in self.train_data:
                    if state.step >= self.total_steps:
                        # The original consumes the rest of the pass, counting steps. NOTE: TRM's averaging still
                        # moves towards the (now fixed) parameters on these calls, as the official loop updates it.
                        state.step += 1
                        if state.ema is not None:
                            state.ema.update(self.head)
                        continue
                    self.train_step(batch)
                    if bar is not None:
                        bar.update(1)
                    if state.step % config.logging.log_interval == 0 or state.step == self.total_steps:
                        self._log_train(bar)
                    periodic = bool(config.checkpoint_interval) and state.step % config.checkpoint_interval == 0
                    if periodic or self.stop_requested:
                        self._checkpoint()
                    if self.stop_requested:
                        break
                else:                            # the pass is done: evaluate, then checkpoint
                    if state.iteration >= config.min_eval_interval:
                        self._evaluate_and_log(bar)
                    state.iteration_finished = True
                    last = state.iteration == total_iters - 1
                    if config.checkpoint_every_eval or last or self.stop_requested:
                        self._checkpoint()
                if self.stop_requested:
                    break
        finally:
            if bar is not None:
                bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        stopped = self.stop_requested and not (state.iteration == total_iters - 1 and state.iteration_finished)
        if self.processes.is_main and self._interrupted:
            print(f"interrupted: continue with  hrm train resume={self.run_dir}", flush=True)
        self._emit(TrainEvent("end", state.step, self.total_steps, {**self.last_train, **self.last_eval}, self.run_dir))
        return TrainResult(self.run_dir, state.step, self.total_steps, self.last_train, self.last_eval,
                           self.last_checkpoint, stopped)

    def train_step(self, batch: dict[str, torch.Tensor]) -> None:
        """One optimisation step on `batch`, as `run` takes it: the step counter advanced, then forward,
        backward, the optimisers and the weight averaging; no logging, evaluation or checkpoint. Benchmarks and
        profilers drive the trainer with it (`batch` as `train_data` yields it)."""
        state, timer = self.state, self.timer
        state.step += 1
        with timer("batch to device"):
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            if state.carry is None:
                state.carry = self.head.initial_carry(batch)
        with timer("forward"):                        # the loss head: the segment, the Q-target forward, the loss
            state.carry, loss, metrics, _, _ = self._call(state.carry, batch)
        with timer("backward"):
            ((1 / self.config.global_batch_size) * loss).backward()
            dist_.all_reduce_grads(self.params, self.processes)
        with timer("optimizer"):
            for optimizer, base_lr in zip(state.optimizers, self.base_lrs):
                if self.config.freeze_weights and optimizer is state.adam:
                    optimizer.zero_grad(set_to_none=True)    # the network gets gradients and is never updated
                    continue
                lr = cosine_schedule_with_warmup(state.step, base_lr, self.config.lr_warmup_steps, state.lr_horizon,
                                                 self.config.lr_min_ratio)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        with timer("averaging and metrics"):
            if state.ema is not None:
                state.ema.update(self.head)
            self._accumulate({**metrics, "loss": loss.detach()})

    def _accumulate(self, metrics: dict[str, torch.Tensor]) -> None:
        """Sum raw metrics on the device, without a host sync, until the next log."""
        if self._metric_sums is None:
            self._metric_keys = sorted(metrics)
            sum_dtype = torch.float32 if self.device.type == "mps" else torch.float64
            self._metric_sums = torch.zeros(len(self._metric_keys), dtype=sum_dtype, device=self.device)
        self._metric_sums += torch.stack([metrics[k].to(self._metric_sums.dtype) for k in self._metric_keys])
        self._logged_steps += 1

    def _log_train(self, bar) -> None:
        """Reduce the summed metrics to rank 0 and normalise them as the original (losses per example,
        the rest per counted row)."""
        with self.timer("host waits (metrics to the host)"):
            sums = dist_.reduce_to_main(self._metric_sums, self.processes).tolist()
        raw = dict(zip(self._metric_keys, sums))
        n, now = self._logged_steps, time.perf_counter()
        count = max(raw["count"], 1)
        metrics = {f"train/{k}": v / (self.config.global_batch_size * n if k.endswith("loss") else count)
                   for k, v in raw.items() if k != "count"}
        # NOTE: the original logs count/count (= 1); the halted rows per step says more.
        metrics["train/count"] = raw["count"] / n
        metrics["train/lr"] = self.state.adam.param_groups[0]["lr"]
        metrics["train/steps_per_second"] = n / max(now - self._log_time, 1e-9)
        self._metric_sums.zero_()
        self._logged_steps, self._log_time = 0, now
        self.last_train = metrics
        if self.loggers is not None:
            self.loggers.log(self.state.step, metrics)
        if bar is not None:
            bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", exact=f"{metrics['train/exact_accuracy']:.3f}",
                            lr=f"{metrics['train/lr']:.2e}", refresh=False)
        self._emit(TrainEvent("log", self.state.step, self.total_steps, metrics, self.run_dir))

    def _evaluate_and_log(self, bar) -> None:
        if self.test_data is None:
            return
        from hrm.evaluation.metrics import normalise

        sums, rows = self._evaluate()
        metrics = {f"eval/{k}": float(v) for k, v in normalise(sums).items()}
        self.last_eval = metrics
        if self.processes.is_main:
            self.loggers.log(self.state.step, metrics)
            message = (f"eval at step {self.state.step}: exact_accuracy {metrics['eval/exact_accuracy']:.4f}, "
                       f"accuracy {metrics['eval/accuracy']:.4f} on {metrics['eval/count']:.0f} examples")
            (bar.write if bar is not None else print)(message)
            if rows is not None:
                self._save_predictions(rows)
        self._emit(TrainEvent("eval", self.state.step, self.total_steps, metrics, self.run_dir))

    def _evaluate(self) -> tuple[dict[str, float], Any]:
        """The trainer's evaluation: the test split (or its first data.eval_max_examples). Returns the loss
        head's metric sums over all ranks and, when eval_save_outputs asks for them, the rows; without, only
        the sums are kept, so a large test split costs no host memory."""
        keep = bool(self.config.eval_save_outputs)
        outputs = self.evaluate(self.test_data, self.config.data.eval_max_examples, keep_rows=keep)
        return outputs.metric_sums, (outputs.rows if keep and self.processes.is_main else None)

    def evaluate(self, dataset, max_examples: int | None = None, keep_rows: bool = False):
        """`dataset` (a test-mode PuzzleDataset) under the evaluation protocol, with the weights the run reports
        (the averaged ones when it averages them), by the one loop for every caller (hrm.evaluation.loop.evaluate,
        whose SplitOutputs it returns). A model that was training is left in train mode, so that a callback
        may evaluate between two steps (hrm.arena)."""
        from hrm.evaluation.loop import evaluate, torch_runner

        if self._eval_runner is None:
            self._eval_runner = torch_runner(self.head, compile=compile_enabled(self.config.compile, self.device))
        training = self.head.training
        with contextlib.ExitStack() as weights:
            if self.state.ema is not None:      # the averaged weights are the ones a run reports (and saves)
                weights.enter_context(self.state.ema.averaged(self.head))
            outputs = evaluate(self.head, dataset, self.device, max_examples=max_examples, runner=self._eval_runner,
                               keep_rows=keep_rows)
        if training:
            self.forward.train()                # the compiled wrapper passes the mode on to the model
        return outputs

    def _save_predictions(self, rows: dict) -> None:
        """NOTE: the original saves the keys named in eval_save_outputs with torch.save; hrm writes the
        standard predictions file (notes/PREDICTIONS.md) whenever eval_save_outputs is not empty."""
        from hrm.data import read_manifest
        from hrm.evaluation.metrics import exact
        from hrm.evaluation.predictions import write_predictions
        from hrm.puzzles import detect, family_name

        rows = dict(rows, exact=exact(rows["predictions"], rows["labels"]))
        arch = self.config.arch
        task = family_name(detect(arch.seq_len, arch.vocab_size, (read_manifest(self.config.data_path) or {}).get("builder")))
        write_predictions(self.run_dir / "predictions" / f"step_{self.state.step}", rows, {
            "task": task, "data_path": str(self.config.data_path), "split": "test",
            "checkpoint": str(self.checkpoints_dir / f"step_{self.state.step}"),
            "halt_max_steps": self.config.arch.halt_max_steps,
            "dataset_hash": self.dataset_hash})

    # ------------------------------------------------------------------------------------------------
    # Checkpoints

    def _checkpoint(self) -> None:
        """Write a checkpoint of the whole state (rank 0 writes; every rank contributes its carry and RNG)."""
        path = self.state.save(self.checkpoints_dir, self.config.arch, self.processes, self.device, self.total_steps,
                               self.config.global_batch_size, self.dataset_hash, self.config.keep_checkpoints)
        if path is not None:
            self.last_checkpoint = path
        self._emit(TrainEvent("checkpoint", self.state.step, self.total_steps, run_dir=self.run_dir, path=path))

    # ------------------------------------------------------------------------------------------------
    # Feedback

    def device_summary(self) -> str:
        compiled = "compiled" if getattr(self.forward, "compiled", False) else "eager"
        procs = f", {self.processes.world_size} processes" if self.processes.distributed else ""
        return (f"device={self.device} dtype={str(self.dtype).removeprefix('torch.')} ({self.device_reason}), "
                f"{compiled}{procs}")

    def _progress_bar(self):
        if not (self.processes.is_main and self.config.logging.progress):
            return None
        from hrm.progress import progress_bar
        return progress_bar(total=self.total_steps, initial=min(self.state.step, self.total_steps), unit="step", desc="train")

    def _emit(self, event: TrainEvent) -> None:
        """Call the callback on rank 0; returning False requests the stop (ranks agree on it)."""
        stop = False
        if self.callback is not None and self.processes.is_main:
            stop = self.callback(event) is False
        if event.kind not in ("log", "eval", "checkpoint"):
            return                      # "start" and "end" cannot stop a run
        if self.processes.distributed:
            stop = bool(dist_.broadcast_object(stop, self.processes))
        self.stop_requested |= stop

    def _install_interrupt_handler(self):
        """Ctrl-C finishes the current step, writes a checkpoint and exits (one process; a second Ctrl-C
        interrupts at once). Under torchrun the default handling stays."""
        if self.processes.distributed or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        try:
            def handler(signum, frame):
                if self._interrupted:
                    raise KeyboardInterrupt
                self._interrupted = self.stop_requested = True
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
            shutdown(self.processes)
            self.owns_process_group = False
