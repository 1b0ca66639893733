"""Evaluation throughput on the CPU: puzzles per second through `hrm eval`'s path.

    python benchmarks/bench_eval.py                  # the figures (run alone on the machine)
    python benchmarks/bench_eval.py --quick          # a smoke test on tiny sizes (not figures)
    python benchmarks/bench_eval.py --only demo --threads 2 --json out.json

Rows:
  * the released 27M architecture (hidden 512, 4+4 layers, 8 heads, H/L cycles 2/2, 16 ACT steps, a
    512-wide puzzle embedding) on 9x9 Sudoku (81 tokens) and on 900-token puzzles (30x30 mazes, ARC);
  * the demo configuration (`hrm demo`: 6x6 Sudoku, hidden 64, 2+2 layers, 8 ACT steps).
Each row evaluates a synthetic test split with hrm.evaluation.loop.evaluate (the loader, the eval-mode ACT
loop of halt_max_steps segments per puzzle, the per-row outputs), after one warm-up batch. Weights are
untrained: the cost does not depend on them. The figure is puzzles per second of wall time, with the
model FLOP rate from hrm.flops. --quick shrinks every row (2 puzzles, 1 ACT step for the 27M rows) to
check that the script runs; its numbers are not figures.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

THIS = "python benchmarks/bench_eval.py"


@dataclass
class Row:
    key: str
    name: str
    seq_len: int
    vocab_size: int
    puzzles: int
    batch: int
    arch: dict = field(default_factory=dict)     # HRMConfig overrides


def released() -> dict:
    from hrm.models import HRMConfig
    base = HRMConfig()          # the defaults are the released architecture (semantics §2.1)
    return dict(hidden_size=base.hidden_size, num_heads=base.num_heads, H_layers=base.H_layers, L_layers=base.L_layers,
                H_cycles=base.H_cycles, L_cycles=base.L_cycles, halt_max_steps=base.halt_max_steps,
                puzzle_emb_ndim=base.puzzle_emb_ndim, expansion=base.expansion, pos_encodings=base.pos_encodings)


def demo_arch() -> dict:
    """The architecture `hrm demo` trains, read from its own overrides."""
    from hrm.training.config import load_config, preset_path

    arch = load_config(preset_path("demo")).arch
    return {k: getattr(arch, k) for k in ("hidden_size", "num_heads", "H_layers", "L_layers", "H_cycles", "L_cycles",
                                          "halt_max_steps", "puzzle_emb_ndim", "expansion", "pos_encodings")}


def rows(quick: bool) -> list[Row]:
    out = [Row("27m-sudoku", "released 27M arch, 9x9 Sudoku (81 tokens)", 81, 11, 64, 32, released()),
           Row("27m-900", "released 27M arch, 900 tokens (maze 30x30 / ARC)", 900, 12, 8, 4, released()),
           Row("demo", "demo config (hrm demo), 6x6 Sudoku (36 tokens)", 36, 8, 1024, 256, demo_arch())]
    if quick:
        for row in out:
            row.puzzles, row.batch = 2, 2
            if row.key.startswith("27m"):
                row.arch = dict(row.arch, halt_max_steps=1)
    return out


def synthetic_split(root: Path, row: Row) -> Path:
    """A test split of random puzzles (one identifier besides the blank), in the dataset format."""
    from hrm.data.format import DatasetWriter

    rng = np.random.default_rng(0)
    with DatasetWriter(root / row.key, builder="bench", arguments={}, seed=0) as writer:
        for split in ("train", "test"):
            out = writer.split(split, seq_len=row.seq_len)
            tokens = rng.integers(1, row.vocab_size, size=(row.puzzles, row.seq_len), dtype=np.uint8)
            out.add_group(tokens, tokens, np.ones(row.puzzles, int), np.ones(row.puzzles, int))
        return writer.commit(["<blank>", "p"], pad_id=0, ignore_label_id=None, blank_identifier_id=0,
                             vocab_size=row.vocab_size)


def bench(row: Row, root: Path, dtype: str, compile_: bool) -> dict:
    from hrm.data import PuzzleDataset
    from hrm.device import choose
    from hrm.evaluation.loop import evaluate
    from hrm.flops import eval_puzzle_flops
    from hrm.models import HRMConfig, build_model

    choice = choose("cpu", dtype)
    config = HRMConfig(seq_len=row.seq_len, vocab_size=row.vocab_size, num_puzzle_identifiers=2, batch_size=row.batch,
                       **row.arch)
    torch.manual_seed(0)
    head = build_model(config, forward_dtype=choice.dtype).eval()
    params = sum(p.numel() for p in head.parameters())
    data = synthetic_split(root, row)
    dataset = PuzzleDataset(data, "test", global_batch_size=row.batch, test_set_mode=True, verify="none")
    module = torch.compile(head, dynamic=False) if compile_ else head     # as `hrm eval compile=true`
    evaluate(module, dataset, max_examples=row.batch)                     # warm-up (and compilation): one batch
    start = time.perf_counter()
    outputs = evaluate(module, dataset)
    seconds = time.perf_counter() - start
    assert outputs.num_examples == row.puzzles
    per_second = row.puzzles / seconds
    gflops = eval_puzzle_flops(config) * per_second / 1e9
    return {"key": row.key, "name": row.name, "value": per_second, "unit": "puzzles/s",
            "gflop_per_s": gflops, "parameters": params,
            "detail": f"{row.puzzles} puzzles in {seconds:.2f} s, batch {row.batch}, {config.halt_max_steps} ACT steps, "
                      f"{params / 1e6:.2f}M parameters, {str(choice.dtype).removeprefix('torch.')}"
                      f"{', compiled' if compile_ else ''}, "
                      f"{torch.get_num_threads()} threads, {gflops:.1f} GFLOP/s of model matmuls",
            "command": f"{THIS} --only {row.key}" + (f" --dtype {dtype}" if dtype != "auto" else "")
                       + (" --compile" if compile_ else "")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    parser.add_argument("--only", default="27m-sudoku,27m-900,demo", help="comma-separated subset of rows")
    parser.add_argument("--dtype", default="auto", help="auto (the device policy) | float32 | bfloat16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (compilation not timed)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--puzzles", type=int, default=None, help="puzzles per row (overrides the row's default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    selected = [r for r in rows(args.quick) if r.key in only]
    if not selected:
        parser.error(f"--only matches no row; rows: {', '.join(r.key for r in rows(False))}")
    results = []
    with tempfile.TemporaryDirectory(prefix="hrm-bench-eval-") as tmp:
        for row in selected:
            if args.puzzles:
                row.puzzles = args.puzzles
                row.batch = min(row.batch, args.puzzles)
            results.append(bench(row, Path(tmp), args.dtype, args.compile))
    title = "benchmark (CPU, eval-mode ACT loop)" + (" --quick: NOT figures" if args.quick else "")
    print(f"{title:<58} {'figure':>16}")
    for r in results:
        print(f"{r['name']:<58} {r['value']:>9.2f} {r['unit']}")
        print(f"    {r['detail']}\n    $ {r['command']}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "eval", "quick": args.quick, "rows": results,
                                         "self_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
