"""The cost of test-time scaling on the CPU: seconds per puzzle for depth D (ACT steps) and breadth B
(trajectories per puzzle), as `hrm eval steps=D samples=B` runs them.

    python benchmarks/bench_scaling.py                 # the figures (run alone on the machine)
    python benchmarks/bench_scaling.py --quick         # a smoke test on tiny sizes (not figures)
    python benchmarks/bench_scaling.py --threads 1 --json out.json

A small randomly initialised HRM (the demo architecture of `hrm demo`: hidden 64, 2+2 layers) on a
synthetic test split of 6x6-Sudoku-shaped puzzles (36 tokens), made on the fly. Every cell (D, B) is its own
evaluation through hrm.evaluation.loop.evaluate with the breadth runner (hrm.evaluation.breadth: the
puzzles' B trajectories as one batch, in chunks of at most --rows-per-forward rows, noise 0.1 on the
initial state), after one warm-up batch per breadth; `--batch 1` gives the cost one puzzle at a time. The
figure is the wall time of the evaluation over the puzzles. Weights are untrained: the cost does not
depend on them. The last line times the sweep (`hrm eval steps=... samples=...`, hrm.evaluation.sweep:
one run per breadth to the deepest depth, every depth scored from it) against the sum of the cells.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

THIS = "python benchmarks/bench_scaling.py"
SEQ_LEN, VOCAB = 36, 8                  # 6x6 Sudoku: padding, blank and six digits


def demo_arch() -> dict:
    """The architecture `hrm demo` trains, read from its own overrides."""
    from hrm.training.config import load_config, preset_path

    arch = load_config(preset_path("demo")).arch
    return {k: getattr(arch, k) for k in ("hidden_size", "num_heads", "H_layers", "L_layers", "H_cycles", "L_cycles",
                                          "halt_max_steps", "puzzle_emb_ndim", "expansion", "pos_encodings")}


def synthetic_split(root: Path, puzzles: int) -> Path:
    """A test split of random puzzles (one identifier besides the blank), in the dataset format."""
    from hrm.data.format import DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(root / "scaling", builder="bench", arguments={}, seed=0) as writer:
        for split in ("train", "test"):
            out = writer.split(split, seq_len=SEQ_LEN)
            tokens = rng.integers(1, VOCAB, size=(puzzles, SEQ_LEN), dtype=np.uint8)
            out.add_group(tokens, tokens, np.ones(puzzles, int), np.ones(puzzles, int))
        return writer.commit(["<blank>", "p"], pad_id=0, ignore_label_id=None, blank_identifier_id=0,
                             vocab_size=VOCAB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    parser.add_argument("--depths", default="1,2,4,8,16", help="comma-separated depths D")
    parser.add_argument("--breadths", default="1,4,16", help="comma-separated breadths B")
    parser.add_argument("--puzzles", type=int, default=64, help="puzzles in the split")
    parser.add_argument("--batch", type=int, default=None, help="puzzles per batch (default: all, one batch)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--rows-per-forward", type=int, default=None,
                        help="breadth's chunk size (default: hrm eval's on the CPU, breadth.CPU_ROWS_PER_FORWARD)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    depths = [int(d) for d in args.depths.split(",")]
    breadths = [int(b) for b in args.breadths.split(",")]
    if args.quick:
        depths, breadths, args.puzzles = [1, 2], [1, 2], 4
    batch = min(args.batch or args.puzzles, args.puzzles)

    from hrm.data import PuzzleDataset
    from hrm.evaluation.breadth import breadth_runner, default_rows_per_forward
    from hrm.evaluation.loop import evaluate
    from hrm.evaluation.runner import EvalConfig
    from hrm.evaluation.sweep import run_sweep
    from hrm.models import HRMConfig, build_model

    config = HRMConfig(seq_len=SEQ_LEN, vocab_size=VOCAB, num_puzzle_identifiers=2, batch_size=batch,
                       **demo_arch())
    torch.manual_seed(0)
    head = build_model(config, forward_dtype=torch.float32).eval()
    noise = 0.1
    chunk = default_rows_per_forward("cpu", args.rows_per_forward)
    with tempfile.TemporaryDirectory(prefix="hrm-bench-scaling-") as tmp:
        data = synthetic_split(Path(tmp), args.puzzles)
        dataset = PuzzleDataset(data, "test", global_batch_size=batch, test_set_mode=True, verify="none")
        seconds: dict[tuple[int, int], float] = {}
        for B in breadths:
            evaluate(head, dataset, runner=breadth_runner(head, B, noise, steps=1, rows_per_forward=chunk),
                     keep_rows=False)                                                       # warm-up
            for D in depths:
                runner = breadth_runner(head, B, noise, steps=D, rows_per_forward=chunk)
                start = time.perf_counter()
                evaluate(head, dataset, runner=runner, keep_rows=False)
                seconds[D, B] = time.perf_counter() - start
        sweep_config = EvalConfig(checkpoint="(random)", steps=depths, samples=breadths, noise=noise,
                                  rows_per_forward=chunk).validate()
        start = time.perf_counter()
        run_sweep(head, dataset, sweep_config, depths)
        sweep_seconds = time.perf_counter() - start

    per_puzzle = {k: v / args.puzzles for k, v in seconds.items()}
    title = "test-time scaling (CPU, seconds per puzzle)" + (" --quick: NOT figures" if args.quick else "")
    print(f"{title}: demo arch (hidden {config.hidden_size}, {config.H_layers}+{config.L_layers} layers, "
          f"H/L cycles {config.H_cycles}/{config.L_cycles}), {SEQ_LEN} tokens, {args.puzzles} puzzles in batches of "
          f"{batch}, "
          f"float32, {torch.get_num_threads()} threads, at most {chunk} rows per forward")
    print(f"{'D':>4} " + " ".join(f"{'B=' + str(b):>10}" for b in breadths)
          + (f" {'B=' + str(max(breadths)) + '/B=' + str(min(breadths)):>10}" if len(breadths) > 1 else ""))
    for D in depths:
        row = " ".join(f"{per_puzzle[D, b]:10.5f}" for b in breadths)
        ratio = per_puzzle[D, max(breadths)] / per_puzzle[D, min(breadths)]
        print(f"{D:>4} {row}" + (f" {ratio:10.2f}" if len(breadths) > 1 else ""))
    separate = sum(seconds.values())
    print(f"the sweep of this grid: {sweep_seconds:.2f} s (one run per breadth to D={max(depths)}), "
          f"the cells one by one: {separate:.2f} s ({separate / sweep_seconds:.1f}x)")
    print(f"    $ {THIS}" + (f" --threads {args.threads}" if args.threads else ""))
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "scaling", "quick": args.quick, "puzzles": args.puzzles, "batch": batch,
            "threads": torch.get_num_threads(),
            "rows_per_forward": chunk,
            "cells": [{"depth": D, "samples": B, "seconds_per_puzzle": per_puzzle[D, B]} for (D, B) in per_puzzle],
            "sweep_seconds": sweep_seconds, "cells_seconds": separate}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
