"""`hrm arena`: every entrant trained on every task for the same wall-clock budget on the CPU, then scored on
held-out puzzles, over several seeds, in one table.

    hrm arena                                        # sudoku6 and sudoku9 x hrm, trm, trm_mlp, transformer x seeds 0,1,2
    hrm arena tasks=sudoku6 seeds=0 minutes=2        # a quick look
    hrm arena entrants=hrm,hrm_27m,my_block.yaml     # any architecture block or preset
    hrm arena tts=samples=32,noise=0.5,select=vote   # another test-time setting (tts=none: the protocol only)

An entry is one task x entrant x seed. For each: build the task's data (once per task, outside the budget),
train with the demo's loop (hrm.training.demo.train_for: the budget, the cosine fitted to it), scoring the
first `curve_examples` held-out puzzles at `curve_points` moments on the way (outside the budget), then score
the checkpoint on every held-out puzzle with `run_eval` twice: under the standard protocol (every puzzle runs
halt_max_steps ACT steps, the last step's answer counts) and under the test-time setting `tts` (by default
tta=8: each puzzle in 8 augmented versions, answers mapped back, and their majority answer; no labels used).
Only then is the entry's JSON written, atomically, so an arena that is killed, or run in pieces, resumes
where it stopped: finished entries are not run again. Last, OUT/arena.md (the table) and OUT/arena.png (held-out accuracy against training time)
are written from every finished entry of the grid.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path

from hrm.arena.entrants import DEFAULT_ENTRANTS, Entrant, hyper_parameters, resolve_all
from hrm.arena.tasks import DEFAULT_TASKS, TASKS, Task, describe_data
from hrm.cli_args import Command, Option

# NOTE: the best label-free setting measured (README, "Measured: depth, breadth and the selectors"): the 8
# augmented versions and their vote lift the demo HRM from 82.3% to 97.4%, 16 noisy trajectories to 86.2%,
# at half their forward passes; and unlike noise it never hurts a model that runs once (the transformer).
DEFAULT_TTS = ["tta=8", "select=vote"]
TTS_KEYS = ("steps", "samples", "noise", "noise_every_step", "select", "tta")


class ArenaError(ValueError):
    """Bad arena settings, or an OUT folder made with other ones: one line for the user."""


def parse_tts(words: list[str]) -> dict | None:
    """['samples=16', 'noise=0.3'] -> EvalConfig fields, read and checked by hrm eval's own parser; ['none'] -> None."""
    from hrm.evaluation.runner import parse_config
    from hrm.evaluation.sources import EvalError

    if [w.lower() for w in words] in ([], ["none"]):
        return None
    keys = []
    for word in words:
        key, sep, _ = word.partition("=")
        if not sep or key not in TTS_KEYS:
            raise ArenaError(f"tts: {word!r} is not one of {', '.join(k + '=...' for k in TTS_KEYS)}")
        keys.append(key)
    try:
        config = parse_config(["checkpoint=(arena)", *words])     # EvalError: one line
    except EvalError as e:
        raise ArenaError(f"tts: {e}") from None
    fields = {key: getattr(config, key) for key in keys}
    if any(isinstance(v, list) for v in fields.values()):
        raise ArenaError("tts: one depth and one breadth per entry (a list is a sweep: run hrm eval on an entry's run)")
    return fields


def machine() -> dict:
    """What the table names as the machine: the CPU model (from /proc/cpuinfo where there is one)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def entry_path(out: Path, task: str, entrant: str, seed: int) -> Path:
    return out / "entries" / task / f"{entrant}-seed{seed}.json"


def finished(path: Path, settings: dict) -> bool:
    """True if the entry at `path` is done with these settings; an entry made with others is an error (its
    numbers would not be comparable with the rest of the table)."""
    if not path.is_file():
        return False
    try:
        made = json.loads(path.read_text(encoding="utf-8"))["settings"]
    except (ValueError, KeyError, TypeError):
        raise ArenaError(f"{path}: not an arena entry (delete it to run the entry again)") from None
    for key, value in settings.items():
        if made.get(key) != value:
            raise ArenaError(f"{path} was made with {key}={made.get(key)!r}, this arena asks {key}={value!r}: use "
                             "another out= folder, the same settings, or delete the entries to run them again")
    return True


class Progress:
    """The `at_log` of train_for: (seconds, step) at every log, and at `points` moments of the budget (and
    at the end) the exact accuracy on the first `examples` held-out puzzles under the standard protocol."""

    def __init__(self, data_path: Path, budget: float, points: int, examples: int, say):
        from hrm.data import PuzzleDataset

        # NOTE: a batch of at most 256 (the demo's evaluation batch): a whole batch runs even where only its
        # first rows count, so a smaller prefix gets a batch of its own size.
        self.test = PuzzleDataset(data_path, "test", global_batch_size=min(256, examples), test_set_mode=True)
        self.budget, self.examples, self.say = budget, examples, say
        self.marks = [budget * (k + 1) / points for k in range(points)]
        self.timeline: list[tuple[float, int]] = []
        self.curve: list[dict] = []
        self.arch, self.parameters = None, None

    def __call__(self, event, trainer, seconds: float) -> None:
        if self.arch is None:
            self.arch, self.parameters = trainer.config.arch, sum(p.numel() for p in trainer.params)
        self.timeline.append((seconds, event.step))
        # train_for stops at this log: the budget is spent (its own test, on the same seconds) or the schedule is.
        last = seconds >= self.budget or event.step >= event.total_steps
        if self.marks and (seconds >= self.marks[0] or last):
            while self.marks and self.marks[0] <= seconds:
                self.marks.pop(0)
            exact = self.held_out_exact(trainer)
            self.curve.append({"seconds": seconds, "step": event.step, "exact_accuracy": exact})
            self.say(f"  {seconds / 60:5.2f} min, step {event.step:>6}: held-out exact {100 * exact:5.1f}% "
                     f"(first {self.examples} puzzles)")

    def held_out_exact(self, trainer) -> float:
        from hrm.evaluation.metrics import normalise

        # The trainer's own evaluation (its averaged weights, if any), which leaves the model in train mode.
        out = trainer.evaluate(self.test, max_examples=self.examples)
        return normalise(out.metric_sums)["exact_accuracy"]

    def seconds_per_step(self) -> float | None:
        """From the first log to the last: the steady speed, without the compilation before the first log."""
        (t0, s0), (t1, s1) = self.timeline[0], self.timeline[-1]
        return (t1 - t0) / (s1 - s0) if s1 > s0 else None


def score(checkpoint: Path, data_path: Path, out: Path, fields: dict, blocks_per_step: int) -> dict:
    """run_eval on every held-out puzzle (its protocol line kept), and the model's work per puzzle."""
    from hrm.evaluation.runner import EvalConfig, run_eval

    lines: list[str] = []
    results = run_eval(EvalConfig(checkpoint=str(checkpoint), data_path=str(data_path), device="cpu", progress=False,
                                  out=str(out), **fields), log=lines.append)
    depth = results["protocol"]["halt_max_steps"]
    forwards = depth * fields.get("samples", 1) * fields.get("tta", 1)
    breadth = results.get("breadth") or {}
    return {"exact_accuracy": results["metrics"]["exact_accuracy"], "token_accuracy": results["metrics"]["accuracy"],
            "exact_accuracy_per_step": results.get("exact_accuracy_per_step"),
            "oracle_pass_at_samples": breadth.get("oracle_pass_at_samples"),
            "protocol": next((l.split(None, 1)[1] for l in lines if l.startswith("protocol")), ""),
            "puzzles": results["protocol"]["examples"], "forward_passes_per_puzzle": forwards,
            "block_applications_per_puzzle": forwards * blocks_per_step, "seconds": results["seconds"]}


def run_entry(task: Task, entrant: Entrant, seed: int, settings: dict, out: Path, say=print) -> dict:
    """Train, score, and write one entry's JSON (atomically, last)."""
    import yaml

    from hrm.files import atomic_write_text, discard_dir
    from hrm.training.demo import train_for

    data_path = out / "data" / task.name
    run_dir = out / "runs" / task.name / entrant.label / f"seed{seed}"
    discard_dir(run_dir)                      # an entry killed part-way starts again from scratch
    config = entrant.config(data_path, run_dir, seed, settings["overrides"])
    budget = settings["minutes"] * 60
    progress = Progress(data_path, budget, settings["curve_points"], settings["curve_examples"], say)
    # NOTE: the budget is wall-clock from the trainer's construction, compilation included, exactly as the
    # demo's ten minutes: an entrant whose graph compiles slower pays for it, as it would for a user. The
    # seconds per step are measured after the first log, so they leave the compilation out.
    result = train_for(config, settings["minutes"], log=lambda m: say(f"  {m}"), at_log=progress)
    name = f"{task.name} / {entrant.label} / seed {seed}"
    if result.checkpoint is None or not progress.timeline:
        raise ArenaError(f"{name}: training stopped before its first checkpoint")
    resolved = yaml.safe_load((run_dir / "all_config.yaml").read_text(encoding="utf-8"))
    blocks = progress.arch.block_applications()[0]
    scores = {"standard": score(result.checkpoint, data_path, run_dir / "eval" / "standard", {}, blocks)}
    if settings["tts"] is not None:
        scores["tts"] = score(result.checkpoint, data_path, run_dir / "eval" / "tts", settings["tts"], blocks)
    entry = {"task": task.name, "task_title": task.title, "data": describe_data(data_path),
             "task_arguments": task.arguments(), "entrant": entrant.label, "source": entrant.describe(), "seed": seed,
             "settings": settings, "machine": machine(), "parameters": progress.parameters,
             "steps_trained": result.step, "seconds_trained": progress.timeline[-1][0],
             "seconds_to_first_log": progress.timeline[0][0], "seconds_per_step": progress.seconds_per_step(),
             "curve": progress.curve, **scores, "hyper_parameters": hyper_parameters(resolved), "config": resolved,
             "run_dir": str(run_dir), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_text(entry_path(out, task.name, entrant.label, seed), json.dumps(entry, indent=1) + "\n")
    tts = scores.get("tts")
    say(f"  held-out exact {100 * scores['standard']['exact_accuracy']:.1f}% (standard protocol)"
        + (f", {100 * tts['exact_accuracy']:.1f}% ({' '.join(settings['tts_words'])})" if tts else ""))
    return entry


def run_arena(tasks: list[Task], entrants: list[Entrant], seeds: list[int], settings: dict, out: Path,
              say=print, train: bool = True) -> list[Path]:
    """Every entry not yet finished (none with train=False), then the table and the plot of the finished
    ones; returns the paths written."""
    from hrm.arena.table import write_report

    # Every finished entry is checked first, so that a folder made with other settings is refused at once.
    pending = {task.name: [(e, s) for e in entrants for s in seeds
                           if not finished(entry_path(out, task.name, e.label, s), settings)] for task in tasks}
    for task in tasks:
        total = len(entrants) * len(seeds)
        say(f"arena: {task.name}: {total - len(pending[task.name])} of {total} entries already finished"
            + ((", running the rest" if train else ", the rest left out (table_only=true)")
               if pending[task.name] else ""))
        if not pending[task.name] or not train:
            continue
        start = time.perf_counter()
        task.build(out / "data" / task.name, say)                  # outside every budget
        say(f"data: {describe_data(out / 'data' / task.name)} ({time.perf_counter() - start:.1f} s)")
        for entrant, seed in pending[task.name]:
            say(f"arena: {task.name} / {entrant.label} ({entrant.describe()}) / seed {seed}: "
                f"training for {settings['minutes']:g} min")
            run_entry(task, entrant, seed, settings, out, say)
    return write_report(out, tasks, entrants, seeds)


def spec() -> Command:
    return Command("hrm arena", __doc__.split("\n\n")[0], [
        Option("tasks", str, list(DEFAULT_TASKS), many=True, help=f"tasks to run: {', '.join(TASKS)}"),
        Option("entrants", str, list(DEFAULT_ENTRANTS), many=True,
               help="built-in entrants (hrm, trm, trm_mlp, transformer), blocks of configs/arch, presets or .yaml paths"),
        Option("seeds", int, [0, 1, 2], many=True, help="training seeds (the data is the same for every seed)"),
        Option("minutes", float, 10.0, help="training budget per entry, wall-clock, compilation included"),
        Option("threads", int, help="torch threads for every entry (default: all cores)"),
        Option("out", Path, Path("runs/arena"), help="data, runs, entry JSONs, arena.md and arena.png"),
        Option("tts", str, list(DEFAULT_TTS), many=True,
               help="the test-time setting scored beside the standard protocol (EvalConfig keys: steps, samples, "
                    "noise, noise_every_step, select, tta), or none"),
        Option("curve_points", int, 10, help="held-out evaluations during training, for the plot"),
        Option("curve_examples", int, 256, help="held-out puzzles each of those evaluates"),
        Option("table_only", bool, False, help="true: train nothing, write the table and plot of the finished entries "
                                               "(those run in pieces, or by several processes side by side)"),
    ], passthrough="overrides", passthrough_help="Any other key=value is a training override for every entrant, "
                                                 "as for `hrm train` (e.g. compile=false arch.hidden_size=32).")


def interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)

    import torch

    from hrm.evaluation.sources import EvalError
    from hrm.training.config import ConfigError

    try:
        unknown = [t for t in args.tasks if t not in TASKS]
        if unknown:
            raise ArenaError(f"unknown task {unknown[0]!r} (tasks: {', '.join(TASKS)})")
        if not args.minutes > 0 or (args.threads is not None and args.threads < 1) or min(args.seeds) < 0 \
                or args.curve_points < 1 or args.curve_examples < 1:
            raise ArenaError("minutes, threads, curve_points and curve_examples must be positive, seeds >= 0")
        entrants = resolve_all(args.entrants)
        for entrant in entrants:          # a bad override is an error now, not after hours of other entries
            entrant.config(args.out / "data" / "x", args.out / "runs" / "x", 0, args.overrides)
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        settings = {"minutes": args.minutes, "threads": torch.get_num_threads(), "tts": parse_tts(args.tts),
                    "tts_words": list(args.tts), "curve_points": args.curve_points,
                    "curve_examples": args.curve_examples, "overrides": list(args.overrides)}
        tasks = [TASKS[t] for t in dict.fromkeys(args.tasks)]
        # NOTE: Ctrl-C aborts at once. The trainer's own handler (finish the step, checkpoint, stop) is for runs
        # that resume; an arena entry is never resumed half-way but run again, so it has nothing to save. With
        # a handler of ours in place the trainer installs none.
        previous = signal.signal(signal.SIGINT, interrupt) if threading.current_thread() is threading.main_thread() else None
        try:
            written = run_arena(tasks, entrants, sorted(set(args.seeds)), settings, args.out, train=not args.table_only)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    except (ArenaError, ConfigError, EvalError) as e:
        print(f"hrm arena: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hrm arena: interrupted; the entry in progress is not recorded, the finished ones are kept: the same "
              f"command resumes", file=sys.stderr)
        return 130
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
