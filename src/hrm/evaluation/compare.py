"""`hrm report DIR...`: runs that differ only by their seed, grouped, as mean ± std, in Markdown, CSV and PNG.

    hrm report runs/sudoku-seeds                  a folder of runs (what `hrm train seeds=0,1,2` leaves)
    hrm report runs/a/seed0 runs/a/seed1 runs/b   run directories, named one by one
    hrm report runs/a/seed*/eval/step_*-test      `hrm eval` output folders (their results.json)

An entry is one evaluation of one model:
  * a run directory of `hrm train` (its all_config.yaml): the last evaluation the trainer logged in
    metrics.jsonl, or, where the run has a demo_results.json (`hrm demo`), the demo's own evaluation;
  * an `hrm eval` output folder: its results.json, with the config of the run its checkpoint came from;
  * a folder that is neither: each of its sub-folders that is one of the two (one level down).
Entries are grouped by their config with the seed, the paths and the bookkeeping keys removed
(`defining_config`), and by their protocol: how the evaluation ran (results.json's `protocol` block; for the
trainer's and the demo's own evaluations the same facts, derived). Two protocols are the same when every key
but the seed and checkpoint identity (`identity_key`) is equal; a key one lacks and the other has differs.
Unknown keys count like known ones, so a protocol block that grows keeps comparisons honest.

NOTE: results under different protocols are refused in one report (a one-line error naming the keys that
differ), since a table puts them side by side; `mix_protocols=true` accepts them, in separate groups.
The ± is the sample standard deviation (n - 1) over the group's entries; with one entry it is n/a.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm.cli_args import Command, Option
from hrm.evaluation.compare_table import canonical, markdown, shown, write_csv, write_png

RESULTS = "results.json"
ALL_CONFIG = "all_config.yaml"
METRICS = "metrics.jsonl"
DEMO_RESULTS = "demo_results.json"
# Config keys that say where a run lives or how it is watched, not what it computes. NOTE: data_path is a
# path too: the dataset's identity is its content hash, which the protocol carries. arch.batch_size is
# global_batch_size over the number of processes, and arch's sizes are filled in from the dataset.
BOOKKEEPING = ("seed", "checkpoint_path", "run_name", "project_name", "resume", "data_path", "compile",
               "checkpoint_interval", "keep_checkpoints", "eval_save_outputs", "arch.batch_size",
               "arch.seq_len", "arch.vocab_size", "arch.num_puzzle_identifiers")
SEED_DIR = re.compile(r"^(.*?)[-_]?seed(\d+)$")


class ReportError(ValueError):
    """A path that holds no results, a damaged file, or results that cannot share a table; one line."""


# ----------------------------------------------------------------------------------------------------
# Configs and protocols

def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"arch": {"L_cycles": 2}} -> {"arch.L_cycles": 2}."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def defining_config(flat: dict[str, Any]) -> dict[str, Any]:
    """The keys of a flattened run config that decide what the run computes: not its seed, its paths, its
    logging (logging.*) or its checkpoint bookkeeping. Runs of one experiment under several seeds share it."""
    return {k: v for k, v in flat.items() if k not in BOOKKEEPING and not k.startswith("logging.")}


def identity_key(key: str) -> bool:
    """Protocol keys that name which model was evaluated (its seed, its checkpoint), not how. NOTE: `compiled`
    too: it records whether torch.compile ran to the end, which changes no figure."""
    return key == "seed" or key.endswith("_seed") or key.startswith("checkpoint") or key == "compiled"


def comparable(protocol: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in protocol.items() if not identity_key(k)}


# ----------------------------------------------------------------------------------------------------
# Reading entries

@dataclass
class Entry:
    path: Path                          # the run directory or the eval output folder
    name: str                           # the experiment's name: the run directory without its seed part
    seed: int | None
    config: dict[str, Any]              # the run's all_config.yaml, flattened ({} when not found)
    protocol: dict[str, Any]
    metrics: dict[str, float | None]    # the COLUMNS' keys; None where not known


def _json(path: Path, what: str) -> Any:
    from hrm.models.checkpoint import CheckpointError, read_json
    try:
        value = read_json(path, what)
    except CheckpointError as e:
        raise ReportError(str(e)) from None
    if not isinstance(value, dict):
        raise ReportError(f"{path}: the {what} must be a JSON object, got {type(value).__name__}")
    return value


def _config(path: Path) -> dict[str, Any]:
    from hrm.models.checkpoint import CheckpointError, read_yaml_mapping
    try:
        return flatten(read_yaml_mapping(path))
    except CheckpointError as e:
        raise ReportError(str(e)) from None


def _name(run_dir: Path) -> str:
    """runs/a/seed2 -> runs/a; runs/a-seed2 -> runs/a; runs/b -> runs/b."""
    match = SEED_DIR.match(run_dir.name)
    if match is None:
        return str(run_dir)
    return str(run_dir.parent / match.group(1)) if match.group(1) else str(run_dir.parent)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The complete training checkpoints of a run (formats §4), oldest first."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := re.fullmatch(r"step_(\d+)", p.name)) and (p / "train_state.json").is_file()]
    return sorted(found)


_PARAMETERS: dict[str, int | None] = {}


def parameter_count(weights_dir: Path) -> int | None:
    """The trainable parameters of the model in an hrm weights folder (what `hrm train` prints), counted on
    torch's meta device from its config.json; None when it holds none."""
    config = weights_dir / "config.json"
    if not config.is_file():
        return None
    arch = _json(config, "weights config").get("arch")
    key = canonical(arch)
    if key not in _PARAMETERS:
        from hrm.models import build_model
        from hrm.models.checkpoint import CheckpointError, arch_from_dict
        try:
            head = build_model(arch_from_dict(arch, str(config)), device="meta")
            _PARAMETERS[key] = sum(p.numel() for p in head.parameters())
        except (CheckpointError, ValueError, TypeError, KeyError, RuntimeError, NotImplementedError):
            _PARAMETERS[key] = None         # an architecture this hrm cannot build: not known
    return _PARAMETERS[key]


def _last_eval(path: Path) -> dict[str, Any] | None:
    """The last record of metrics.jsonl with an evaluation in it (a killed run's partial last line skipped)."""
    from hrm.files import read_jsonl_lines

    last = None
    for line in read_jsonl_lines(path):
        record = json.loads(line)
        if isinstance(record, dict) and _number(record.get("eval/exact_accuracy")) is not None:
            last = record
    return last


def read_run(run_dir: Path) -> Entry:
    """A run directory of `hrm train` (or `hrm demo`) as an entry: its final evaluation."""
    config = _config(run_dir / ALL_CONFIG)
    checkpoints = _checkpoints(run_dir)
    latest = checkpoints[-1][1] if checkpoints else None
    dataset_hash = _json(latest / "train_state.json", "training state").get("dataset_hash") if latest else None
    protocol = {"evaluated_by": "hrm train", "split": "test", "halting": "fixed",
                "halt_max_steps": config.get("arch.halt_max_steps")}
    if (run_dir / DEMO_RESULTS).is_file():
        demo = _json(run_dir / DEMO_RESULTS, "demo results")
        per_step = demo.get("exact_accuracy_per_step") or [None]
        protocol |= {"evaluated_by": "hrm demo", "halt_max_steps": len(per_step), "examples": demo.get("num_test")}
        metrics = {"exact_accuracy": _number(per_step[-1]), "accuracy": _number(demo.get("token_accuracy")),
                   "steps_trained": _number(demo.get("steps_trained"))}
        weights = Path(demo["checkpoint"]) if isinstance(demo.get("checkpoint"), str) else latest
    else:
        record = _last_eval(run_dir / METRICS) if (run_dir / METRICS).is_file() else None
        if record is None:
            raise ReportError(f"{run_dir}: a run directory with no evaluation yet (no eval/exact_accuracy in its {METRICS})")
        count = _number(record.get("eval/count"))
        protocol["examples"] = int(count) if count is not None else None
        metrics = {k: _number(record.get(f"eval/{k}")) for k in ("exact_accuracy", "accuracy", "q_halt_accuracy")}
        metrics["steps_trained"] = _number(record.get("step"))
        weights = latest
    protocol["dataset_hash"] = dataset_hash
    metrics["parameters"] = parameter_count(weights) if weights is not None and weights.is_dir() else None
    seed = config.get("seed")
    return Entry(run_dir, _name(run_dir), seed if isinstance(seed, int) else None, config, protocol, metrics)


def read_eval(folder: Path) -> Entry:
    """An `hrm eval` output folder as an entry, with the config of the run its checkpoint came from."""
    results = _json(folder / RESULTS, "evaluation results")
    if not isinstance(results.get("protocol"), dict) or not isinstance(results.get("metrics"), dict):
        raise ReportError(f"{folder / RESULTS}: not `hrm eval` results (no protocol and metrics in it)")
    protocol = {"evaluated_by": "hrm eval", **results["protocol"]}
    protocol.setdefault("dataset_hash", results.get("dataset_hash"))
    named = results.get("checkpoint")
    checkpoint = Path(named) if isinstance(named, str) and named else None
    from hrm.models.checkpoint import find_all_config
    # The checkpoint as named when it was evaluated, else the run this folder sits in (RUN/eval/<name>/).
    found = find_all_config(checkpoint) if checkpoint is not None and checkpoint.exists() else None
    if found is None and (folder.parent.parent / ALL_CONFIG).is_file():
        found = folder.parent.parent / ALL_CONFIG
    config = _config(found) if found is not None else {}
    step = re.search(r"step_(\d+)", checkpoint.name) if checkpoint is not None else None
    metrics = {k: _number(results["metrics"].get(k)) for k in ("exact_accuracy", "accuracy", "q_halt_accuracy")}
    metrics["steps_trained"] = float(step.group(1)) if step else None
    metrics["parameters"] = parameter_count(checkpoint) if checkpoint is not None and checkpoint.is_dir() else None
    seed = config.get("seed")
    name = _name(found.parent) if found is not None else str(folder)
    return Entry(folder, name, seed if isinstance(seed, int) else None, config, protocol, metrics)


def _kind(path: Path) -> str | None:
    if (path / RESULTS).is_file():
        return "eval"
    if (path / ALL_CONFIG).is_file():
        return "run"
    return None


def find_entries(paths: list[Path]) -> list[Entry]:
    """Every entry the given paths name (see the module docstring); each path must yield one at least."""
    entries: list[Entry] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_file() and path.name == RESULTS:
            path = path.parent
        if not path.exists():
            raise ReportError(f"{path}: no such directory")
        if not path.is_dir():
            raise ReportError(f"{path}: not a directory (give run directories or `hrm eval` output folders)")
        found = [path] if _kind(path) else sorted(p for p in path.iterdir() if p.is_dir() and _kind(p))
        if not found:
            raise ReportError(f"{path}: no results in it (neither a run directory with {ALL_CONFIG}, nor an "
                              f"`hrm eval` folder with {RESULTS}, nor a folder of them)")
        for folder in found:
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                entries.append(read_eval(folder) if _kind(folder) == "eval" else read_run(folder))
    return entries


# ----------------------------------------------------------------------------------------------------
# Groups

@dataclass
class Group:
    name: str
    config: dict[str, Any]              # defining_config, shared by the entries
    protocol: dict[str, Any]            # the comparable protocol, shared by the entries
    entries: list[Entry] = field(default_factory=list)
    label: str = ""                     # the name, and what sets the group apart from the others

    def values(self, key: str) -> list[float]:
        return [e.metrics[key] for e in self.entries if e.metrics.get(key) is not None]

    def mean_std(self, key: str) -> tuple[float | None, float | None]:
        """The mean and the sample standard deviation (ddof=1; None for fewer than two values)."""
        values = self.values(key)
        if not values:
            return None, None
        return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)

    @property
    def seeds(self) -> list[int | None]:
        return [e.seed for e in self.entries]


def check_protocols(entries: list[Entry]) -> None:
    """One protocol for all entries, or a ReportError naming the keys that differ and two entries."""
    first = comparable(entries[0].protocol)
    for entry in entries[1:]:
        other = comparable(entry.protocol)
        differ = sorted(k for k in first.keys() | other.keys() if canonical(first.get(k)) != canonical(other.get(k))
                        or (k in first) != (k in other))
        if differ:
            value = lambda p, k: shown(p[k]) if k in p else "absent"        # noqa: E731
            listed = ", ".join(f"{k} ({value(first, k)} vs {value(other, k)})" for k in differ)
            raise ReportError(f"{entries[0].path} and {entry.path} were evaluated under different protocols: "
                              f"{listed}; pass mix_protocols=true to compare them anyway, in separate groups")


def group_entries(entries: list[Entry], mix_protocols: bool = False) -> list[Group]:
    """Entries that differ only by seed, as groups in the order first seen. An entry without a run config
    is a group of its own (nothing says which runs it repeats)."""
    if not entries:
        raise ReportError("no results to compare")
    if not mix_protocols:
        check_protocols(entries)
    groups: dict[str, Group] = {}
    for entry in entries:
        config, protocol = defining_config(entry.config), comparable(entry.protocol)
        key = canonical([config or str(entry.path), protocol])
        if key not in groups:
            groups[key] = Group(entry.name, config, protocol)
        groups[key].entries.append(entry)
    result = list(groups.values())
    _label(result)
    return result


def _differing(dicts: list[dict[str, Any]]) -> list[str]:
    keys = sorted(set().union(*dicts)) if dicts else []
    return [k for k in keys if len({canonical(d.get(k, "-")) for d in dicts}) > 1]


def _label(groups: list[Group]) -> None:
    """Each group's label: its name, plus the config keys (and protocol keys) whose values set it apart."""
    config_keys = _differing([g.config for g in groups if g.config])
    protocol_keys = _differing([g.protocol for g in groups])
    names = [g.name for g in groups]
    for group in groups:
        parts = [f"{k}={shown(group.config.get(k, '-'))}" for k in config_keys if group.config]
        parts += [f"{k}={shown(group.protocol.get(k, '-'))}" for k in protocol_keys]
        unique_name = names.count(group.name) == 1
        group.label = group.name + (f" ({', '.join(parts)})" if parts and (not unique_name or len(parts) <= 3) else "")


def default_out(paths: list[Path]) -> Path:
    """comparison.csv in the one folder given, else in the folder that holds all of them."""
    folders = [p.parent if p.is_file() else p for p in (Path(p).resolve() for p in paths)]
    return Path(os.path.commonpath(folders)) / "comparison.csv"


@dataclass
class Comparison:
    groups: list[Group]
    table: str                          # the Markdown
    csv: Path | None
    png: Path | None


def compare(paths: list[Path], out: Path | None = None, plot: bool = True, mix_protocols: bool = False) -> Comparison:
    """Read, group and write: the Markdown table (returned), the CSV at `out` (default: `default_out`) and,
    with `plot`, the PNG beside it (same name, .png). Raises ReportError."""
    groups = group_entries(find_entries(list(paths)), mix_protocols)
    csv_path = Path(out) if out is not None else default_out(list(paths))
    if csv_path.suffix.lower() != ".csv":
        raise ReportError(f"out={csv_path}: the table's file must end in .csv (the chart goes beside it, as .png)")
    written_csv = write_csv(groups, csv_path)
    written_png = write_png(groups, csv_path.with_suffix(".png")) if plot else None
    return Comparison(groups, markdown(groups), written_csv, written_png)


# ----------------------------------------------------------------------------------------------------
# The command

def spec() -> Command:
    return Command("hrm report", "Compare runs across seeds: group the runs that differ only by seed (the config "
                   "without seed, paths and logging) and print, per group, the number of runs and the mean ± sample "
                   "standard deviation (n − 1) of the held-out exact, token and Q-halt accuracy, the steps trained "
                   "and the parameters, as a Markdown table; also written as CSV, with a PNG bar chart beside it.\n"
                   "Each DIR is a run directory of `hrm train` or `hrm demo` (its last evaluation), an `hrm eval` "
                   "output folder (results.json), or a folder of these (as `hrm train seeds=0,1,2` leaves: "
                   "BASE/seed0, BASE/seed1, ...). Runs of one config launched separately (`hrm train seed=1 "
                   "checkpoint_path=BASE/seed1 ...`) are read the same way.\n"
                   "Results evaluated under different protocols (halting, depth, split, examples, dataset, "
                   "augmentations, ...: every key of results.json's protocol block but the seed and checkpoint) "
                   "are refused in one report, naming the keys that differ, unless mix_protocols=true.", [
                       Option("dirs", Path, positional=True, many=True, required=True, metavar="DIR...",
                              help="run directories, hrm eval output folders, or folders of them"),
                       Option("out", Path, short="-o", help="CSV path (default: comparison.csv in the one DIR given, "
                                                            "else in the folder that holds them all)"),
                       Option("plot", bool, True, help="also draw the PNG bar chart beside the CSV (same name, .png)"),
                       Option("mix_protocols", bool, False,
                              help="accept results evaluated under different protocols, in separate groups"),
                   ])


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)
    try:
        result = compare(args.dirs, args.out, args.plot, args.mix_protocols)
    except ReportError as e:
        print(f"hrm report: {e}", file=sys.stderr)
        return 2
    print(result.table)
    print("wrote " + ", ".join(str(p) for p in (result.csv, result.png) if p is not None))
    return 0
