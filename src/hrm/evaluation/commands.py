"""`hrm eval` and `hrm solve`.

    hrm eval checkpoint=runs/sudoku-demo data_path=data/sudoku-4x4 [halting=q] [tta=8] [save_steps=true]
    torchrun --nproc-per-node 2 -m hrm.cli eval checkpoint=... (each process evaluates its shard)
    hrm solve runs/sudoku-demo "1.3.....2..4.1.." [--json] [--steps]
"""
from __future__ import annotations

import dataclasses
import sys

EVAL_HELP = """usage: hrm eval checkpoint=PATH [data_path=DATASET] [key=value ...]

Evaluate a checkpoint on a dataset split with the original's protocol: a fresh carry per batch, every
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

options (key=value):
"""


def _options_help() -> str:
    from hrm.evaluation.runner import EvalConfig

    notes = {
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
        "tta": "Sudoku/maze: solve each puzzle in K versions (original + K-1 random symmetries) and vote",
        "seed": "seed of the test-time augmentation draws",
        "arc_k": "ARC pass@k values, e.g. 1,2,10",
        "force": "true: evaluate on a dataset other than the training one",
        "verify": "dataset manifest check: auto | quick | full | none",
        "progress": "false: no progress bar",
        "backend": "torch, or another backend of hrm export (numpy, onnx, iree, mlx, ...; see hrm verify)",
        "compile": "true | false: torch.compile the model (default: on CUDA only; on a CPU ~1.5x after ~20 s)",
    }
    lines = []
    for f in dataclasses.fields(EvalConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        lines.append(f"  {f.name:<13} {notes.get(f.name, '')}" + (f" [{default}]" if default not in ("", None) else ""))
    return "\n".join(lines)


def eval_main(argv: list[str]) -> int:
    from hrm.evaluation.runner import EvalError, parse_config, run_eval

    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(EVAL_HELP + _options_help())
        return 0 if argv else 2
    try:
        config = parse_config(argv)
        run_eval(config)
    except EvalError as e:
        print(f"hrm eval: {e}", file=sys.stderr)
        return 2
    return 0


def solve_main(argv: list[str]) -> int:
    from hrm.evaluation.solve import main

    return main(argv)
