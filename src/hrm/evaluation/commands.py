"""`hrm eval` and `hrm solve`.

    hrm eval checkpoint=runs/sudoku-demo data_path=data/sudoku-4x4 [halting=q] [tta=8] [save_steps=true]
    hrm eval runs/sudoku-demo steps=1,2,4,8,16 samples=1,4,16 noise=0.3    (a sweep: hrm.evaluation.sweep)
    hrm eval runs/sudoku-demo ...       (checkpoint= may be given bare)
    torchrun --nproc-per-node 2 -m hrm.cli eval checkpoint=... (each process evaluates its shard)
    hrm solve runs/sudoku-demo "1.3.....2..4.1.." [json=true] [steps=true]
"""
from __future__ import annotations

import dataclasses
import sys
import typing

from hrm.cli_args import Command, CommandLineExit, Option

EVAL_HELP = """Evaluate a checkpoint on a dataset split with the original's protocol: a fresh carry per batch, every
puzzle runs halt_max_steps ACT steps, the last step's answer counts. Reports exact accuracy (the
headline: every cell right), token accuracy, Q-halt accuracy and mean steps, and writes
predictions.safetensors (or .npz) and results.json; for ARC datasets also submission.json (ARC Prize
Kaggle format) and arc_tasks.json. Under torchrun every process evaluates its shard.

checkpoint is a run directory (its latest checkpoint), a checkpoints/step_<N> folder, a folder or
.safetensors file in hrm's weights format, or an original checkpoint file (step_<N>, with its
all_config.yaml beside it).

Checkpoints made by the original code (e.g. the released sapientinc/HRM-checkpoint-* files):
  hrm eval checkpoint=HRM-checkpoint-sudoku-extreme/checkpoint data_path=data/sudoku-extreme-full
The architecture comes from all_config.yaml beside the file, the sizes from the weights, seq_len from
the dataset. The dataset may be built by the original code (no manifest.json needed) or by `hrm data`.
Its vocab_size, seq_len and num_puzzle_identifiers must match the checkpoint (else a clear error). For
Sudoku and mazes every puzzle identifier is 0 and the test split is the unaugmented test CSV, so a
rebuilt dataset fits. For ARC the puzzle embeddings are indexed by the identifiers of the dataset the
checkpoint was trained on: only that dataset (its identifiers.json) gives meaningful scores; a rebuilt
one numbers the puzzles differently and scores near zero. `hrm convert ORIGINAL OUT_DIR` writes
hrm's safetensors format, if you prefer to keep that.
"""


EVAL_NOTES = {
    "checkpoint": "the checkpoint (required)",
    "data_path": "dataset folder (default: the one the run was trained on)",
    "split": "split to evaluate",
    "batch_size": "global batch (default: the run's, at most the split's size; off CUDA also capped by memory)",
    "max_examples": "evaluate only the first N examples of the split",
    "device": "auto | cpu | cuda | cuda:1 | mps",
    "dtype": "auto | float32 | bfloat16 | float16",
    "halting": "fixed (original: every puzzle runs halt_max_steps) | q (stop at the Q head; reports both)",
    "save_steps": "true: also save every step's predictions and Q logits",
    "format": "safetensors | npz (never pickle)",
    "out": "output folder (default RUN_DIR/eval/<step>-<dataset>-<split>[-halting_q][-tta<K>][-<backend>])",
    "tta": "Sudoku/maze: solve each puzzle in K versions (original + K-1 random symmetries), each `samples` "
           "trajectories, answers mapped back, one picked by select=",
    "seed": "seed of the test-time augmentation draws, of the noise and of init=random",
    "arc_k": "ARC pass@k values, e.g. 1,2,10",
    "force": "true: evaluate on a dataset other than the training one",
    "verify": "dataset manifest check: auto | quick | full | none",
    "progress": "false: no progress bar",
    "backend": "torch, or another backend of hrm export (numpy, onnx, iree, mlx, ...; see hrm verify)",
    "compile": "true | false: torch.compile the model (default: on CUDA only; on a CPU ~1.5x after ~20 s)",
    "steps": "depth: ACT steps per puzzle, also beyond the halt_max_steps the model was trained with "
             "(backend=torch); the report gives the exact accuracy after each step. A list (1,2,4,8) sweeps: "
             "every depth scored from one run of the deepest, a table, sweep.json and PNG curves",
    "samples": "breadth: trajectories per puzzle, run as one batch (backend=torch); one answer is selected "
               "without labels (select=), and the oracle pass@N is reported beside it. A list (1,4,16) sweeps, "
               "with every selector",
    "noise": "std of the Gaussian noise on each trajectory's initial latent state (the diversity of samples=N)",
    "noise_every_step": "true: also noise on the carry before every step",
    "init": "learned | random: each trajectory starts from the model's H_init/L_init, or from initial states "
            "drawn (truncated normal, std 1, seeded by seed=) for every trajectory (backend=torch)",
    "select": "vote | vote+residual | q | residual: majority answer (ties by Q, or by the smaller residual), "
              "highest q_halt, or smallest last change of the answer latent",
    "rows_per_forward": "breadth runs a batch's puzzles x trajectories in chunks of at most N rows, the same "
                        "trajectories (default: 64 on the CPU, where bigger forwards cost more per row; the whole "
                        "batch elsewhere)",
    "subset": "evaluate N examples of the split chosen by a permutation seeded subset_seed (the same rows "
              "everywhere; the protocol records a hash of them); max_examples is the prefix instead",
    "subset_seed": "seed of the subset=N permutation",
    "weights": "saved | live: a run that averaged its weights (ema=true) saves the averages, which it reports; "
               "live evaluates the parameters training went on from",
}


def eval_spec() -> Command:
    """EvalConfig's fields as options. Their values are handed on as key=value to runner.parse_config, which
    types them (the booleans are read here, so that `--save-steps` alone means true)."""
    from hrm.evaluation.runner import EvalConfig

    hints = typing.get_type_hints(EvalConfig)
    options = []
    for f in dataclasses.fields(EvalConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        is_bool = inner == [bool]
        # A list, or one value or a list (steps=, samples=: a sweep).
        shown = ("INT,..." if any(typing.get_origin(a) is list for a in [hint, *inner]) else
                 {int: "INT", str: "TEXT", float: "NUMBER"}.get(inner[0], "TEXT"))
        options.append(Option(f.name, bool if is_bool else str, default if is_bool or not isinstance(default, list)
                              else ",".join(map(str, default)), help=EVAL_NOTES.get(f.name, ""),
                              positional=f.name == "checkpoint",
                              metavar=None if is_bool else shown))
    return Command("hrm eval", EVAL_HELP, options)


def eval_main(argv: list[str]) -> int:
    from hrm.evaluation.runner import EvalError, parse_config, run_eval

    spec = eval_spec()
    if not argv or argv == ["help"]:
        print(spec.help())
        return 0 if argv else 2
    try:
        args = spec.parse(argv)
    except CommandLineExit as e:
        print(e.message, file=sys.stdout if e.code == 0 else sys.stderr)
        return e.code
    values = args.values()
    pairs = [f"{name}={str(values[name]).lower() if isinstance(values[name], bool) else values[name]}"
             for name in values if name in args.given]
    try:
        config = parse_config(pairs)
        run_eval(config)
    except EvalError as e:
        print(f"hrm eval: {e}", file=sys.stderr)
        return 2
    return 0


def solve_spec() -> Command:
    return Command("hrm solve", "Solve one puzzle with a checkpoint: print the answer as a grid, the prediction at "
                   "every ACT step, and where the model halts.", [
                       Option("checkpoint", positional=True, required=True,
                              help="run directory, checkpoints/step_<N>, hrm weights, or an original step_<N>"),
                       Option("puzzle", positional=True, required=True,
                              help="a Sudoku string (e.g. '53..7....6..195...'), a maze text file, or an ARC task JSON"),
                       Option("json", bool, False, help="print machine-readable JSON instead of text"),
                       Option("steps", bool, False, help="draw the full grid at every step (mazes, ARC)"),
                       Option("halting", default="fixed", choices=("fixed", "q"),
                              help="fixed: answer after halt_max_steps steps (the original); q: stop where the Q head says halt"),
                       Option("tta", int, 1, help="Sudoku/maze: also solve K-1 symmetric versions and vote"),
                       Option("seed", int, 0, help="seed of the tta versions"),
                       Option("data_path", help="the checkpoint's dataset (default: the one its run recorded)"),
                       Option("seq_len", int, help="for original checkpoints whose dataset is not at hand"),
                       Option("device", default="auto", help="auto | cpu | cuda | cuda:1 | mps"),
                       Option("dtype", default="auto", help="auto | float32 | bfloat16 | float16"),
                   ])


def solve_main(argv: list[str]) -> int:
    import json

    from hrm.evaluation.solve import solve
    from hrm.evaluation.sources import EvalError
    from hrm.puzzles import PuzzleError

    args = solve_spec().parse_or_exit(argv)
    try:
        result = solve(args.checkpoint, args.puzzle, halting=args.halting, tta=args.tta, seed=args.seed,
                       device=args.device, dtype=args.dtype, data_path=args.data_path, seq_len=args.seq_len)
    except (PuzzleError, EvalError, ValueError) as e:
        print(f"hrm solve: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.render(show_steps=args.steps))
    return 0
