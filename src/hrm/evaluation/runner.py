"""`hrm eval` as a library: evaluate a checkpoint on a dataset split and write what it found.

    report = run_eval(EvalConfig(checkpoint="runs/x", data_path="data/sudoku-4x4"))

Steps: find the checkpoint (a run directory's latest, a step_<N> folder, a .safetensors file, or an
original `step_<N>` state dict with its all_config.yaml); load it; check that the dataset is the one it was
trained on (content hash when recorded, sizes always); run the eval-mode ACT loop over the split (sharded
under torchrun); then on rank 0 compute the figures, write predictions.safetensors (or .npz),
results.json and, for ARC, submission.json and arc_tasks.json.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from hrm.evaluation import arc as arc_scoring
from hrm.evaluation import metrics

HALTING = ("fixed", "q")


class EvalError(ValueError):
    """A problem with the checkpoint, the dataset or the options; the message says what and where."""


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
    tta: int = 1                             # Sudoku/maze: versions per puzzle (the original + tta-1 transforms)
    seed: int = 0                            # for the test-time augmentation draws
    arc_k: list[int] = field(default_factory=lambda: list(arc_scoring.DEFAULT_KS))
    force: bool = False                      # evaluate even if the dataset differs from the training dataset
    verify: str = "auto"                     # dataset manifest check: auto | quick | full | none
    progress: bool = True
    backend: str = "torch"                   # torch (the loss head), or a hrm.export backend: numpy, onnx, mlx, ...

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
        if problems:
            raise EvalError("; ".join(problems))
        return self


def parse_config(argv: list[str]) -> EvalConfig:
    """key=value arguments (the original's style: `checkpoint=... data_path=...`) into an EvalConfig."""
    from hrm.training.config import ConfigError, coerce

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
            setattr(config, key, coerce(_list_value(value) if key == "arc_k" else value, hints[key], f"'{arg}'"))
        except ConfigError as e:
            raise EvalError(str(e)) from None
    return config.validate()


def _list_value(text: str):
    text = text.strip().strip("[]")
    return [v.strip() for v in text.split(",") if v.strip()]


# ----------------------------------------------------------------------------------------------------
# Checkpoint and dataset

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


def resolve_data_path(config: EvalConfig, resolved: Resolved) -> Path:
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
         "the dataset it was trained on: rebuilt ARC datasets number the puzzles differently (spec §10.3) and "
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


def default_out(resolved: Resolved, data_path: Path, config: EvalConfig) -> Path:
    """RUN_DIR/eval/<step>-<dataset>-<split>[-halting_q][-tta<K>][-<backend>]: one folder per setting."""
    folder = resolved.weights if resolved.weights.is_dir() else resolved.weights.parent
    run_dir = resolved.run_dir or (folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent)
    name = f"{resolved.step_name}-{data_path.resolve().name}-{config.split}"
    name += "-halting_q" * (config.halting == "q") + (f"-tta{config.tta}" if config.tta > 1 else "")
    name += f"-{config.backend}" * (config.backend != "torch")
    return run_dir / "eval" / name


# ----------------------------------------------------------------------------------------------------
# The run

def run_eval(config: EvalConfig, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Evaluate; returns the results (what results.json holds) on rank 0, None on the other ranks."""
    from hrm.data import DatasetFormatError, PuzzleDataset, load_metadata
    from hrm.device import choose
    from hrm.evaluation import distributed
    from hrm.evaluation.loop import evaluate
    from hrm.evaluation.predictions import write_predictions
    from hrm.models.checkpoint import CheckpointError, is_hrm_checkpoint, load_checkpoint
    from hrm.training.distributed import device_for, init_processes, shutdown

    config.validate()
    choice = choose(config.device, config.dtype)
    processes = init_processes(choice.device)
    device = device_for(choice.device, processes)
    main = processes.is_main
    say = log if main else (lambda _: None)
    try:
        resolved = resolve_checkpoint(config.checkpoint)
        data_path = resolve_data_path(config, resolved)
        try:
            overrides = None
            if not is_hrm_checkpoint(resolved.weights):
                # The original's all_config.yaml has no seq_len (it came from the dataset at run time).
                overrides = {"seq_len": load_metadata(data_path, config.split).seq_len}
            # Other backends are built from the float32 model (their parity reference), on the CPU.
            dtype = choice.dtype if config.backend == "torch" else torch.float32
            head, arch, info = load_checkpoint(resolved.weights, device=device if config.backend == "torch" else "cpu",
                                               dtype=dtype, arch_overrides=overrides)
        except (CheckpointError, DatasetFormatError) as e:
            raise EvalError(str(e)) from None
        meta, data_hash = check_dataset(arch, info, data_path, config.split, config.force, say)
        task = dataset_task(data_path, meta.seq_len, meta.vocab_size)
        runner = None
        if config.backend != "torch":
            from hrm.evaluation.backends import backend_runner
            try:
                runner = backend_runner(config.backend, head, arch, str(resolved.weights))
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
            from hrm.evaluation.tta import augmenter_for

            try:
                augmenter = augmenter_for(task, meta.seq_len, meta.vocab_size, dataset_box(data_path))
            except ValueError as e:
                raise EvalError(str(e)) from None

        from hrm.evaluation.loop import split_size

        examples = split_size(data_path, config.split, meta.sets)
        if config.max_examples:
            examples = min(examples, config.max_examples)
        batch_size = choose_batch_size(config.batch_size, resolved.run_config.get("global_batch_size"), arch, device,
                                       examples, processes.world_size)
        dataset = PuzzleDataset(data_path, split=config.split, global_batch_size=batch_size, rank=processes.rank,
                                world_size=processes.world_size, test_set_mode=True, verify=config.verify)
        say(f"checkpoint  {resolved.weights} ({info['format']} format{', step ' + str(info['step']) if 'step' in info else ''})")
        say(f"dataset     {data_path} [{config.split}], task {task}, "
            + (f"hash {data_hash[:12]}" + (" = the checkpoint's" if info.get("dataset_hash") == data_hash else "")
               if data_hash else "no recorded hash to compare"))
        if runner is None:
            say(f"device      {choice.describe()}" + (f", {processes.world_size} processes" if processes.distributed else ""))
        else:
            say(f"backend     {config.backend}: {runner.detail}")
        versions = arc_versions(data_path, config.split, meta.sets) if task == "arc" else None
        say("protocol    " + protocol_line(arch.halt_max_steps, config, task, versions) + f"; batch {batch_size}")

        start = time.perf_counter()
        outputs = evaluate(head, dataset, device=device, save_steps=config.save_steps, max_examples=config.max_examples,
                           progress=config.progress and main, augmenter=augmenter, versions=config.tta,
                           seed=config.seed, vote_q_halted=config.halting == "q", runner=runner)
        seconds = time.perf_counter() - start
        if not main:
            return None
        results = summarise(outputs, config, task, arch.halt_max_steps, seconds, batch_size, versions)
        out_dir = Path(config.out) if config.out else default_out(resolved, data_path, config)
        arrays = prediction_arrays(outputs, config.halting)
        metadata = {"task": task, "data_path": str(data_path), "split": config.split, "checkpoint": str(resolved.weights),
                    "halt_max_steps": arch.halt_max_steps, "dataset_hash": data_hash or ""}
        written = [write_predictions(out_dir, arrays, metadata, config.format)]
        if task == "arc":
            written += arc_outputs(outputs, data_path, config, results, out_dir)
        results["checkpoint"] = str(resolved.weights)
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


def arc_versions(data_path: Path, split: str, sets: list[str]) -> float:
    """Mean number of versions (original + augmentations) per task in an ARC split."""
    from hrm.data import load_identifiers
    from hrm.data.format import array_path

    names = load_identifiers(data_path)
    ids = np.unique(np.concatenate([np.load(array_path(data_path, split, s, "puzzle_identifiers")) for s in sets]))
    tasks = {arc_scoring.task_name(names[i]) for i in ids if i > 0}
    return len(ids[ids > 0]) / max(1, len(tasks))


def protocol_line(halt_max_steps: int, config: EvalConfig, task: str, arc_versions: float | None = None) -> str:
    halting = (f"every puzzle runs halt_max_steps={halt_max_steps} ACT steps (the original's rule)" if config.halting == "fixed"
               else f"each puzzle stops when its Q head says halt (at most halt_max_steps={halt_max_steps})")
    if task == "arc":
        augment = (f"augmentations: {arc_versions:g} versions per task (the dataset's), voted; "
                   f"pass@k for k=" + ",".join(map(str, config.arc_k)))
    elif config.tta > 1:
        augment = f"augmentations: {config.tta} versions per puzzle (original + {config.tta - 1} random), voted"
    else:
        augment = "augmentations: none (1 version per puzzle)"
    return f"{halting}; {augment}"


def prediction_arrays(outputs, halting: str) -> dict[str, np.ndarray]:
    """The arrays of the predictions file. With halting=q, a row's answer is the one at its Q-halt step."""
    rows = outputs.rows
    q = halting == "q"
    predictions = rows["q_halt_predictions"] if q else rows["predictions"]
    arrays = {
        "inputs": rows["inputs"], "labels": rows["labels"], "puzzle_identifiers": rows["puzzle_identifiers"],
        "predictions": predictions,
        "q_halt_logits": rows["q_halt_q_logits"] if q else rows["q_halt_logits"],
        "q_continue_logits": rows["q_continue_logits"],
        "exact": metrics.exact(predictions, rows["labels"]),
    }
    for name in ("step_predictions", "step_q_halt_logits", "step_q_continue_logits"):
        if name in rows:
            arrays[name] = rows[name]
    return arrays


def summarise(outputs, config: EvalConfig, task: str, halt_max_steps: int, seconds: float, batch_size: int,
              arc_versions: float | None = None) -> dict[str, Any]:
    """results.json. NOTE: "metrics" are the original's, divided by count; its q_halt_loss sums over every
    row of every batch, padding rows included, so it depends on the batch size (it is not printed)."""
    rows = outputs.rows
    fixed = metrics.normalise(outputs.metric_sums)
    results: dict[str, Any] = {
        "protocol": {"backend": config.backend, "halting": config.halting, "halt_max_steps": halt_max_steps,
                     "batch_size": batch_size, "arc_versions_per_task": arc_versions,
                     "split": config.split,
                     "examples": outputs.num_examples, "tta_versions": config.tta if task != "arc" else None,
                     "arc_k": config.arc_k if task == "arc" else None, "task": task},
        "metrics": fixed,
        "seconds": seconds,
        "puzzles_per_second": outputs.num_examples / seconds if seconds > 0 else float("nan"),
    }
    if config.halting == "q":
        q_halted = metrics.from_predictions(rows["q_halt_predictions"], rows["labels"], rows["q_halt_q_logits"],
                                            rows["q_halt_step"])
        results["q_halting"] = {"metrics": q_halted,
                                "comparison": metrics.q_halting_comparison(fixed, q_halted, halt_max_steps)}
    if "tta_predictions" in rows:
        single = rows["q_halt_predictions"] if config.halting == "q" else rows["predictions"]
        one = metrics.from_predictions(single, rows["labels"])
        voted = metrics.from_predictions(rows["tta_predictions"], rows["labels"])
        results["tta"] = {"versions": config.tta, "single_pass": one, "voted": voted,
                          "gain": voted["exact_accuracy"] - one["exact_accuracy"]}
    return results


def arc_outputs(outputs, data_path: Path, config: EvalConfig, results: dict[str, Any], out_dir: Path) -> list[Path]:
    from hrm.data import load_identifiers

    rows = outputs.rows
    q = config.halting == "q"
    scored = arc_scoring.score(rows["inputs"], rows["labels"], rows["puzzle_identifiers"],
                               rows["q_halt_predictions"] if q else rows["predictions"],
                               rows["q_halt_q_logits"] if q else rows["q_halt_logits"],
                               load_identifiers(data_path), config.arc_k)
    results["arc"] = scored.summary()
    sub = arc_scoring.submission(scored)
    arc_scoring.validate_submission(sub)
    arc_scoring.write_json(out_dir / "submission.json", sub)
    arc_scoring.write_json(out_dir / "arc_tasks.json", scored.per_task())
    return [out_dir / "submission.json", out_dir / "arc_tasks.json"]


def _pct(x: float) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:6.2f}%"


def report_lines(results: dict[str, Any]) -> list[str]:
    m = results["metrics"]
    rule = " (fixed rule)" if "q_halting" in results else ""
    lines = [f"results     {m['count']} puzzles{rule}, {results['puzzles_per_second']:.1f} puzzles/s ({results['seconds']:.1f} s)",
             f"  exact accuracy   {_pct(m.get('exact_accuracy'))}   <- headline: every cell right",
             f"  token accuracy   {_pct(m.get('accuracy'))}",
             f"  q-halt accuracy  {_pct(m.get('q_halt_accuracy'))}",
             f"  mean steps       {m.get('steps', float('nan')):7.2f}"]
    if "lm_loss" in m:
        lines.append(f"  lm_loss          {m['lm_loss']:7.4f}")
    if "q_halting" in results:
        c = results["q_halting"]["comparison"]
        lines += ["Q-head halting vs the fixed rule:",
                  f"  {'':18}{'exact acc.':>12}{'mean steps':>12}",
                  f"  {'fixed (original)':18}{_pct(c['fixed_exact_accuracy']):>12}{c['fixed_steps']:12.2f}",
                  f"  {'stop at Q halt':18}{_pct(c['q_halt_exact_accuracy']):>12}{c['q_halt_mean_steps']:12.2f}",
                  f"  compute saved {100 * c['compute_saved']:.1f}% of ACT steps; exact accuracy "
                  f"{100 * (c['q_halt_exact_accuracy'] - c['fixed_exact_accuracy']) + 0.0:+.2f} points"]
    if "tta" in results:
        t = results["tta"]
        lines.append(f"test-time augmentation, {t['versions']} versions voted: exact accuracy "
                     f"{_pct(t['single_pass']['exact_accuracy']).strip()} (single pass) -> "
                     f"{_pct(t['voted']['exact_accuracy']).strip()} (voted), gain {100 * t['gain']:+.2f} points")
    if "arc" in results:
        a = results["arc"]
        lines.append(f"ARC         {a['scored_tasks']} tasks, {a['test_inputs']} test inputs, {a['votes']} votes"
                     + (f", {a['stray_votes']} votes matched no test input" if a["stray_votes"] else ""))
        for k in a["task_pass_at_k"]:
            lines.append(f"  pass@{k:<5} tasks {_pct(a['task_pass_at_k'][k])}   test inputs {_pct(a['test_input_pass_at_k'][k])}")
    return lines
