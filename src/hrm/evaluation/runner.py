"""`hrm eval` as a library: evaluate a checkpoint on a dataset split and write what it found.

    report = run_eval(EvalConfig(checkpoint="runs/x", data_path="data/sudoku-4x4"))

Steps: find the checkpoint (a run directory's latest, a step_<N> folder, a .safetensors file, or an
original `step_<N>` state dict with its all_config.yaml); load it; check that the dataset is the one it was
trained on (content hash when recorded, sizes always); run the eval-mode ACT loop over the split (sharded
under torchrun); then on rank 0 compute the figures, write predictions.safetensors (or .npz),
results.json and, for ARC, submission.json and arc_tasks.json. A list in steps= or samples= evaluates the
grid of depths and breadths instead (hrm.evaluation.sweep): a table, sweep.json and PNG curves.
"""
from __future__ import annotations

import difflib
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from hrm.evaluation import arc as arc_scoring
from hrm.evaluation.report import (arc_outputs, arc_versions, prediction_arrays, protocol, protocol_line, report_lines,
                                   summarise, test_set, test_set_line)
from hrm.evaluation.breadth import SELECTORS
from hrm.evaluation.sources import EvalError, check_dataset, choose_batch_size, default_out, untrained_embeddings
from hrm.export.torch_step import INITS

HALTING = ("fixed", "q")
SWEEPABLE = ("steps", "samples")            # options that take a list, to evaluate every value in one call


@dataclass
class EvalConfig:
    checkpoint: str = ""                     # run dir, checkpoints/step_<N>, weights dir/.safetensors, or an original step_<N>
    data_path: str | None = None             # None: the data_path the checkpoint's run was trained on
    split: str = "test"
    batch_size: int | None = None            # global batch; None: the run's global_batch_size (as the original)
    max_examples: int | None = None          # evaluate a prefix of the split
    device: str = "auto"
    dtype: str = "auto"
    halting: str = "fixed"                   # fixed: every row runs halt_max_steps (original); q: stop at the Q head
    save_steps: bool = False                 # also save every step's predictions and Q logits
    format: str = "safetensors"              # safetensors | npz
    out: str | None = None                   # output folder; None: RUN_DIR/eval/<step>-<dataset>-<split>
    tta: int = 1                             # Sudoku/maze: versions per puzzle (the original + tta-1 transforms),
                                             # each one `samples` trajectories of the breadth (hrm.evaluation.tta)
    seed: int = 0                            # for the versions, the noise and the random initial states
    arc_k: list[int] = field(default_factory=lambda: list(arc_scoring.DEFAULT_KS))
    force: bool = False                      # evaluate even if the dataset differs from the training dataset
    verify: str = "auto"                     # dataset manifest check: auto | quick | full | none
    progress: bool = True
    backend: str = "torch"                   # torch (the loss head), or a hrm.export backend: numpy, onnx, mlx, ...
    compile: bool | None = None              # torch.compile the model; None: on CUDA only (as hrm train)
    # Depth and breadth: a list in either (steps=1,2,4 samples=1,4) evaluates the grid (hrm.evaluation.sweep).
    steps: int | list[int] | None = None     # depth: ACT steps per puzzle (None: the halt_max_steps it was trained with)
    samples: int | list[int] = 1             # breadth: trajectories per puzzle (hrm.evaluation.breadth)
    noise: float = 0.0                       # std of the Gaussian noise on each trajectory's initial latent state
    noise_every_step: bool = False           # also on the carry before every step
    init: str = "learned"                    # learned: the model's H_init/L_init; random: drawn per trajectory
    select: str = "vote"                     # vote | vote+residual | q | residual: one answer picked without labels
    rows_per_forward: int | None = None      # breadth runs its rows in chunks of at most this many (same results);
                                             # None: 64 on the CPU, the whole batch elsewhere
    subset: int | None = None                # evaluate N examples of the split picked by a seeded permutation
    subset_seed: int = 0
    weights: str = "saved"                   # saved: model.safetensors (a run's averaged weights if it averaged
                                             # them); live: the parameters training went on from

    def depths(self) -> list[int]:
        """The depths asked for, sorted ([] when steps is unset: the model's own halt_max_steps)."""
        return sorted(set(self.steps)) if isinstance(self.steps, list) else [] if self.steps is None else [self.steps]

    def breadths(self) -> list[int]:
        return sorted(set(self.samples)) if isinstance(self.samples, list) else [self.samples]

    def is_sweep(self) -> bool:
        return isinstance(self.steps, list) or isinstance(self.samples, list)

    def validate(self) -> "EvalConfig":
        problems = []
        if not self.checkpoint:
            problems.append("checkpoint=PATH is required")
        if self.halting not in HALTING:
            problems.append(f"halting must be one of {', '.join(HALTING)}, got {self.halting!r}")
        if self.format not in ("safetensors", "npz"):
            problems.append(f"format must be safetensors or npz, got {self.format!r}")
        if self.tta < 1:
            problems.append(f"tta must be >= 1 (the number of versions per puzzle), got {self.tta}")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_examples is not None and self.max_examples < 1:
            problems.append(f"max_examples must be >= 1, got {self.max_examples}")
        if not self.arc_k or any(k < 1 for k in self.arc_k):
            problems.append(f"arc_k must be a list of positive integers, got {self.arc_k}")
        depths, breadths = self.depths(), self.breadths()
        if (self.steps is not None and not depths) or min(depths, default=1) < 1:
            problems.append(f"steps must be >= 1 (ACT steps per puzzle), got {_shown(self.steps)}")
        if self.steps is not None and self.backend != "torch":
            problems.append(f"steps=D applies to backend=torch (an export's loop runs its own halt_max_steps), "
                            f"not to backend={self.backend}")
        if not breadths or min(breadths) < 1:
            problems.append(f"samples must be >= 1 (trajectories per puzzle), got {_shown(self.samples)}")
        if not self.noise >= 0:
            problems.append(f"noise must be >= 0 (a standard deviation), got {self.noise}")
        if self.init not in INITS:
            problems.append(f"init must be learned or random, got {self.init!r}")
        if self.select not in SELECTORS:
            problems.append(f"select must be vote, vote+residual, q or residual, got {self.select!r}")
        if (max(breadths, default=1) > 1 or self.noise or self.init != "learned") and self.backend != "torch":
            problems.append(f"samples, noise and init=random apply to backend=torch, not to backend={self.backend}")
        if self.tta > 1 and "residual" in self.select and self.backend != "torch":
            problems.append(f"select={self.select} needs the answer latent's change, which only backend=torch reports; "
                            f"use select=vote or select=q with backend={self.backend}")
        if self.rows_per_forward is not None and self.rows_per_forward < 1:
            problems.append(f"rows_per_forward must be >= 1 (rows in one forward), got {self.rows_per_forward}")
        if self.is_sweep():
            for given, why in ((self.halting != "fixed", "halting=q"), (self.save_steps, "save_steps=true")):
                if given:
                    problems.append(f"a sweep (a list in steps= or samples=) reports the fixed rule per cell; "
                                    f"{why} is for a single depth and breadth")
        if self.subset is not None and self.subset < 1:
            problems.append(f"subset must be >= 1 (examples to evaluate), got {self.subset}")
        if self.subset is not None and self.max_examples is not None:
            problems.append("subset=N (a seeded choice of rows) and max_examples=N (a prefix): give one of them")
        if not 0 <= self.subset_seed < 2 ** 32:
            problems.append(f"subset_seed must be between 0 and 2**32 - 1, got {self.subset_seed}")
        if self.weights not in ("saved", "live"):
            problems.append(f"weights must be saved or live, got {self.weights!r}")
        if self.compile and self.backend != "torch":
            problems.append(f"compile=true applies to backend=torch, not to backend={self.backend}")
        if problems:
            raise EvalError("; ".join(problems))
        return self


def parse_config(argv: list[str]) -> EvalConfig:
    """key=value arguments (the original's style: `checkpoint=... data_path=...`) into an EvalConfig."""
    from hrm.config_values import ConfigError, coerce

    config = EvalConfig()
    hints = typing.get_type_hints(EvalConfig)
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key:
            raise EvalError(f"'{arg}' is not a key=value argument (e.g. checkpoint=runs/x data_path=data/y)")
        if key not in hints:
            close = difflib.get_close_matches(key, list(hints), n=1)
            raise EvalError(f"unknown option '{key}'" + (f"; did you mean '{close[0]}'?" if close else ""))
        try:
            if key in SWEEPABLE:        # one value, or a list of them: a sweep
                one = value.strip().strip("[]") == value.strip() and "," not in value
                tp = (int | None if key == "steps" else int) if one else list[int]
                setattr(config, key, coerce(value if one else _list_value(value), tp, f"'{arg}'"))
            else:
                setattr(config, key, coerce(_list_value(value) if key == "arc_k" else value, hints[key], f"'{arg}'"))
        except ConfigError as e:
            raise EvalError(str(e)) from None
    return config.validate()


def _list_value(text: str):
    text = text.strip().strip("[]")
    return [v.strip() for v in text.split(",") if v.strip()]


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


# ----------------------------------------------------------------------------------------------------
# The run

def run_eval(config: EvalConfig, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Evaluate; returns the results (what results.json holds) on rank 0, None on the other ranks."""
    from hrm.data import PuzzleDataset
    from hrm.device import compile_enabled, pick_device
    from hrm.evaluation.loop import evaluate
    from hrm.evaluation.predictions import write_predictions
    from hrm.processes import device_for, init_processes, shutdown
    from hrm.runs import RunError, open_run

    config.validate()
    try:
        requested, _ = pick_device(config.device)
    except RuntimeError as e:
        raise EvalError(str(e)) from None
    processes = init_processes(requested)
    device = device_for(requested, processes)
    main = processes.is_main
    say = log if main else (lambda _: None)
    try:
        try:
            # NOTE: by default a run is evaluated in the dtype it was trained in (where this device runs it),
            # so that hrm eval reports what the trainer's own evaluation reported. Other backends are built
            # from the float32 model (their parity reference), on the CPU.
            torch_backend = config.backend == "torch"
            run = open_run(config.checkpoint, device=device if torch_backend else "cpu",
                           dtype=config.dtype if torch_backend else "float32", data_path=config.data_path,
                           split=config.split, live_weights=config.weights == "live")
            data_path = run.require_data()
        except RunError as e:
            raise EvalError(str(e)) from None
        head, arch, info, choice = run.head, run.arch, run.info, run.choice
        meta, data_hash = check_dataset(arch, info, data_path, config.split, config.force, say)
        family = run.family
        task = run.task
        runner = None
        if config.backend != "torch":
            from hrm.evaluation.backends import backend_runner
            try:
                runner = backend_runner(config.backend, head, arch, str(run.weights))
            except (ValueError, RuntimeError) as e:
                raise EvalError(str(e)) from None
            device = torch.device("cpu")
        if data_hash is None and main:
            untrained, used = untrained_embeddings(head, data_path, config.split, meta.sets)
            if untrained:
                say(f"WARNING: {untrained} of the {used} puzzle identifiers in the {config.split} split have an all-zero "
                    "(never trained) embedding in this checkpoint: the identifier map differs from the training one")
        augmenter = None
        if config.tta > 1:
            try:
                if family is None:
                    raise ValueError("test-time augmentation (tta=K) is for Sudoku and maze datasets; "
                                     "this one's puzzle family is unknown")
                augmenter = family.augmenter(meta.seq_len, meta.vocab_size, run.box)
            except ValueError as e:
                raise EvalError(str(e)) from None

        from hrm.evaluation.loop import ran_compiled, rows_hash, split_size, subset_rows, torch_runner

        split_examples = split_size(data_path, config.split, meta.sets)
        rows = None
        if config.subset:
            if config.subset > split_examples:
                raise EvalError(f"subset={config.subset} is more than the {split_examples} examples of the "
                                f"{config.split} split")
            rows = subset_rows(split_examples, config.subset, config.subset_seed)
        examples = len(rows) if rows is not None else min(split_examples, config.max_examples or split_examples)
        batch_size = choose_batch_size(config.batch_size, run.run_config.get("global_batch_size"), arch, device,
                                       examples, processes.world_size)
        dataset = PuzzleDataset(data_path, split=config.split, global_batch_size=batch_size, rank=processes.rank,
                                world_size=processes.world_size, test_set_mode=True, verify=config.verify)
        step = info.get("step")
        say(f"checkpoint  {run.weights} ({info['format']} format{', step ' + str(step) if step is not None else ''}"
            f", {run.weights_kind} weights)")
        say(f"dataset     {data_path} [{config.split}], task {task}, "
            + (f"hash {data_hash[:12]}" + (" = the checkpoint's" if info.get("dataset_hash") == data_hash else "")
               if data_hash else "no recorded hash to compare"))
        compiled = runner is None and compile_enabled(config.compile, device)
        if runner is None:
            say(f"device      {choice.describe()}" + (", compiled" if compiled else "")
                + (f", {processes.world_size} processes" if processes.distributed else ""))
        else:
            say(f"backend     {config.backend}: {runner.detail}")
        dataset_versions = family is not None and family.dataset_versions
        versions = arc_versions(data_path, config.split, meta.sets) if dataset_versions else None
        sweep = config.is_sweep()
        depth = (config.depths() or [arch.halt_max_steps]) if sweep else config.steps or arch.halt_max_steps
        examples_chosen = test_set(split_examples, config.max_examples, config.subset, config.subset_seed,
                                   None if rows is None else rows_hash(rows))
        setting = protocol(config, checkpoint=str(run.weights), checkpoint_step=step, weights=run.weights_kind,
                           device=str(device), dtype=str(choice.dtype).removeprefix("torch."),
                           data_path=str(data_path), data_hash=data_hash, task=task, test_set=examples_chosen,
                           depth=depth, trained_steps=arch.halt_max_steps, halt_rule=arch.halting_policy.rule,
                           batch_size=batch_size, dataset_versions=dataset_versions, arc_versions=versions,
                           compiled=compiled)
        say(f"test set    {test_set_line(examples_chosen)}")
        say(f"protocol    {protocol_line(setting)}; batch {batch_size}")

        if sweep:
            from hrm.evaluation.sweep import run_sweep, sweep_lines, write_sweep
            found = run_sweep(head, dataset, config, depth, device=device, compile=compiled, rows=rows,
                              progress=config.progress and main, augmenter=augmenter)
            if not main:
                return None
            out_dir = Path(config.out) if config.out else _out_folder(run, data_path, config, "-sweep")
            setting["compiled"] = all(r["compiled"] for r in found["runs"])     # compiled to the end, no fallback
            found = {"protocol": setting, **found}
            written = write_sweep(out_dir, found)
            for line in sweep_lines(found):
                say(line)
            say("wrote       " + ", ".join(str(p) for p in written))
            return found

        # Breadth: several trajectories per puzzle (samples, tta's versions), or one with diversity (noise, init).
        if config.samples > 1 or config.tta > 1 or config.noise or config.init != "learned":
            from hrm.evaluation.breadth import breadth_runner, default_rows_per_forward
            runner = breadth_runner(head, config.samples, config.noise, config.select, config.seed,
                                    config.noise_every_step, steps=config.steps, compile=compiled, init=config.init,
                                    augmenter=augmenter, versions=config.tta, inner=runner,
                                    rows_per_forward=default_rows_per_forward(device, config.rows_per_forward))
        elif runner is None:
            runner = torch_runner(head, compile=compiled, steps=config.steps)
        start = time.perf_counter()
        outputs = evaluate(head, dataset, device=device, save_steps=config.save_steps, max_examples=config.max_examples,
                           progress=config.progress and main, runner=runner, rows=rows)
        seconds = time.perf_counter() - start
        if not main:
            return None
        results = summarise(outputs, config, setting, seconds)
        # Whether the evaluation ran compiled to the end (a compiler failure falls back to eager, with a warning).
        results["protocol"]["compiled"] = ran_compiled(runner)
        out_dir = Path(config.out) if config.out else _out_folder(run, data_path, config)
        arrays = prediction_arrays(outputs, config.halting)
        metadata = {"task": task, "data_path": str(data_path), "split": config.split, "checkpoint": str(run.weights),
                    "halt_max_steps": depth, "halt_rule": arch.halting_policy.rule,
                    "architecture": arch.name, "dataset_hash": data_hash or ""}
        written = [write_predictions(out_dir, arrays, metadata, config.format)]
        if dataset_versions:
            written += arc_outputs(outputs, data_path, config, results, out_dir)
        results["checkpoint"] = str(run.weights)
        results["data_path"] = str(data_path)
        results["dataset_hash"] = data_hash
        arc_scoring.write_json(out_dir / "results.json", results, indent=1)
        written.append(out_dir / "results.json")
        for line in report_lines(results):
            say(line)
        say("wrote       " + ", ".join(str(p) for p in written))
        return results
    finally:
        shutdown(processes)


def _out_folder(run, data_path: Path, config: EvalConfig, suffix: str = "") -> Path:
    """The default output folder (sources.default_out), marked when it holds a subset's or a sweep's figures."""
    folder = default_out(run, data_path, config)
    subset = f"-subset{config.subset}s{config.subset_seed}" if config.subset else ""
    return folder.with_name(folder.name + subset + suffix)
