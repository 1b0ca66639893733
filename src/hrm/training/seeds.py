"""`hrm train seeds=0,1,2 ...`: one config under several seeds, one after another, each run in BASE/seed<N>.

    hrm train seeds=0,1,2 config=cpu_tiny data_path=data/sudoku-4x4 checkpoint_path=runs/sudoku-seeds
        -> runs/sudoku-seeds/seed0, seed1, seed2 (each an ordinary run directory), then `hrm report runs/sudoku-seeds`

BASE is checkpoint_path=, else checkpoints/<project>/<run_name> with run_name defaulting to "<arch>-seeds"
(NOTE: no timestamp, unlike a single run's default, so that the same command finds the same folders again).
Each seed's run is named <run_name or BASE's name>-seed<N>. Run the same command again and each seed folder is
read first (`plan`):
    no run in it                                   a new run
    its latest checkpoint ends the schedule        done: skipped, its result read back
    a checkpoint short of the end                  resumed from it (resume=BASE/seed<N>: hrm.training.state)
    all_config.yaml but no complete checkpoint     killed before its first: removed, then started again
    a run of another config (or another seed)      refused, naming the key that differs
The same runs may be launched as separate processes (`hrm train seed=1 checkpoint_path=BASE/seed1 ...`);
`hrm report BASE` reads either kind alike (hrm.evaluation.compare).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from hrm.evaluation.compare import ReportError, compare, defining_config, flatten, read_run
from hrm.files import discard_dir
from hrm.models.checkpoint import CheckpointError, read_json
from hrm.training import checkpointing as ckpt
from hrm.training.commands import build_config, print_config, run_training, summary_line
from hrm.training.config import ConfigError, TrainConfig, config_to_dict, load_config
from hrm.training.run_lock import RunLock, RunLockedError


def seed_dir(base: Path, seed: int) -> Path:
    """The run directory of one seed: BASE/seed<N> (`hrm report` strips the seed<N> part to name the group)."""
    return base / f"seed{seed}"


def seed_configs(config_arg: str | None, overrides: list[str], seeds: list[int]) -> tuple[Path, list[TrainConfig]]:
    """BASE and one config per seed, each validated, before anything trains."""
    from hrm.training.trainer import default_run_dir

    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"command line: seeds={','.join(map(str, seeds))} names a seed more than once")
    keys = [o.lstrip("+").partition("=")[0] for o in overrides]
    if "seed" in keys:
        raise ConfigError("command line: seed= and seeds= do not go together; give seeds=N,... (or seed=N alone)")
    if "resume" in keys:
        raise ConfigError("command line: seeds= and resume= do not go together: to continue a seeds run, run the "
                          "same seeds= command again (it resumes the unfinished seed)")
    base_config = build_config(config_arg, overrides)
    arch = base_config.arch.name.split("@")[0].split(".")[-1]
    run_name = base_config.run_name or f"{arch}-seeds"
    base = Path(default_run_dir(dataclasses.replace(base_config, run_name=run_name))[2])
    if (base / "all_config.yaml").is_file():
        raise ConfigError(f"{base}: is a run directory; seeds= puts its runs in BASE/seed<N>: give another "
                          "checkpoint_path")
    configs = [build_config(config_arg, overrides + [f"seed={seed}", f"checkpoint_path={seed_dir(base, seed)}",
                                                     f"run_name={run_name}-seed{seed}"]) for seed in seeds]
    return base, configs


def plan(config: TrainConfig, run_dir: Path) -> str:
    """What this seed's folder asks for: "new", "done", "resume" or "restart" (the module docstring). A
    folder holding a run of another config is a ConfigError naming the first key that differs."""
    saved = run_dir / "all_config.yaml"
    if not saved.is_file():
        return "new"
    theirs = flatten(config_to_dict(load_config(saved)))
    ours = flatten(config_to_dict(config))
    # The keys that decide what a run computes (as hrm report groups runs), and here the seed as well.
    mine, other = defining_config(ours) | {"seed": ours["seed"]}, defining_config(theirs) | {"seed": theirs.get("seed")}
    differ = [k for k in sorted(mine.keys() | other.keys()) if mine.get(k) != other.get(k)]
    if differ:
        key = differ[0]
        raise ConfigError(f"{run_dir}: holds a run with {key}={other.get(key)!r}, this command asks for "
                          f"{key}={mine.get(key)!r}; give another checkpoint_path (or remove that folder)")
    found = ckpt.list_checkpoints(run_dir / "checkpoints")
    if not found:
        return "restart"
    latest = found[-1][1] / ckpt.STATE_JSON
    progress = ckpt.parse_progress(read_json(latest, "training state"), str(latest))
    last_iteration = config.epochs // config.eval_interval - 1
    return "done" if progress.iteration_finished and progress.iteration >= last_iteration else "resume"


def train_seeds(config_arg: str | None, overrides: list[str], seeds: list[int], show_config: bool = False) -> int:
    """`hrm train seeds=...`: each seed in turn, a line for each, then the comparison. Returns the exit code."""
    from hrm.processes import launched_by_torchrun

    if launched_by_torchrun():
        print("hrm train: seeds= runs its seeds one after another in one process; under torchrun launch one "
              "command per seed (seed=N checkpoint_path=BASE/seed<N>) and compare them with hrm report BASE",
              file=sys.stderr)
        return 2
    try:
        base, configs = seed_configs(config_arg, overrides, seeds)
        if show_config:
            for config in configs:
                print("---")
                print_config(config)
            return 0
        plans = [plan(config, Path(config.checkpoint_path)) for config in configs]
    except (ConfigError, CheckpointError) as e:
        print(f"hrm train: {e}", file=sys.stderr)
        return 2
    print(f"hrm train: {len(seeds)} seeds ({', '.join(map(str, seeds))}) into {base}/seed<N>")
    lines = []
    for seed, config, action in zip(seeds, configs, plans):
        run_dir = Path(config.checkpoint_path)
        if action == "done":
            lines.append(f"seed {seed}: finished earlier: {_result(run_dir)}")
            print(lines[-1], flush=True)
            continue
        if action == "restart":      # killed before its first checkpoint: nothing to resume, start clean
            print(f"seed {seed}: {run_dir} holds no checkpoint yet; starting it again", flush=True)
            try:
                with RunLock(run_dir):
                    discard_dir(run_dir)
            except RunLockedError as e:
                print(f"hrm train: {e}", file=sys.stderr)
                return 2
        if action == "resume":
            config = dataclasses.replace(config, resume=str(run_dir))
        print(f"seed {seed}: {'resuming' if action == 'resume' else 'training'} {run_dir}", flush=True)
        code, result = run_training(config)
        if result is None:
            return code
        lines.append(f"seed {seed}: {summary_line(result)}")
        print(lines[-1], flush=True)
        if result.stopped_early:
            print(f"hrm train: stopped at seed {seed}; run the same command again to continue", file=sys.stderr)
            return 1
    print("\n" + "\n".join(lines))
    try:
        comparison = compare([seed_dir(base, s) for s in seeds], out=base / "comparison.csv")
    except ReportError as e:                # e.g. data.eval_max_examples=0: no evaluation to compare
        print(f"no comparison: {e}")
        return 0
    print("\n" + comparison.table)
    print(f"wrote {comparison.csv}, {comparison.png}  (hrm report {base} prints this again)")
    return 0


def _result(run_dir: Path) -> str:
    try:
        entry = read_run(run_dir)
    except ReportError as e:
        return str(e)
    exact, steps = entry.metrics.get("exact_accuracy"), entry.metrics.get("steps_trained")
    return (f"step {steps:.0f}: " if steps is not None else "") + (
        f"eval exact_accuracy {exact:.4f}, " if exact is not None else "") + f"run dir {run_dir}"

