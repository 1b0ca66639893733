"""Inference time per puzzle for every backend on this CPU (the eval protocol: halt_max_steps steps).

    python benchmarks/bench_backends.py                      # released 27M architecture, Sudoku shapes
    python benchmarks/bench_backends.py --quick              # the small fixture-sized model, for a smoke test
    python benchmarks/bench_backends.py --checkpoint RUN/checkpoints/step_N --json out.json

Each backend is built once (exports and IREE compilation are not timed), warmed up with one batch, then
timed over `--repeats` runs of `--puzzles` random puzzles in batches of `--batch-size`; the median run
is reported as milliseconds per puzzle. All backends run float32 with the same thread count.
Run it alone on the machine: other work on the CPU makes the numbers meaningless.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="an hrm or original checkpoint "
                        "(default: a randomly initialised model of the chosen size)")
    parser.add_argument("--quick", action="store_true", help="small model (hidden 64, 2+2 layers, 4 steps)")
    parser.add_argument("--backends", default="torch,numpy,onnx,onnx-whole,iree,mlx")
    parser.add_argument("--puzzles", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    import torch

    from hrm.export.backends import build, unavailable
    from hrm.models import HRMConfig, build_model
    from hrm.models.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    if args.checkpoint:
        head, config, _ = load_checkpoint(args.checkpoint, dtype=torch.float32)
        what = str(args.checkpoint)
    else:
        torch.manual_seed(0)
        size = (dict(hidden_size=64, num_heads=4, H_layers=2, L_layers=2, halt_max_steps=4, seq_len=16,
                     vocab_size=12, puzzle_emb_ndim=64) if args.quick else dict(seq_len=81, vocab_size=11))
        config = HRMConfig(**size, num_puzzle_identifiers=1, forward_dtype="float32")
        head = build_model(config, torch.float32)
        what = "random init, " + ("small model" if args.quick else "released architecture (27M, Sudoku shapes)")
    head.eval()
    n_params = sum(p.numel() for p in head.parameters())
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, config.vocab_size, size=(args.puzzles, config.seq_len), dtype=np.int32)
    ids = np.zeros(args.puzzles, dtype=np.int32)

    print(f"{what}: {n_params:,} parameters, seq_len {config.seq_len}, {config.halt_max_steps} ACT steps; "
          f"{args.puzzles} puzzles in batches of {args.batch_size}, {args.threads} threads, float32")
    results = []
    with tempfile.TemporaryDirectory(prefix="hrm-bench-") as workdir:
        for name in args.backends.split(","):
            reason = unavailable(name)
            if reason:
                results.append({"backend": name, "status": f"skipped: {reason}"})
                print(f"{name:<11} skipped: {reason}", flush=True)
                continue
            t = time.perf_counter()
            backend = build(name, head, config, Path(workdir) / name, threads=args.threads)
            build_s = time.perf_counter() - t
            backend.run(inputs[:args.batch_size], ids[:args.batch_size], False)          # warm-up
            runs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                for start in range(0, args.puzzles, args.batch_size):
                    backend.run(inputs[start:start + args.batch_size], ids[start:start + args.batch_size], False)
                runs.append(time.perf_counter() - t)
            ms = 1000 * statistics.median(runs) / args.puzzles
            results.append({"backend": name, "status": "ok", "ms_per_puzzle": ms, "build_seconds": build_s,
                            "detail": backend.detail})
            print(f"{name:<11} {ms:9.2f} ms/puzzle   (build {build_s:6.1f} s; {backend.detail})", flush=True)

    print()
    print("| backend | ms / puzzle | notes |")
    print("| --- | ---: | --- |")
    for r in results:
        if r["status"] == "ok":
            print(f"| {r['backend']} | {r['ms_per_puzzle']:.2f} | {r['detail']} |")
        else:
            print(f"| {r['backend']} | – | {r['status']} |")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "backends", "model": what, "parameters": n_params, "seq_len": config.seq_len,
            "halt_max_steps": config.halt_max_steps, "puzzles": args.puzzles, "batch_size": args.batch_size,
            "threads": args.threads, "cpu": platform.processor() or platform.machine(),
            "python": sys.version.split()[0], "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
