"""Maze datasets (formats §2): N x N mazes with a start, a goal and a unique shortest path.

Encoding (the original's): the characters "# SGo" (wall, free, start, goal, path) are tokens 1..5, PAD 0,
vocab 6, seq_len N*N. The input is the maze with S and G; the label is the same maze with the cells of
the shortest path between S and G (S and G themselves excluded) marked 'o'. Nothing is ignored; every
puzzle identifier is 0. Each maze is one group; with --aug a training group holds its 8 dihedral versions.

Generation: a random depth-first maze on every other cell with 8% of its inner walls knocked down
for loops (independent random walls, as in the Searchformer mazes, almost never give a long unique
shortest path); a start drawn among the free cells; the goal drawn among the cells whose shortest path
from the start is unique and at least --min-path-length moves long (the paper's Maze-30x30-Hard uses
paths longer than 110). Path length counts moves, so a path of L moves has L - 1
'o' cells. The breadth-first search that counts shortest paths compiles with numba when available.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hrm.data import source_csv
from hrm.data._jit import njit
from hrm.data.format import BLANK_IDENTIFIER, DatasetWriter
from hrm.data.transforms import NUM_DIHEDRAL, dihedral_transform

CHARSET = "# SGo"
WALL, FREE, START, GOAL, PATH = range(1, 6)       # tokens
PAD_ID = 0
VOCAB_SIZE = len(CHARSET) + 1


class MazeInputError(ValueError):
    """A maze source is malformed or holds an invalid maze; the message names the file and line."""


# ---------------------------------------------------------------------------------------------------
# Text <-> tokens

_TOKEN_OF = np.full(256, 255, dtype=np.uint8)
for _token, _char in enumerate(CHARSET, start=1):
    _TOKEN_OF[ord(_char)] = _token


def text_to_tokens(text: str, where: str = "maze") -> np.ndarray:
    """A maze as one row-major string over "# SGo" -> tokens (uint8)."""
    raw = np.frombuffer(text.encode("latin1", errors="replace"), dtype=np.uint8)
    tokens = _TOKEN_OF[raw]
    if (tokens == 255).any():
        position = int(np.argmax(tokens == 255))
        raise MazeInputError(f"{where}, character {position + 1}: {text[position]!r} is not one of {CHARSET!r}")
    return tokens


def tokens_to_text(tokens: np.ndarray) -> str:
    """Tokens -> the row-major string; PAD (and anything out of range) shows as '?'."""
    table = np.array(list("?" + CHARSET), dtype="<U1")
    tokens = np.asarray(tokens).reshape(-1)
    return "".join(table[np.where((tokens >= 1) & (tokens <= 5), tokens, 0)])


def tokens_to_rows(tokens: np.ndarray) -> list[str]:
    text = tokens_to_text(tokens)
    n = math.isqrt(len(text))
    return [text[i * n:(i + 1) * n] for i in range(n)]


# ---------------------------------------------------------------------------------------------------
# Shortest paths

@njit
def _bfs_count(free, n, source, dist, count):
    """Breadth-first search from `source` over free cells: distances and shortest-path counts (capped at 2)."""
    for i in range(n * n):
        dist[i] = -1
        count[i] = 0
    queue = np.empty(n * n, dtype=np.int32)
    head, tail = 0, 1
    queue[0] = source
    dist[source] = 0
    count[source] = 1
    while head < tail:
        cell = queue[head]
        head += 1
        r, c = cell // n, cell % n
        for k in range(4):
            rr = r + (k == 0) - (k == 1)
            cc = c + (k == 2) - (k == 3)
            if rr < 0 or rr >= n or cc < 0 or cc >= n:
                continue
            other = rr * n + cc
            if not free[other]:
                continue
            if dist[other] < 0:
                dist[other] = dist[cell] + 1
                count[other] = count[cell]
                queue[tail] = other
                tail += 1
            elif dist[other] == dist[cell] + 1:
                count[other] = min(2, count[other] + count[cell])


def shortest_paths(tokens: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(distance from S, number of shortest paths from S capped at 2) for every cell; -1 = unreachable."""
    free = (np.asarray(tokens).reshape(-1) != WALL)
    start = int(np.flatnonzero(np.asarray(tokens).reshape(-1) == START)[0])
    dist = np.empty(n * n, np.int32)
    count = np.empty(n * n, np.int32)
    _bfs_count(free, n, start, dist, count)
    return dist, count


def solve_maze(tokens: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The label of a maze (its path marked 'o') and its number of shortest paths (0, 1 or 2 = several).

    With several shortest paths the label marks one of them (the walk back from G takes the first
    predecessor in the order down, up, right, left)."""
    tokens = np.asarray(tokens, dtype=np.uint8).reshape(-1)
    n = math.isqrt(len(tokens))
    dist, count = shortest_paths(tokens, n)
    goal = int(np.flatnonzero(tokens == GOAL)[0])
    if dist[goal] < 0:
        return None, 0
    label = tokens.copy()
    cell = goal
    while dist[cell] > 1:
        r, c = divmod(cell, n)
        for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= rr < n and 0 <= cc < n and dist[rr * n + cc] == dist[cell] - 1:
                cell = rr * n + cc
                break
        label[cell] = PATH
    return label, int(count[goal])


def path_length(label: np.ndarray) -> int:
    """Moves from S to G on a label's marked path."""
    return int((np.asarray(label) == PATH).sum()) + 1


# ---------------------------------------------------------------------------------------------------
# Generation

def _carve(n: int, rng: np.random.Generator, loop_fraction: float) -> np.ndarray:
    """Free-cell mask of an n x n maze: a random depth-first spanning tree over "rooms" on every other
    cell (the lattice's offset drawn per maze), then a fraction of the remaining walls between adjacent
    rooms knocked down to make loops, so that shortest paths must be found, not just followed."""
    offset_r, offset_c = (int(x) for x in rng.integers(0, 2, size=2)) if n > 2 else (0, 0)
    rows, cols = range(offset_r, n, 2), range(offset_c, n, 2)
    free = np.zeros((n, n), dtype=bool)
    rooms = [(r, c) for r in rows for c in cols]
    visited = {rooms[int(rng.integers(len(rooms)))]}
    stack = [next(iter(visited))]
    free[stack[0]] = True
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc) for dr, dc in ((2, 0), (-2, 0), (0, 2), (0, -2))
                   if 0 <= r + dr < n and 0 <= c + dc < n and (r + dr, c + dc) not in visited]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        free[(r + nr) // 2, (c + nc) // 2] = free[nr, nc] = True
        visited.add((nr, nc))
        stack.append((nr, nc))
    # Knock down walls between two rooms (a wall cell with rooms on both sides along one axis).
    walls = [(r, c) for r in range(n) for c in range(n) if not free[r, c] and (
        (0 < r < n - 1 and (r - offset_r) % 2 == 1 and (c - offset_c) % 2 == 0) or
        (0 < c < n - 1 and (c - offset_c) % 2 == 1 and (r - offset_r) % 2 == 0))]
    for k in np.flatnonzero(rng.random(len(walls)) < loop_fraction):
        free[walls[k]] = True
    return free.reshape(-1)


def generate_maze(n: int, rng: np.random.Generator, min_path_length: int = 0, loop_fraction: float = 0.08,
                  max_attempts: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """One maze with a unique shortest path of at least min_path_length moves: (input tokens, label tokens)."""
    dist = np.empty(n * n, np.int32)
    count = np.empty(n * n, np.int32)
    for _ in range(max_attempts):
        free = _carve(n, rng, loop_fraction)
        cells = np.flatnonzero(free)
        if len(cells) < 2:
            continue
        for _start_try in range(4):
            start = int(rng.choice(cells))
            _bfs_count(free, n, start, dist, count)
            goals = np.flatnonzero((dist >= max(1, min_path_length)) & (count == 1))
            if len(goals):
                goal = int(rng.choice(goals))
                tokens = np.where(free, FREE, WALL).astype(np.uint8)
                tokens[start], tokens[goal] = START, GOAL
                label, paths = solve_maze(tokens)
                assert paths == 1 and label is not None
                return tokens, label
    raise RuntimeError(f"no {n}x{n} maze with a unique shortest path of {min_path_length}+ moves in {max_attempts} attempts")


def canonical_key(tokens: np.ndarray) -> bytes:
    """Equal for two mazes iff one is a dihedral transform of the other."""
    n = math.isqrt(len(tokens))
    grid = np.asarray(tokens, np.uint8).reshape(n, n)
    return min(np.ascontiguousarray(dihedral_transform(grid, t)).tobytes() for t in range(NUM_DIHEDRAL))


# Generation gives up after this many mazes in a row that were all equivalent to ones already drawn.
STALL_DUPLICATES = 2000


def generate_mazes(count: int, n: int, rng: np.random.Generator, min_path_length: int = 0,
                   exclude: set[bytes] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`count` mazes, none equivalent (under the 8 dihedral transforms) to another or to a key in `exclude`."""
    exclude = exclude if exclude is not None else set()
    inputs, labels = [], []
    duplicates = 0
    while len(inputs) < count:
        tokens, label = generate_maze(n, rng, min_path_length)
        key = canonical_key(tokens)
        if key in exclude:
            # Small boards have few distinct mazes: stop when a long run of draws brings nothing new.
            duplicates += 1
            if duplicates >= STALL_DUPLICATES:
                raise RuntimeError(f"found only {len(exclude):,} distinct {n}x{n} mazes (up to rotation and "
                                   f"reflection) of the {len(exclude) - len(inputs) + count:,} needed: the last "
                                   f"{duplicates:,} were all repeats, so too few exist; ask for fewer or a larger --size")
            continue
        duplicates = 0
        exclude.add(key)
        inputs.append(tokens)
        labels.append(label)
    return np.array(inputs, np.uint8).reshape(-1, n * n), np.array(labels, np.uint8).reshape(-1, n * n)


# ---------------------------------------------------------------------------------------------------
# Import

@dataclass
class MazeReport:
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    several_shortest: int = 0

    def __str__(self) -> str:
        parts = [f"{self.kept} mazes kept"] + [f"{c} rejected: {r}" for r, c in sorted(self.rejected.items())]
        if self.several_shortest:
            parts.append(f"{self.several_shortest} kept with several shortest paths")
        return ", ".join(parts)


def _check_maze(question: str, answer: str, where: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate one maze and its answer: (input tokens, label tokens, shortest path unique)."""
    n = math.isqrt(len(question))
    if n * n != len(question) or n < 2:
        raise MazeInputError(f"{where}: the question has {len(question)} characters, not a square number")
    if len(answer) != len(question):
        raise MazeInputError(f"{where}: the answer has {len(answer)} characters, the question {len(question)}")
    tokens = text_to_tokens(question, f"{where}, column 'question'")
    label = text_to_tokens(answer, f"{where}, column 'answer'")
    for name, token in (("S", START), ("G", GOAL)):
        if (tokens == token).sum() != 1:
            raise MazeInputError(f"{where}: the question needs exactly one '{name}', it has {(tokens == token).sum()}")
    if (tokens == PATH).any():
        raise MazeInputError(f"{where}, character {int(np.argmax(tokens == PATH)) + 1}: 'o' in the question")
    changed = np.flatnonzero((label != tokens) & ~((tokens == FREE) & (label == PATH)))
    if len(changed):
        raise MazeInputError(f"{where}, character {int(changed[0]) + 1}: the answer differs from the question "
                             f"other than by marking free cells 'o'")
    n_dist, n_count = shortest_paths(tokens, n)
    goal = int(np.flatnonzero(tokens == GOAL)[0])
    if n_dist[goal] < 0:
        raise MazeInputError(f"{where}: G cannot be reached from S")
    marked = np.flatnonzero(label == PATH)
    # A shortest path of d moves has d - 1 intermediate cells, each one step further from S than the last.
    on_path = sorted(n_dist[marked])
    if len(marked) != n_dist[goal] - 1 or on_path != list(range(1, int(n_dist[goal]))):
        raise MazeInputError(f"{where}: the answer's 'o' cells are not a shortest path from S to G "
                             f"({len(marked)} marked, shortest path has {int(n_dist[goal]) - 1})")
    return tokens, label, bool(n_count[goal] == 1)


def read_maze_csv(path: str | Path, skip_invalid: bool, report: MazeReport) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Read mazes in the original CSV format: a list of (input tokens, label tokens, path length)."""
    path = Path(path)
    mazes, size = [], None
    for where, row in source_csv.read_rows(path, source_csv.read_text(path, MazeInputError), MazeInputError):
        try:
            source_csv.check_columns(row, where, MazeInputError)
            tokens, label, unique = _check_maze(row[1], row[2], where)
            if size is not None and len(tokens) != size:
                raise MazeInputError(f"{where}: {len(tokens)} cells, earlier mazes have {size}")
        except MazeInputError as error:
            if not skip_invalid:
                raise MazeInputError(f"{error} (use --skip-invalid to drop such mazes)") from None
            reason = str(error).split(": ", 1)[-1].split(" (")[0]
            report.rejected[reason] = report.rejected.get(reason, 0) + 1
            continue
        size = len(tokens)
        report.several_shortest += not unique
        report.kept += 1
        mazes.append((tokens, label, path_length(label)))
    return mazes


# ---------------------------------------------------------------------------------------------------
# Building

def write_maze_dataset(output_dir: str | Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                       aug: bool, seed: int, builder_args: dict[str, Any]) -> Path:
    n = math.isqrt(train[0].shape[1])
    with DatasetWriter(output_dir, builder="maze", arguments=builder_args, seed=seed) as writer:
        split = writer.split("train", seq_len=n * n)
        for tokens, label in zip(*train):
            if aug:
                grids = [np.stack([dihedral_transform(a.reshape(n, n), t).reshape(-1) for t in range(NUM_DIHEDRAL)])
                         for a in (tokens, label)]
                split.add_group(grids[0], grids[1], np.ones(NUM_DIHEDRAL, int), np.zeros(NUM_DIHEDRAL, int))
            else:
                split.add_group(tokens[None], label[None], [1], [0])
        split = writer.split("test", seq_len=n * n)
        for tokens, label in zip(*test):
            split.add_group(tokens[None], label[None], [1], [0])
        return writer.commit([BLANK_IDENTIFIER], pad_id=PAD_ID, ignore_label_id=0, blank_identifier_id=0,
                             vocab_size=VOCAB_SIZE)


def build_generated(output_dir: str | Path, n_train: int, n_test: int, size: int = 30, min_path_length: int = 0,
                    aug: bool = False, seed: int = 0, builder_args: dict[str, Any] | None = None, log=print) -> Path:
    """Generate n_train + n_test mazes (no two dihedrally equivalent) and write the dataset."""
    if not 2 <= size <= 30:
        raise ValueError(f"--size must be 2..30 (the model's 900-token canvas), got {size}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x3A2E]))
    seen: set[bytes] = set()
    test = generate_mazes(n_test, size, rng, min_path_length, seen)
    train = generate_mazes(n_train, size, rng, min_path_length, seen)
    log(f"maze {size}x{size}: generated {n_train} train{' x 8 dihedral versions' if aug else ''} and {n_test} test mazes "
        f"with unique shortest paths of {max(1, min_path_length)}+ moves")
    args = dict(builder_args or {}, generate=n_train, test_size=n_test, size=size, min_path_length=min_path_length, aug=aug)
    return write_maze_dataset(output_dir, train, test, aug, seed, args)


def build_from_files(output_dir: str | Path, inputs: Iterable[str | Path], test_inputs: Iterable[str | Path] = (),
                     test_size: int | None = None, subsample_size: int | None = None, min_path_length: int = 0,
                     aug: bool = False, skip_invalid: bool = False, seed: int = 0,
                     builder_args: dict[str, Any] | None = None, log=print) -> Path:
    """Import mazes in the original CSV format. The test split is `test_inputs`, else `test_size` mazes
    (default: a tenth) held out of `inputs`; `subsample_size` draws the training mazes (seeded)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x3A2F]))
    report = MazeReport()
    inputs, test_inputs = list(inputs), list(test_inputs)
    if not inputs:
        raise MazeInputError("no --input files given")

    def load(paths) -> list[tuple[np.ndarray, np.ndarray, int]]:
        mazes = [m for p in paths for m in read_maze_csv(p, skip_invalid, report)]
        return [m for m in mazes if m[2] >= min_path_length]

    pool = load(inputs)
    if test_inputs:
        test = load(test_inputs)
        train = pool
    else:
        size = max(1, len(pool) // 10) if test_size is None else test_size
        if size >= len(pool):
            raise MazeInputError(f"--test-size {size} leaves no training mazes out of {len(pool)}")
        order = rng.permutation(len(pool))
        test = [pool[i] for i in np.sort(order[:size])]
        test_keys = {canonical_key(m[0]) for m in test}
        train = [pool[i] for i in np.sort(order[size:]) if canonical_key(pool[i][0]) not in test_keys]
    if subsample_size is not None and subsample_size < len(train):
        train = [train[i] for i in np.sort(rng.choice(len(train), subsample_size, replace=False))]
    if not train or not test:
        raise MazeInputError(f"nothing to build: {len(train)} training and {len(test)} test mazes ({report})")
    sizes = {len(m[0]) for m in train + test}
    if len(sizes) > 1:
        raise MazeInputError(f"the train and test mazes differ in size ({sorted(sizes)} cells)")
    log(f"maze: {report}; {len(train)} train, {len(test)} test")
    stack = lambda mazes: (np.stack([m[0] for m in mazes]), np.stack([m[1] for m in mazes]))  # noqa: E731
    return write_maze_dataset(output_dir, stack(train), stack(test), aug, seed, builder_args or {})
