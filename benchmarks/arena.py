"""The arena as a benchmark script: `python benchmarks/arena.py [key=value ...]` is `hrm arena [key=value ...]`.

    python benchmarks/arena.py                               # the full arena (2 tasks x 4 entrants x 3 seeds x 10 min)
    python benchmarks/arena.py tasks=sudoku6 seeds=0 minutes=2

Everything is in hrm.arena (its docstring describes the protocol); this wrapper only runs it.
"""
from __future__ import annotations

import sys

from hrm.arena.run import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
