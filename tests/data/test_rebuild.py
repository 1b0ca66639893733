"""Builds are byte-identical across processes and PYTHONHASHSEED values (set/dict order never leaks
into the output): each build runs twice, in fresh interpreters with different hash seeds."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hrm.data import maze, sudoku
from hrm.data.sudoku_solver import Box

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _write_sources(folder: Path) -> None:
    """CSV sources in the original format, from the project's own generators (valid by construction)."""
    rng = np.random.default_rng(7)
    puzzles, solutions, _ = sudoku.generate_puzzles(10, Box.parse("2x2"), rng)
    rows = [f"s{i},{sudoku.board_to_string(p)},{sudoku.board_to_string(s)},{i}" for i, (p, s) in enumerate(zip(puzzles, solutions))]
    (folder / "s.csv").write_text("source,question,answer,rating\n" + "\n".join(rows) + "\n")
    inputs, labels = maze.generate_mazes(6, 6, rng)
    rows = [f"m{i},{maze.tokens_to_text(a)},{maze.tokens_to_text(b)},0" for i, (a, b) in enumerate(zip(inputs, labels))]
    (folder / "m.csv").write_text("source,question,answer,rating\n" + "\n".join(rows) + "\n")


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args", [
    ["sudoku", "--generate", "12", "--box", "2x2", "--test-size", "3", "--num-aug", "4", "--seed", "5"],
    ["sudoku", "--input", "{dir}/s.csv", "--test-size", "2", "--num-aug", "3", "--box", "2x2"],
    ["maze", "--generate", "8", "--size", "7", "--test-size", "2", "--aug", "--seed", "2"],
    ["maze", "--input", "{dir}/m.csv", "--test-size", "1"],
], ids=["sudoku-generated", "sudoku-csv", "maze-generated", "maze-csv"])
def test_builds_are_byte_identical_across_hash_seeds(tmp_path, args):
    _write_sources(tmp_path)
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    digests = []
    for hash_seed in ("0", "4242"):
        out = tmp_path / f"out{hash_seed}"
        env = dict(os.environ, PYTHONPATH=SRC, PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-m", "hrm.cli", "data", *args, "--output-dir", str(out)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        digests.append(_digests(out))
    assert "manifest.json" in digests[0] and digests[0] == digests[1]
