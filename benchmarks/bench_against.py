"""Training speed of this tree against another commit, measured in one run, alternating: base, this, base, ...

    python benchmarks/bench_against.py BASE [--preset demo] [--rounds 3] [key=value ...]
    python benchmarks/bench_against.py 10d8026 --preset demo compile=true
    python benchmarks/bench_against.py 10d8026 --preset trm compile=true steps=30

BASE is any git revision of this repository: it is checked out into a temporary worktree (removed after)
and `hrm bench train` runs from there, then from this tree, each in its own process with the same
arguments (key=value pairs go to both, so both sides must know them). Alternating rounds spread a host's
slow minutes over both sides; the medians of the rounds' s/step and their ratio are printed, and with
--json written. A side whose bench fails stops the comparison with its output.
NOTE: run it alone (nothing else holding a core): a 2-thread torch job slows down up to 10x otherwise.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench(src: Path, preset: str, extra: list[str], out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, "-m", "hrm.cli", "bench", "train", f"preset={preset}", f"json={out}", *extra]
    done = subprocess.run(command, env=env, cwd=src.parent, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_against: {src.parent} failed (rc {done.returncode}):\n{done.stdout}{done.stderr}")
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the git revision to compare against")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the rounds and the ratio here")
    parser.add_argument("extra", nargs="*", help="key=value arguments for both benches")
    args = parser.parse_intermixed_args()

    with tempfile.TemporaryDirectory(prefix="hrm-bench-against-") as tmp:
        tree = Path(tmp) / "base"
        added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), args.base],
                               capture_output=True, text=True)
        if added.returncode != 0:
            last = (added.stderr.strip().splitlines() or [''])[-1]
            raise SystemExit(f"bench_against: cannot check out {args.base!r}: {last}")
        try:
            sides = {"base": tree / "src", "this": REPO / "src"}
            rounds: dict[str, list[dict]] = {name: [] for name in sides}
            for i in range(args.rounds):
                for name, src in sides.items():
                    result = bench(src, args.preset, args.extra, Path(tmp) / f"{name}{i}.json")
                    rounds[name].append(result)
                    print(f"round {i + 1}/{args.rounds} {name}: {result['seconds_per_step']:.4f} s/step", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)

    medians = {name: statistics.median(r["seconds_per_step"] for r in results) for name, results in rounds.items()}
    ratio = medians["base"] / medians["this"]
    print(f"{args.preset} {' '.join(args.extra)}: base {args.base} {medians['base']:.4f} s/step, this tree "
          f"{medians['this']:.4f} s/step: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"base": args.base, "preset": args.preset, "extra": args.extra,
                                         "median_seconds_per_step": medians, "ratio": ratio,
                                         "rounds": rounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
