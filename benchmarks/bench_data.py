"""Data pipeline benchmarks: Sudoku solver and generator throughput, the full ARC build, the loader.

    python benchmarks/bench_data.py                 # the full figures (run alone on the machine)
    python benchmarks/bench_data.py --quick         # a smoke test on small sizes
    python benchmarks/bench_data.py --json out.json

Each row gives the figure, its target where the issue sets one, and the command that measures it alone.
The solver and generator run on one core (numba, one thread); the ARC build uses --workers processes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HRM_SHARED", REPO.parent / "shared"))
HARDEST = SHARED / "data/sudoku/tdoku-forum-hardest-1905-11plus/puzzles.csv"
ARC_DIRS = [SHARED / "data/arc-agi-1", SHARED / "data/conceptarc"]
THIS = "python benchmarks/bench_data.py"


def bench_solver(limit: int | None) -> dict:
    from hrm.data import sudoku
    from hrm.data.sudoku_solver import solve_many

    records = sudoku.read_sudoku_file(HARDEST)[:limit]
    puzzles = np.stack([r.puzzle for r in records])
    solve_many(puzzles[:10])                                   # compile (or load the numba cache) first
    start, cpu = time.perf_counter(), time.process_time()
    counts, solutions, branches = solve_many(puzzles, limit=2)  # limit 2: every uniqueness check included
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert (counts == 1).all()
    assert all(np.array_equal(s, r.solution) for s, r in zip(solutions, records))
    return {"name": "sudoku solver, forum-hardest (uniqueness checked)", "value": len(puzzles) / seconds,
            "unit": "puzzles/s", "target": ">= 1000 on one core",
            "detail": f"{len(puzzles)} puzzles in {seconds:.2f} s ({len(puzzles) / cpu:.0f}/s of CPU time), "
                      f"mean {branches.mean():.0f} branch points",
            "command": f"{THIS} --only solver" + (f" --solver-limit {limit}" if limit else "")}


def bench_generator(count: int, difficulty: str) -> dict:
    from hrm.data import sudoku
    from hrm.data.sudoku_solver import Box

    rng = np.random.default_rng(0)
    sudoku.generate_puzzles(1, Box(), rng)                     # compile first
    start, cpu = time.perf_counter(), time.process_time()
    _, _, branches = sudoku.generate_puzzles(count, Box(), rng, difficulty=sudoku.parse_difficulty(difficulty))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"name": f"sudoku generator 9x9, difficulty {difficulty} (unique, needs search)", "value": count / seconds,
            "unit": "puzzles/s", "target": None,
            "detail": f"{count} puzzles in {seconds:.2f} s ({count / cpu:.1f}/s of CPU time), "
                      f"branch points {branches.min()}..{branches.max()}",
            "command": f"{THIS} --only generator --generate {count} --difficulty {difficulty}"}


def bench_arc(num_aug: int, workers: int, keep: Path | None) -> tuple[dict, Path]:
    out = (keep or Path(tempfile.mkdtemp(prefix="hrm-bench-arc-"))) / f"arc-aug-{num_aug}"
    command = [sys.executable, "-m", "hrm.cli", "data", "arc", "--output-dir", str(out), "--num-aug", str(num_aug),
               "--workers", str(workers), "--dataset-dirs", *map(str, ARC_DIRS)]
    # Peak memory: the largest single process (RUSAGE_CHILDREN covers the workers, which the build joins)
    # and the peak of the whole process tree's summed RSS, sampled every 0.2 s from /proc.
    start = time.perf_counter()
    process = subprocess.Popen(command, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL)
    tree_peak = 0
    while process.poll() is None:
        tree_peak = max(tree_peak, _tree_rss(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"the ARC build failed: {' '.join(command)}")
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return ({"name": f"ARC-AGI-1 + ConceptARC build, {num_aug} augmentations, {workers} workers",
             "value": seconds / 60, "unit": "minutes", "target": "<= 10 min on 2 cores, peak memory <= 4 GB",
             "detail": f"peak RSS: all processes together {tree_peak / 2**30:.2f} GiB, largest process "
                       f"{largest / 2**30:.2f} GiB; dataset {size / 2**30:.2f} GiB on disk",
             "command": f"{THIS} --only arc --arc-num-aug {num_aug} --workers {workers}"}, out)


def _tree_rss(root: int) -> int:
    """Summed resident memory (bytes) of a process and its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            continue
    return total


def bench_loader(data_path: Path, batch_size: int, batches: int) -> dict:
    import torch

    from hrm.data import PuzzleDataset
    torch.set_num_threads(1)
    ds = PuzzleDataset(data_path, "train", global_batch_size=batch_size, epochs_per_iter=1000, verify="none")
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    n = 0
    for n, _ in zip(range(batches), it):
        pass
    seconds = time.perf_counter() - start
    return {"name": f"loader, ARC train batches of {batch_size} (memory-mapped)", "value": (n + 1) / seconds,
            "unit": "batches/s", "target": "faster than a training step", "detail": f"{n + 1} batches in {seconds:.2f} s",
            "command": f"{THIS} --only arc,loader"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", default="solver,generator,arc,loader", help="comma-separated subset")
    parser.add_argument("--solver-limit", type=int, default=None, help="solve only the first N puzzles")
    parser.add_argument("--generate", type=int, default=200, help="puzzles to generate")
    parser.add_argument("--difficulty", default="1", help="generated difficulty (branch points MIN[:MAX] or a level)")
    parser.add_argument("--arc-num-aug", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="build the ARC dataset under this folder and keep it")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    if args.quick:
        args.solver_limit = args.solver_limit or 500
        args.generate = min(args.generate, 10)
        args.arc_num_aug = min(args.arc_num_aug, 3)
    only = set(args.only.split(","))
    rows, arc_dir = [], None
    try:
        if "solver" in only:
            rows.append(bench_solver(args.solver_limit))
        if "generator" in only:
            rows.append(bench_generator(args.generate, args.difficulty))
        if "arc" in only:
            row, arc_dir = bench_arc(args.arc_num_aug, args.workers, args.keep)
            rows.append(row)
        if "loader" in only and arc_dir is not None:
            rows.append(bench_loader(arc_dir, 768, 20 if args.quick else 200))
    finally:
        if arc_dir is not None and args.keep is None:
            shutil.rmtree(arc_dir.parent, ignore_errors=True)
    print(f"{'benchmark':<72} {'figure':>14}  target")
    for row in rows:
        print(f"{row['name']:<72} {row['value']:>9.2f} {row['unit']:<10} {row['target'] or ''}")
        print(f"    {row['detail']}\n    $ {row['command']}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "data", "quick": args.quick, "rows": rows,
                                         "self_max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
