"""Sudoku symmetries (formats §2.2): random validity-preserving transforms for augmentation, and a
canonical key that is equal for two puzzles iff one is a transform of the other (used to keep test
puzzles out of training and generated puzzles distinct)."""
from __future__ import annotations

import itertools

import numpy as np

from hrm.data._jit import njit
from hrm.data.sudoku_solver import Box


def _perms(rng: np.random.Generator, count: int, shape: tuple[int, ...], n: int) -> np.ndarray:
    """`count` x shape independent random permutations of range(n)."""
    return np.argsort(rng.random((count, *shape, n)), axis=-1)


def random_symmetries(box: Box, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` random validity-preserving transforms: (cell mapping (count, cells), digit map (count, N+1)).

    new[i, j] = old[row_perm[i], col_perm[j]] of the (maybe transposed) board, then digits relabelled, as
    formats §2.2: rows permute as bands of `box.rows` rows and within each band, columns as stacks of `box.cols`
    columns and within each stack; transposing is a symmetry only for square boxes (rows == cols).
    NOTE: the draws are vectorised over the `count` transforms, so the RNG is consumed in a different
    order than the original's one-transform-at-a-time loop; the distribution is the same.
    """
    n, r, c = box.size, box.rows, box.cols
    digit_map = np.concatenate([np.zeros((count, 1), np.int64), 1 + _perms(rng, count, (), n)], axis=1)
    transpose = rng.random(count) < 0.5 if r == c else np.zeros(count, bool)
    bands = _perms(rng, count, (), n // r)                      # c bands of r rows
    rows_in_band = _perms(rng, count, (n // r,), r)
    stacks = _perms(rng, count, (), n // c)                     # r stacks of c columns
    cols_in_stack = _perms(rng, count, (n // c,), c)
    row_perm = (bands[:, :, None] * r + np.take_along_axis(rows_in_band, bands[:, :, None], axis=1)).reshape(count, n)
    col_perm = (stacks[:, :, None] * c + np.take_along_axis(cols_in_stack, stacks[:, :, None], axis=1)).reshape(count, n)
    mapping = row_perm[:, :, None] * n + col_perm[:, None, :]            # index into the (maybe transposed) board
    transposed_index = (mapping % n) * n + mapping // n
    mapping = np.where(transpose[:, None, None], transposed_index, mapping).reshape(count, n * n)
    return mapping, digit_map


def augment(puzzle: np.ndarray, solution: np.ndarray, box: Box, num_aug: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The original plus num_aug random transforms of it: (puzzles, solutions), each (1 + num_aug, cells)."""
    mapping, digit_map = random_symmetries(box, num_aug, rng)
    rows = np.arange(num_aug)[:, None]
    puzzles = digit_map[rows, puzzle[mapping]]
    solutions = digit_map[rows, solution[mapping]]
    return (np.concatenate([puzzle[None], puzzles]).astype(np.int8),
            np.concatenate([solution[None], solutions]).astype(np.int8))


# The row/column symmetry group is enumerated for the canonical form only up to this size (6x6: 3,456;
# 9x9 would need 3.4 million, where only digit relabelling is factored out).
_MAX_ENUMERATED_SYMMETRIES = 20_000


def _all_line_perms(group: int, within: int) -> np.ndarray:
    """Every permutation of `group` blocks of `within` lines, with every permutation inside each block."""
    out = []
    inner = list(itertools.permutations(range(within)))
    for blocks in itertools.permutations(range(group)):
        for choice in itertools.product(inner, repeat=group):
            out.append([b * within + choice[k][i] for k, b in enumerate(blocks) for i in range(within)])
    return np.array(out, dtype=np.int64)


def _symmetry_count(box: Box) -> int:
    from math import factorial as f
    rows = f(box.size // box.rows) * f(box.rows) ** (box.size // box.rows)
    cols = f(box.size // box.cols) * f(box.cols) ** (box.size // box.cols)
    return rows * cols * (2 if box.rows == box.cols else 1)


def _symmetry_mappings(box: Box) -> np.ndarray:
    n = box.size
    row_perms = _all_line_perms(n // box.rows, box.rows)
    col_perms = _all_line_perms(n // box.cols, box.cols)
    mapping = (row_perms[:, None, :, None] * n + col_perms[None, :, None, :]).reshape(-1, n * n)
    if box.rows == box.cols:
        mapping = np.concatenate([mapping, (mapping % n) * n + mapping // n])
    return mapping


def canonical_key(puzzle: np.ndarray, box: Box, _cache: dict = {}) -> bytes:
    """A key equal for two puzzles iff one is a symmetry of the other (digits, bands, rows, stacks, columns,
    transpose for square boxes): the lexicographically smallest variant, digits relabelled in order of
    first appearance. Boards with more than 20,000 line symmetries (9x9) factor out digit relabelling only,
    so there the key is finer than full equivalence."""
    if _symmetry_count(box) <= _MAX_ENUMERATED_SYMMETRIES:
        if box not in _cache:
            _cache[box] = _symmetry_mappings(box)
        mappings = _cache[box]
    else:
        mappings = np.arange(box.cells, dtype=np.int64)[None]
    return _smallest_relabelled_variant(np.asarray(puzzle, dtype=np.int64), mappings, box.size).tobytes()


@njit
def _smallest_relabelled_variant(puzzle, mappings, n):
    """min over mappings m of relabel(puzzle[m]), comparing cell by cell and abandoning a variant as soon
    as it is larger than the best so far."""
    cells = mappings.shape[1]
    best = np.full(cells, 255, dtype=np.uint8)
    label = np.zeros(n + 1, dtype=np.int64)
    for k in range(mappings.shape[0]):
        label[:] = 0
        next_label = 1
        decided = False                       # True once the variant is known to be smaller than `best`
        candidate = np.empty(cells, dtype=np.uint8)
        larger = False
        for i in range(cells):
            v = puzzle[mappings[k, i]]
            if v != 0 and label[v] == 0:
                label[v] = next_label
                next_label += 1
            c = label[v] if v != 0 else 0
            candidate[i] = c
            if not decided:
                if c > best[i]:
                    larger = True
                    break
                if c < best[i]:
                    decided = True
        if not larger and decided:
            best[:] = candidate
    return best
