"""`hrm demo`: train a small HRM on this machine for about ten minutes and show that it reasons.

The task is 6×6 Sudoku (boxes of 2×3, 14–24 blanks, unique solutions) generated here, nothing
downloaded. The held-out puzzles are not equivalent to any training puzzle under the augmentation
symmetries, so the model cannot have memorised them. After training it prints:

  * the held-out exact accuracy after each ACT step, next to the trivial baselines (copying the input
    scores 0%; a single ACT step of the trained model is the "no thinking" baseline);
  * one solved held-out puzzle, with the model's prediction at each ACT step.

NOTE: why this task: the paper's tasks (9×9 Sudoku-Extreme, 30×30 mazes, ARC) take GPU-hours. 6×6
Sudoku with up to 24 blanks still needs reasoning that one forward pass does not do (a single ACT step
scores near 0%), yet a 2+2-layer HRM learns it on two CPU cores in minutes. Everything else is the
paper's recipe: HRM ACT v1, stablemax loss, AdamATan2, Q-learning halting with exploration.

    hrm demo                       # ~10 minutes of training, then the results
    hrm demo minutes=2             # a quicker look (--minutes 2 works too)
    hrm demo lr=1e-3 arch.L_cycles=3 output=runs/my-demo
    hrm demo arch=trm              # TRM instead (its CPU-sized block configs/arch/trm_demo.yaml); also
                                   # arch=transformer, the baseline
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hrm.cli_args import Command, Option

# The demo's data; its training config is the preset configs/demo.yaml (with its arch block configs/arch/).
DEMO_DATA = dict(box="2x3", n_train=50000, n_test=1000, min_blanks=14, max_blanks=24, num_aug=15, seed=0)
DEMO_PRESET = "demo"


def build_data(data_path: Path, log=print) -> Path:
    """Generate the demo's dataset once; a later demo reuses it when its generator arguments match."""
    from hrm.data import read_manifest
    from hrm.data.sudoku import build_generated_dataset

    manifest = read_manifest(data_path) if data_path.exists() else None
    if manifest is not None and manifest.get("arguments", {}).get("demo") == DEMO_DATA:
        log(f"data: reusing {data_path}")
        return data_path
    if data_path.exists():
        raise FileExistsError(f"{data_path} exists but was not made by this demo's generator; remove it or pass --output")
    start = time.perf_counter()
    build_generated_dataset(data_path, DEMO_DATA["n_train"], DEMO_DATA["n_test"], box=DEMO_DATA["box"],
                            min_blanks=DEMO_DATA["min_blanks"], max_blanks=DEMO_DATA["max_blanks"],
                            num_aug=DEMO_DATA["num_aug"], seed=DEMO_DATA["seed"],
                            builder_args={"demo": DEMO_DATA}, log=lambda m: log(f"data: {m}"))
    log(f"data: written to {data_path} in {time.perf_counter() - start:.1f} s")
    return data_path


def train_for(config, minutes: float, log=print, at_log=None):
    """Train until the time budget is spent (checked at every log event), then checkpoint.

    NOTE: the cosine LR schedule is fitted to the time budget. The trainer's schedule counts steps, and
    how many steps ten minutes hold depends on the machine; so at every log after the warm-up, the horizon
    (lr_schedule_steps) is set to the step the run will reach at the deadline, at the speed measured since
    the warm-up. The final value is what all_config.yaml records.

    `at_log(event, trainer, seconds)`, when given, runs at every log event with the seconds of budget spent
    so far. The time it takes is left out of the budget, the speed fit and the steps/s (`hrm arena`
    evaluates the held-out puzzles there); without it the demo reads the clock exactly as before.
    """
    from hrm.training.config import save_config
    from hrm.training.trainer import Trainer

    paused = 0.0                                        # seconds spent in at_log, not counted

    def clock():
        return time.perf_counter() - paused

    deadline = clock() + minutes * 60
    since_warmup: list[tuple[float, int]] = []          # (time, step) of the first log after the warm-up

    def callback(event):
        nonlocal paused
        if event.kind != "log":
            return None
        now = clock()
        if at_log is not None:
            at_log(event, trainer, now - (deadline - minutes * 60))
            paused += clock() - now
        if now >= deadline:
            return False
        if event.step >= config.lr_warmup_steps:      # compilation and warm-up are behind us
            if not since_warmup:
                since_warmup.append((now, event.step))
            t0, step0 = since_warmup[0]
            if event.step > step0:
                rate = (event.step - step0) / (now - t0)
                horizon = event.step + max(1, round(rate * (deadline - now)))
                trainer.state.lr_horizon = trainer.config.lr_schedule_steps = horizon
        return None

    start = clock()
    trainer = Trainer(config, callback)
    try:
        result = trainer.run()
        save_config(dataclasses.replace(trainer.config, resume=None), result.run_dir / "all_config.yaml")
    finally:
        trainer.close()
    log(f"trained {result.step} steps in {(clock() - start) / 60:.1f} min "
        f"({result.step / max(clock() - start, 1e-9):.1f} steps/s)")
    return result


def per_step_exact_accuracy(step_predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K,) exact accuracy after each ACT step: every labelled cell right."""
    mask = labels != -100
    right = (step_predictions == labels[:, None, :]) | ~mask[:, None, :]
    return right.all(-1).mean(0)


def evaluate_demo(checkpoint: Path, data_path: Path, device) -> dict:
    from hrm.data import PuzzleDataset
    from hrm.evaluation.loop import evaluate
    from hrm.evaluation.metrics import exact
    from hrm.runs import open_run

    run = open_run(checkpoint, device=device.device, dtype=device.dtype, data_path=data_path)
    head, config = run.head, run.arch
    test = PuzzleDataset(data_path, "test", global_batch_size=256, test_set_mode=True)
    out = evaluate(head.eval(), test, device.device, save_steps=True)
    rows = out.rows
    labels = rows["labels"].astype(np.int64)
    inputs = rows["inputs"].astype(np.int64)
    steps = rows["step_predictions"].astype(np.int64)
    return {
        "config": config, "rows": rows, "num_test": len(labels),
        "per_step": per_step_exact_accuracy(steps, labels),
        "copy_input": float(((inputs == labels) | (labels == -100)).all(-1).mean()),
        "token_accuracy": float(((steps[:, -1] == labels) | (labels == -100)).mean()),
        # The model's own answer: at the first step its Q head says halt (the last step if it never does).
        "q_halt_accuracy": float(exact(rows["q_halt_predictions"], rows["labels"]).mean()),
        "q_halt_mean_steps": float(rows["q_halt_step"].mean()),
    }


def show_trajectory(result: dict, box_text: str) -> str:
    """One held-out puzzle the model solves, preferably one it needed several steps for."""
    from hrm.data.draw import draw_sudoku, side_by_side
    from hrm.halting import says_halt
    from hrm.data.sudoku import decode_tokens
    from hrm.data.sudoku_solver import Box

    box = Box.parse(box_text)
    rows, halt_rule = result["rows"], result["config"].halting_policy.rule
    labels, steps = rows["labels"].astype(np.int64), rows["step_predictions"].astype(np.int64)
    solved = (steps == labels[:, None, :]).all(-1)                      # (N, K)
    final = solved[:, -1]
    if not final.any():
        return "(no held-out puzzle was solved, so there is no trajectory to show)"
    first_solved = np.where(solved.any(-1), solved.argmax(-1), steps.shape[1])
    candidates = np.where(final)[0]
    index = int(candidates[np.argmax(first_solved[candidates])])       # the one that took the most steps
    puzzle = decode_tokens(rows["inputs"][index].astype(np.int64))
    blocks, titles = [draw_sudoku(puzzle, box)], ["puzzle"]
    previous = None
    for k in range(steps.shape[1]):
        pred = steps[index, k]
        wrong = int((pred != labels[index]).sum())
        changed = "" if previous is None else f", {int((pred != previous).sum())} changed"
        blocks.append(draw_sudoku(decode_tokens(pred), box))
        titles.append(f"step {k + 1}: {wrong} wrong{changed}")
        previous = pred
    says = says_halt(halt_rule, rows["step_q_halt_logits"][index], rows["step_q_continue_logits"][index])
    halt = [k + 1 for k in range(len(says)) if says[k]]
    lines = [f"held-out puzzle #{index} ({int((puzzle == 0).sum())} blanks), the model's answer at each ACT step:"]
    per_row = 5
    for start in range(0, len(blocks), per_row):
        lines.append(side_by_side(blocks[start:start + per_row], titles[start:start + per_row]))
        lines.append("")
    lines.append("solution matches the final step: " + ("yes" if (steps[index, -1] == labels[index]).all() else "no"))
    lines.append(f"Q head says halt ({halt_rule}) from step " + (str(halt[0]) if halt else "- (never)") +
                 f"; the original eval protocol runs all {len(says)} steps")
    return "\n".join(lines)


def decode_board(tokens: np.ndarray) -> np.ndarray:
    from hrm.data.sudoku import decode_tokens
    return decode_tokens(tokens.astype(np.int64))


def demo_sized(override: str) -> str:
    """`arch=trm` -> `arch=trm_demo`: an architecture named by its family gets its CPU-sized block (configs/arch/
    NAME_demo.yaml), the one planned for the demo's budget; an exact block name or a YAML path is kept."""
    from hrm.training.config import PRESETS

    key, sep, value = override.partition("=")
    if sep and key.strip().lstrip("+") == "arch" and not value.endswith((".yaml", ".yml")) \
            and not (PRESETS / "arch" / f"{value}.yaml").is_file() and (PRESETS / "arch" / f"{value}_demo.yaml").is_file():
        return f"arch={value}_demo"
    return override


def spec() -> Command:
    return Command("hrm demo", __doc__.split("\n\n")[0], [
        Option("minutes", float, 10.0, help="training time budget"),
        Option("output", Path, Path("runs/demo"), help="where data and the run go"),
        Option("threads", int, help="torch threads (default: all cores)"),
    ], passthrough="overrides", passthrough_help="Any other key=value is a training override, as for `hrm train` "
                                                 "(`hrm train --keys` lists them), e.g. lr=1e-3 arch.L_cycles=3.")


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)

    from hrm.device import choose
    from hrm.training.config import ConfigError, load_config, preset_path

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    data_path = args.output / "data"
    run_dir = args.output / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        config = load_config(preset_path(DEMO_PRESET), [f"data_path={data_path}", f"checkpoint_path={run_dir}"]
                             + [demo_sized(o) for o in args.overrides])
    except ConfigError as e:
        print(f"hrm demo: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    device = choose(config.device, config.dtype)      # evaluation computes as training did
    print(f"hrm demo: {device.describe()}, {torch.get_num_threads()} threads")
    args.output.mkdir(parents=True, exist_ok=True)
    build_data(data_path)

    print(f"training for {args.minutes:g} minutes: the demo stops at this budget, long before the end of the "
          f"schedule the progress bar counts (Ctrl-C stops early and still evaluates) ...")
    result = train_for(config, args.minutes)
    if result.checkpoint is None:
        print("hrm demo: training stopped before the first checkpoint", file=sys.stderr)
        raise SystemExit(1)

    print(f"evaluating {result.checkpoint} on the held-out puzzles ...")
    evaluation = evaluate_demo(result.checkpoint, data_path, device)
    per_step = evaluation["per_step"]
    n = evaluation["num_test"]
    print(f"\nheld-out exact accuracy ({n} 6x6 puzzles no training puzzle is equivalent to):")
    print(f"  {'copy the input (trivial baseline)':<40} {100 * evaluation['copy_input']:6.1f}%")
    for k, acc in enumerate(per_step, start=1):
        label = "1 ACT step (no thinking)" if k == 1 else f"{k} ACT steps"
        print(f"  {'model, ' + label:<40} {100 * acc:6.1f}%  {'#' * int(round(50 * acc))}")
    print(f"  (cell accuracy after {len(per_step)} steps: {100 * evaluation['token_accuracy']:.1f}%)")
    print(f"  {'model, halting where its Q head says':<40} {100 * evaluation['q_halt_accuracy']:6.1f}%  "
          f"(after {evaluation['q_halt_mean_steps']:.1f} steps on average; the original protocol runs all "
          f"{len(per_step)})\n")
    print(show_trajectory(evaluation, DEMO_DATA["box"]))

    summary = {"steps_trained": result.step, "minutes": args.minutes, "num_test": n,
               "exact_accuracy_per_step": [float(a) for a in per_step], "copy_input": evaluation["copy_input"],
               "token_accuracy": evaluation["token_accuracy"],
               "q_halt_exact_accuracy": evaluation["q_halt_accuracy"], "q_halt_mean_steps": evaluation["q_halt_mean_steps"],
               "checkpoint": str(result.checkpoint), "device": device.describe()}
    (result.run_dir / "demo_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    example = "".join(str(v) if v else "." for v in decode_board(evaluation["rows"]["inputs"][0]))
    print(f"\nresults in {result.run_dir / 'demo_results.json'}. Next:")
    print(f"  hrm solve {result.run_dir} '{example}'      # one puzzle, step by step")
    print(f"  hrm eval checkpoint={result.run_dir} save_steps=true        # the whole test split")
    print(f"  hrm viz --model {result.run_dir}                           # watch it think in the browser")
    return 0
