"""An exact Sudoku solver and generator for N x N boards with r x c boxes (N = r * c <= 9).

The search is a depth-first search over candidate bitmasks (bit d-1 set = digit d still possible) with
constraint propagation after every assignment, naked singles (a cell with one candidate left) and hidden
singles (a digit with one place left in a row, column or box), and branching on the cell with the fewest
candidates (MRV). It counts solutions up to a limit: limit 2 tells unique from several. Its effort, the
number of branch points, rates a puzzle's difficulty: 0 means propagation alone solves it.

The kernels compile with numba when it is installed (hrm.data._jit); boards are flat arrays of values,
0 for a blank, row-major.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hrm.data._jit import njit


@dataclass(frozen=True)
class Box:
    """Board geometry: boxes of `rows` x `cols` cells on an N x N board, N = rows * cols."""
    rows: int = 3
    cols: int = 3

    def __post_init__(self):
        if self.rows < 1 or self.cols < 1 or not 2 <= self.size <= 9:
            raise ValueError(f"box {self.rows}x{self.cols} gives a {self.size}x{self.size} board; sizes 2..9 are supported")

    @property
    def size(self) -> int:
        return self.rows * self.cols

    @property
    def cells(self) -> int:
        return self.size * self.size

    def __str__(self) -> str:
        return f"{self.rows}x{self.cols}"

    @classmethod
    def parse(cls, text: str | tuple[int, int] | "Box") -> "Box":
        if isinstance(text, Box):
            return text
        if isinstance(text, tuple):
            return cls(*text)
        try:
            rows, cols = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"box must look like RxC, e.g. 3x3 or 2x3; got {text!r}") from None
        return cls(rows, cols)


@lru_cache(maxsize=None)
def geometry(box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(peers (cells, P), units (3N, N), popcount table) of a board shape."""
    n = box.size
    units = []
    units += [[r * n + c for c in range(n)] for r in range(n)]
    units += [[r * n + c for r in range(n)] for c in range(n)]
    for band in range(n // box.rows):
        for stack in range(n // box.cols):
            units.append([(band * box.rows + i) * n + stack * box.cols + j
                          for i in range(box.rows) for j in range(box.cols)])
    peers = []
    for cell in range(n * n):
        cell_peers = sorted({other for unit in units if cell in unit for other in unit} - {cell})
        peers.append(cell_peers)
    popcount = np.array([bin(m).count("1") for m in range(1 << n)], dtype=np.int32)
    return np.array(peers, dtype=np.int32), np.array(units, dtype=np.int32), popcount


# ---------------------------------------------------------------------------------------------------
# Kernels (numba-compiled when available)

@njit
def _eliminate(cand, peers, queue, qlen):
    """Remove each queued cell's single digit from its peers; queue cells that become single. -1 = dead end."""
    qi = 0
    while qi < qlen:
        cell = queue[qi]
        qi += 1
        bit = cand[cell]
        for k in range(peers.shape[1]):
            p = peers[cell, k]
            m = cand[p]
            if m & bit:
                m &= ~bit
                if m == 0:
                    return -1
                cand[p] = m
                if m & (m - 1) == 0:
                    queue[qlen] = p
                    qlen += 1
    return 0


@njit
def _hidden_singles(cand, units, queue, full):
    """Fix every digit that has one place left in some unit; return how many cells were queued, -1 = dead end."""
    qlen = 0
    n = units.shape[1]
    for u in range(units.shape[0]):
        once = 0
        twice = 0
        for k in range(n):
            m = cand[units[u, k]]
            twice |= once & m
            once |= m
        if once != full:
            return -1                       # some digit has no place left in this unit
        exactly = once & ~twice
        if exactly:
            for k in range(n):
                cell = units[u, k]
                m = cand[cell]
                hit = m & exactly
                if hit and (m & (m - 1)) != 0:
                    if hit & (hit - 1):
                        return -1           # one cell would need two digits
                    cand[cell] = hit
                    queue[qlen] = cell
                    qlen += 1
    return qlen


@njit
def _propagate(cand, peers, units, queue, qlen, full):
    while True:
        if _eliminate(cand, peers, queue, qlen) < 0:
            return False
        qlen = _hidden_singles(cand, units, queue, full)
        if qlen < 0:
            return False
        if qlen == 0:
            return True


@njit
def _search(givens, peers, units, popcount, n, limit, digit_order, solution):
    """Count solutions of `givens` up to `limit`; write the first into `solution`. Returns (count, branch points).

    digit_order[cell] lists the digits (0-based) in the order to try them when branching on that cell.
    """
    cells = givens.shape[0]
    full = (1 << n) - 1
    stack = np.empty((cells + 1, cells), dtype=np.int32)
    branch_cell = np.empty(cells + 1, dtype=np.int32)
    branch_rest = np.empty(cells + 1, dtype=np.int32)
    queue = np.empty(2 * cells, dtype=np.int32)
    qlen = 0
    for c in range(cells):
        v = int(givens[c])          # int: without numba, int8 arithmetic would overflow in 1 << (v - 1)
        if v == 0:
            stack[0, c] = full
        else:
            stack[0, c] = 1 << (v - 1)
            queue[qlen] = c
            qlen += 1
    if not _propagate(stack[0], peers, units, queue, qlen, full):
        return 0, 0
    solutions = 0
    branches = 0
    depth = 0
    expand = True
    while True:
        if expand:
            state = stack[depth]
            best = -1
            best_count = n + 1
            for c in range(cells):
                pc = popcount[state[c]]
                if 1 < pc < best_count:
                    best = c
                    best_count = pc
                    if pc == 2:
                        break
            if best < 0:                                        # every cell fixed: a solution
                if solutions == 0:
                    for c in range(cells):
                        m = state[c]
                        d = 0
                        while m > 1:
                            m >>= 1
                            d += 1
                        solution[c] = d + 1
                solutions += 1
                if solutions >= limit:
                    return solutions, branches
            else:
                branches += 1
                branch_cell[depth] = best
                branch_rest[depth] = state[best]
                depth += 1
        expand = False
        while depth > 0:                                        # next untried alternative, deepest first
            parent = depth - 1
            rest = branch_rest[parent]
            if rest == 0:
                depth -= 1
                continue
            cell = branch_cell[parent]
            bit = 0
            for k in range(n):
                candidate = 1 << digit_order[cell, k]
                if rest & candidate:
                    bit = candidate
                    break
            branch_rest[parent] = rest & ~bit
            stack[depth, :] = stack[parent, :]
            stack[depth, cell] = bit
            queue[0] = cell
            if _propagate(stack[depth], peers, units, queue, 1, full):
                expand = True
                break
        if not expand:
            return solutions, branches


@njit
def _solve_many(puzzles, peers, units, popcount, n, limit, digit_order, solutions, counts, branches):
    for i in range(puzzles.shape[0]):
        counts[i], branches[i] = _search(puzzles[i], peers, units, popcount, n, limit, digit_order, solutions[i])


@njit
def _dig(solution, removal_order, target_blanks, peers, units, popcount, n, digit_order):
    """Blank cells of a solved grid in `removal_order`, keeping the solution unique, until target_blanks."""
    puzzle = solution.copy()
    scratch = np.empty_like(solution)
    blanks = 0
    for cell in removal_order:
        if blanks >= target_blanks:
            break
        value = puzzle[cell]
        puzzle[cell] = 0
        count, _ = _search(puzzle, peers, units, popcount, n, 2, digit_order, scratch)
        if count == 1:
            blanks += 1
        else:
            puzzle[cell] = value
    return puzzle


# ---------------------------------------------------------------------------------------------------
# Python API

@dataclass
class SolveResult:
    count: int               # solutions found, capped at the limit (2 = "two or more")
    solution: np.ndarray     # the first solution (values 1..N), meaningful when count >= 1
    branches: int            # branch points of the search: 0 = solved by propagation alone


def _identity_order(n: int, cells: int) -> np.ndarray:
    return np.tile(np.arange(n, dtype=np.int64), (cells, 1))


def solve(puzzle: np.ndarray, box: Box = Box(), limit: int = 2) -> SolveResult:
    """Solve one puzzle (flat values, 0 = blank), counting solutions up to `limit`."""
    counts, solutions, branches = solve_many(np.asarray(puzzle)[None], box, limit)
    return SolveResult(int(counts[0]), solutions[0], int(branches[0]))


def solve_many(puzzles: np.ndarray, box: Box = Box(), limit: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve a stack of puzzles (n, cells): (solution counts, first solutions, branch points)."""
    puzzles = np.ascontiguousarray(puzzles, dtype=np.int8)
    if puzzles.ndim != 2 or puzzles.shape[1] != box.cells:
        raise ValueError(f"expected puzzles of {box.cells} cells, got shape {puzzles.shape}")
    if puzzles.size and (puzzles.min() < 0 or puzzles.max() > box.size):
        raise ValueError(f"cell values must be 0..{box.size}")
    peers, units, popcount = geometry(box)
    counts = np.zeros(len(puzzles), dtype=np.int64)
    branches = np.zeros(len(puzzles), dtype=np.int64)
    solutions = np.zeros_like(puzzles)
    _solve_many(puzzles, peers, units, popcount, box.size, limit, _identity_order(box.size, box.cells),
                solutions, counts, branches)
    return counts, solutions, branches


def random_solution(box: Box, rng: np.random.Generator) -> np.ndarray:
    """A random complete grid: the search on an empty board, trying digits in a random order per cell."""
    peers, units, popcount = geometry(box)
    digit_order = np.argsort(rng.random((box.cells, box.size)), axis=1).astype(np.int64)
    solution = np.zeros(box.cells, dtype=np.int8)
    count, _ = _search(np.zeros(box.cells, dtype=np.int8), peers, units, popcount, box.size, 1, digit_order, solution)
    assert count == 1
    return solution


def dig_puzzle(solution: np.ndarray, box: Box, rng: np.random.Generator, target_blanks: int) -> np.ndarray:
    """Blank up to target_blanks cells of `solution` in a random order, keeping the solution unique."""
    peers, units, popcount = geometry(box)
    removal_order = rng.permutation(box.cells).astype(np.int64)
    return _dig(np.ascontiguousarray(solution, dtype=np.int8), removal_order, target_blanks, peers, units, popcount,
                box.size, _identity_order(box.size, box.cells))
