"""`hrm train`, `hrm plot` and `hrm doctor`.

    hrm train [config=NAME|PATH] [key=value ...]          a new run
    hrm train resume=RUN_DIR [key=value ...]              continue a run exactly where its checkpoint is
    hrm train seeds=0,1,2 checkpoint_path=BASE [...]      one run per seed, in BASE/seed<N> (hrm.training.seeds)
    hrm plot RUN_DIR [output=curves.png]
    hrm doctor [json=true]

`config=` (or `--config`, `-c`) takes a preset of configs/ (e.g. sudoku_extreme_1k) or a YAML file; the
overrides use the original's key names, so its command lines work after `hrm train`. Under torchrun:
    torchrun --nproc-per-node 8 -m hrm.cli train config=sudoku_extreme_1k data_path=...
"""
from __future__ import annotations

import errno
import json
import os
import sys
import textwrap
from pathlib import Path

from hrm.cli_args import Command, Option
from hrm.training.config import ConfigError, all_keys

# Keys a resumed run may not change: they define the model, the data order or the batches.
FIXED_ON_RESUME = ("arch.", "global_batch_size", "seed", "eval_interval")

TRAIN_EPILOG = """examples:
  hrm train --config sudoku_extreme_1k_single_gpu data_path=data/sudoku-extreme-1k-aug-1000
  hrm train data_path=data/sudoku-extreme-1k-aug-1000 epochs=20000 eval_interval=2000 \\
      global_batch_size=384 lr=7e-5 puzzle_emb_lr=7e-5 weight_decay=1.0 puzzle_emb_weight_decay=1.0
  hrm train resume=checkpoints/Sudoku-extreme-1k-aug-1000\\ ACT-torch/hrm_act_v1-20250101-120000
  hrm train --config cpu_tiny data_path=... logger=tensorboard compile=false checkpoint_interval=500

`hrm train --keys` lists every key. Presets live in configs/.

seeds=0,1,2 trains the same config once per seed, one after another in this process, each into its
own run directory BASE/seed<N>. BASE is checkpoint_path= (default checkpoints/<project>/<run_name>,
run_name defaulting to <arch>-seeds: no timestamp, so that the same command finds the same folders).
It prints a line per seed, then the comparison of `hrm report BASE` (also BASE/comparison.csv, png).
Run the same command again after an interruption: a seed whose run finished is skipped, an
unfinished one resumes from its latest checkpoint (as resume=BASE/seed<N> does), one killed before
its first checkpoint starts again from scratch; a seed folder holding a run of another config is
refused, naming the key. The same runs as separate processes (on several machines, or under
torchrun, where seeds= is refused):
  hrm train seed=1 checkpoint_path=runs/sudoku-seeds/seed1 data_path=...
`hrm report runs/sudoku-seeds` reads either kind alike.
"""


def _split_resume(overrides: list[str]) -> tuple[str | None, list[str]]:
    resume = [o for o in overrides if o.lstrip("+").startswith("resume=")]
    rest = [o for o in overrides if o not in resume]
    if len(resume) > 1:
        raise ConfigError("command line: resume= is given more than once")
    return (resume[0].split("=", 1)[1] if resume else None), rest


def build_config(config_arg: str | None, overrides: list[str]):
    """The run's TrainConfig from the command line (a new run, or resume=RUN_DIR plus overrides)."""
    from hrm.training.checkpointing import find_checkpoint
    from hrm.training.config import load_config, parse_overrides, preset_path

    resume, overrides = _split_resume(overrides)
    if resume is None:
        return load_config(preset_path(config_arg) if config_arg else None, overrides)
    if config_arg:
        raise ConfigError("command line: --config and resume= do not go together: a resumed run uses the "
                          "all_config.yaml saved in its directory")
    run_dir = find_checkpoint(resume).parent.parent
    saved = run_dir / "all_config.yaml"
    if not saved.is_file():
        raise ConfigError(f"{saved}: missing; it holds the run's config")
    for key, _ in parse_overrides(overrides):
        if key.startswith(FIXED_ON_RESUME) or key in ("checkpoint_path", "run_name", "project_name"):
            raise ConfigError(f"command line '{key}=...': cannot change {key} when resuming (it fixes the model, "
                              "the batches or the run directory); start a new run instead")
    config = load_config(saved, overrides)
    config.resume = str(resume)
    return config


def train_spec() -> Command:
    keys = all_keys() + [k for k in ("logger", "resume") if k not in all_keys()]
    listed = textwrap.fill(", ".join(keys), 100, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)
    return Command("hrm train", "Train an HRM (the original's loop) on CPU, CUDA or MPS; one process, or many under "
                   "torchrun. Every config key is given as key=value (the original's names).", [
                       Option("config", short="-c", metavar="NAME|PATH", help="a preset in configs/ or a YAML file"),
                       Option("print_config", bool, False, help="print the resolved config and exit"),
                       Option("keys", bool, False, help="list every config key and exit"),
                       Option("seeds", int, many=True, metavar="N,N,...",
                              help="train once per seed, into BASE/seed<N> (see below); run again to continue"),
                   ], passthrough="overrides", epilog=TRAIN_EPILOG,
                   passthrough_help="config keys (key=value, e.g. lr=7e-5 arch.L_cycles=8 resume=RUN_DIR; logger is\n"
                                    "logging.logger; `hrm train --keys` lists them one a line):\n" + listed)


def train_main(argv: list[str]) -> int:
    args = train_spec().parse_or_exit(argv)
    if args.keys:
        print("\n".join(all_keys() + ["logger (= logging.logger)", "resume (= a run directory)"]))
        return 0
    if args.seeds:
        from hrm.training.seeds import train_seeds
        return train_seeds(args.config, args.overrides, args.seeds, args.print_config)

    from hrm.models.checkpoint import CheckpointError

    try:
        config = build_config(args.config, args.overrides)
    except (ConfigError, CheckpointError) as e:
        print(f"hrm train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print_config(config)
        return 0
    code, result = run_training(config)
    if result is not None and os.environ.get("RANK", "0") == "0":          # one line, from rank 0 under torchrun
        print(summary_line(result))
    return code


def print_config(config) -> None:
    import dataclasses

    import yaml
    print(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False), end="")


def run_training(config):
    """train(config) -> (exit code, TrainResult or None). Bad input (the config, the data, a damaged run, a
    device this machine lacks, a run another process writes) exits 2; a run that fails on the way (a full
    disk) exits 1. Both print one line, no traceback."""
    from hrm.data import DatasetFormatError
    from hrm.device import DeviceError
    from hrm.files import describe_os_error
    from hrm.models.checkpoint import CheckpointError
    from hrm.training.run_lock import RunLockedError
    from hrm.training.trainer import train

    try:
        return 0, train(config)
    except (ConfigError, CheckpointError, DatasetFormatError, DeviceError, RunLockedError, FileExistsError) as e:
        print(f"hrm train: {e}", file=sys.stderr)
        return 2, None
    except OSError as e:
        print(f"hrm train: {describe_os_error(e)}", file=sys.stderr)
        return (2 if e.errno in (errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EROFS) else 1), None


def summary_line(result) -> str:
    """`done at step 64/64: eval exact_accuracy 0.1234, run dir ..., last checkpoint step_64`."""
    headline = result.eval_metrics.get("eval/exact_accuracy")
    summary = f"eval exact_accuracy {headline:.4f}, " if headline is not None else ""
    return (f"done at step {result.step}/{result.total_steps}: {summary}run dir {result.run_dir}"
            + (f", last checkpoint {result.checkpoint.name}" if result.checkpoint else ""))


def plot_spec() -> Command:
    return Command("hrm plot", "Draw a run's training and evaluation curves to PNG.", [
        Option("run_dir", Path, positional=True, required=True, help="a run directory of `hrm train` (it holds metrics.jsonl)"),
        Option("output", Path, short="-o", help="PNG path (default RUN_DIR/curves.png)"),
        Option("linear", bool, False, help="linear loss axis (default: logarithmic)"),
    ])


def plot_main(argv: list[str]) -> int:
    args = plot_spec().parse_or_exit(argv)
    from hrm.training.plot import plot_run

    try:
        path = plot_run(args.run_dir, args.output, log_loss=not args.linear)
    except (FileNotFoundError, ValueError) as e:
        print(f"hrm plot: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def doctor_spec() -> Command:
    return Command("hrm doctor", "Report the device, dtype, torch and optional packages, what each enables, and "
                   "what to install for what is missing.", [
                       Option("json", bool, False, help="print the report as JSON"),
                   ])


def doctor_main(argv: list[str]) -> int:
    args = doctor_spec().parse_or_exit(argv)
    from hrm.training.doctor import format_report, report

    r = report()
    print(json.dumps(r, indent=2) if args.json else format_report(r))
    return 0
