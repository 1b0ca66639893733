"""ARC datasets (formats §2, semantics §12): reading ARC-AGI / ConceptARC / Kaggle files, encoding, augmentation.

Encoding: colour c (0..9) is token c + 2, PAD 0, EOS 1, vocab 12. A grid sits in a 30 x 30 canvas at an
offset, EOS on the row below it and the column right of it (the corner stays PAD); seq_len 900. Labels
ignore PAD (ignore_label_id 0). Input and output of one example share their offset; in the train split
every example of a puzzle but one (drawn) is translated at random, test examples sit at the top-left.

Augmentation: up to 5 x num_aug trials of (dihedral tid 0..7, colour map fixing black and permuting
1..9), keeping versions whose multiset of example grids is new, until 1 + num_aug versions exist. A
version is named "<task>_t<tid>_<10-digit colour map>", so `inverse_aug(name, grid)` undoes it.

Split assignment (the original's default): a task's demonstration ("train") pairs go to the train split;
its test pairs go to the test split if it comes from a folder named "evaluation" (or a Kaggle
*evaluation* file), else to train as well. `strict=True` keeps evaluation tasks out of training entirely.
A group is one task's versions within a split; identifiers number puzzle names by first appearance,
train split first, so a task's train and test puzzles of one version share an identifier.

Unlike the original, the build is deterministic: tasks are read in sorted order and every random draw
comes from a generator seeded by (seed, task name), so neither directory order, PYTHONHASHSEED nor the
number of worker processes changes a byte. The dataset is streamed to disk task by task.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import re
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from hrm.data.format import BLANK_IDENTIFIER, DatasetWriter, read_json
from hrm.data.transforms import NUM_DIHEDRAL, dihedral_transform, inverse_dihedral_transform

MAX_GRID = 30
PAD_ID, EOS_ID, COLOR_OFFSET = 0, 1, 2
NUM_COLORS = 10
VOCAB_SIZE = NUM_COLORS + 2
SEQ_LEN = MAX_GRID * MAX_GRID
AUGMENT_RETRIES_FACTOR = 5


class ArcInputError(ValueError):
    """An ARC source is malformed; the message names the file and the position in it."""


# ---------------------------------------------------------------------------------------------------
# Grids <-> sequences, and the inverse transforms evaluation needs

def grid_to_canvas(grid: np.ndarray, pad_r: int = 0, pad_c: int = 0) -> np.ndarray:
    """A (h, w) grid of colours -> the (30, 30) token canvas, grid at (pad_r, pad_c), EOS row and column."""
    h, w = grid.shape
    canvas = np.zeros((MAX_GRID, MAX_GRID), dtype=np.uint8)
    canvas[pad_r:pad_r + h, pad_c:pad_c + w] = np.asarray(grid, dtype=np.uint8) + COLOR_OFFSET
    if pad_r + h < MAX_GRID:
        canvas[pad_r + h, pad_c:pad_c + w] = EOS_ID
    if pad_c + w < MAX_GRID:
        canvas[pad_r:pad_r + h, pad_c + w] = EOS_ID
    return canvas


def grid_to_seq(grid: np.ndarray) -> np.ndarray:
    """A grid at the top-left of the canvas, flattened: the (900,) sequence of a test example."""
    return grid_to_canvas(grid).reshape(-1)


def crop(seq: np.ndarray) -> np.ndarray:
    """The grid in a (900,) token sequence (semantics §12.2): the largest top-left rectangle of colour tokens."""
    canvas = np.asarray(seq).reshape(MAX_GRID, MAX_GRID)
    is_colour = (canvas >= COLOR_OFFSET) & (canvas < COLOR_OFFSET + NUM_COLORS)
    best_area, best = 0, (0, 0)
    width = MAX_GRID
    for rows in range(1, MAX_GRID + 1):
        bad = np.flatnonzero(~is_colour[rows - 1, :width])
        if len(bad):
            width = int(bad[0])
        if rows * width > best_area:
            best_area, best = rows * width, (rows, width)
    return (canvas[:best[0], :best[1]].astype(np.int16) - COLOR_OFFSET).astype(np.uint8)


def locate_grid(seq: np.ndarray) -> np.ndarray:
    """The grid in a sequence wherever it sits (translated training examples): crop from its top-left cell."""
    canvas = np.asarray(seq).reshape(MAX_GRID, MAX_GRID)
    colour = (canvas >= COLOR_OFFSET) & (canvas < COLOR_OFFSET + NUM_COLORS)
    if not colour.any():
        return np.zeros((0, 0), dtype=np.uint8)
    top = int(np.flatnonzero(colour.any(axis=1))[0])
    left = int(np.flatnonzero(colour.any(axis=0))[0])
    shifted = np.zeros_like(canvas)
    shifted[:MAX_GRID - top, :MAX_GRID - left] = canvas[top:, left:]
    return crop(shifted)


_AUG_NAME = re.compile(r"^(?P<task>.+)_t(?P<tid>[0-7])_(?P<colours>\d{10})$")


def parse_aug_name(name: str) -> tuple[str, int, np.ndarray] | None:
    """(task, tid, colour map) of an augmented puzzle name, or None for an original."""
    match = _AUG_NAME.match(name)
    if not match:
        return None
    colours = np.array([int(ch) for ch in match["colours"]], dtype=np.uint8)
    return match["task"], int(match["tid"]), colours


def aug_name(task: str, tid: int, colour_map: np.ndarray) -> str:
    return f"{task}_t{tid}_{''.join(str(int(c)) for c in colour_map)}"


def apply_aug(grid: np.ndarray, tid: int, colour_map: np.ndarray) -> np.ndarray:
    return dihedral_transform(np.asarray(colour_map)[np.asarray(grid)], tid)


def inverse_aug(name: str, grid: np.ndarray) -> np.ndarray:
    """Undo the augmentation named by `name` on a predicted grid (identity for an original's name)."""
    parsed = parse_aug_name(name)
    if parsed is None:
        return np.asarray(grid)
    _, tid, colour_map = parsed
    inverse_colours = np.argsort(colour_map).astype(np.uint8)
    return inverse_colours[inverse_dihedral_transform(np.asarray(grid), tid)]


# ---------------------------------------------------------------------------------------------------
# Reading tasks

@dataclass
class ArcTask:
    name: str
    evaluation: bool                                  # from an "evaluation" folder or Kaggle file
    train: list[tuple[np.ndarray, np.ndarray]]        # demonstration pairs
    test: list[tuple[np.ndarray, np.ndarray]]
    source: str


def parse_grid(raw: Any, where: str) -> np.ndarray:
    """A JSON grid (list of rows of colours 0..9, 1..30 x 1..30) -> uint8 array; errors name the cell."""
    if not isinstance(raw, list) or not raw:
        raise ArcInputError(f"{where}: a grid must be a non-empty list of rows")
    width = None
    for r, row in enumerate(raw):
        if not isinstance(row, list) or not row:
            raise ArcInputError(f"{where}, row {r}: a row must be a non-empty list of colours")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise ArcInputError(f"{where}, row {r}: {len(row)} cells, row 0 has {width} (ragged grid)")
        for c, value in enumerate(row):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < NUM_COLORS:
                raise ArcInputError(f"{where}, row {r}, column {c}: colour {value!r} is outside 0..9")
    if len(raw) > MAX_GRID or width > MAX_GRID:
        raise ArcInputError(f"{where}: grid is {len(raw)}x{width}, larger than {MAX_GRID}x{MAX_GRID}")
    return np.array(raw, dtype=np.uint8)


def _read_json(path: Path) -> Any:
    return read_json(path, ArcInputError)


def _parse_task(raw: Any, name: str, evaluation: bool, where: str) -> ArcTask:
    if not isinstance(raw, dict):
        raise ArcInputError(f"{where}: a task must be a JSON object with 'train' and 'test' lists")
    raw = dict(raw)
    name = raw.pop("name", name)                      # the original: a "name" key overrides the file stem
    pairs = {}
    for kind in ("train", "test"):
        examples = raw.get(kind)
        if not isinstance(examples, list):
            raise ArcInputError(f"{where}: missing or invalid '{kind}' list")
        pairs[kind] = []
        for i, example in enumerate(examples):
            if not isinstance(example, dict) or "input" not in example or "output" not in example:
                raise ArcInputError(f"{where}: {kind}[{i}] needs an 'input' and an 'output' grid")
            pairs[kind].append((parse_grid(example["input"], f"{where}: {kind}[{i}].input"),
                                parse_grid(example["output"], f"{where}: {kind}[{i}].output")))
    if not pairs["train"] and not pairs["test"]:
        raise ArcInputError(f"{where}: the task has no examples")
    return ArcTask(str(name), evaluation, pairs["train"], pairs["test"], where)


def read_task_file(path: Path, evaluation: bool) -> ArcTask:
    return _parse_task(_read_json(path), path.stem, evaluation, str(path))


def read_kaggle(challenges: Path) -> list[ArcTask]:
    """Kaggle's combined files: *_challenges.json (task id -> {train, test inputs}) and the matching
    *_solutions.json (task id -> list of test outputs) beside it."""
    solutions_path = challenges.with_name(challenges.name.replace("challenges", "solutions"))
    if not solutions_path.is_file():
        raise ArcInputError(f"{challenges}: the matching solutions file {solutions_path.name} is missing")
    all_challenges, all_solutions = _read_json(challenges), _read_json(solutions_path)
    for path, value in ((challenges, all_challenges), (solutions_path, all_solutions)):
        if not isinstance(value, dict):
            raise ArcInputError(f"{path}: expected a JSON object of task id -> task")
    evaluation = "evaluation" in challenges.name
    tasks = []
    for task_id in sorted(all_challenges):
        shown = task_id if task_id.isprintable() else repr(task_id)  # keeps the message on one line
        where = f"{challenges}: task {shown}"
        task = all_challenges[task_id]
        outputs = all_solutions.get(task_id)
        if not isinstance(task, dict) or not isinstance(task.get("test"), list):
            raise ArcInputError(f"{where}: missing or invalid 'test' list")
        for i, example in enumerate(task["test"]):
            if not isinstance(example, dict):  # merged below with dict(example, ...)
                raise ArcInputError(f"{where}: test[{i}] must be an object with an 'input' grid")
        if not isinstance(outputs, list) or len(outputs) != len(task["test"]):
            raise ArcInputError(f"{solutions_path}: task {shown} needs {len(task['test'])} test outputs")
        merged = dict(task, test=[dict(example, output=output) for example, output in zip(task["test"], outputs)])
        tasks.append(_parse_task(merged, task_id, evaluation, where))
    return tasks


def _task_folders(root: Path) -> list[Path]:
    """Folders of task files under a dataset dir, as the original: its sub-directories (ARC-AGI's
    training/ and evaluation/, ConceptARC's concept folders) or the dir itself when it holds tasks. A
    repository root is entered: ARC-AGI's data/ and ConceptARC's corpus/ (its MinimalTasks are not used,
    as in the original)."""
    for inner in ("data", "corpus"):
        if (root / inner).is_dir() and not any(root.glob("*.json")):
            root = root / inner
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and any(p.glob("*.json"))]
    if any(root.glob("*.json")):
        folders.insert(0, root)
    return folders


def read_dataset_dirs(dataset_dirs: Iterable[str | Path]) -> list[ArcTask]:
    """Every task under the given dirs or Kaggle challenge files, in a fixed (sorted) order."""
    tasks: list[ArcTask] = []
    for entry in map(Path, dataset_dirs):
        if not entry.exists():
            raise ArcInputError(f"{entry}: dataset dir not found")
        if entry.is_file():
            tasks += read_kaggle(entry)
            continue
        kaggle = sorted(entry.glob("*challenges*.json"))
        if kaggle:
            for challenges in kaggle:
                tasks += read_kaggle(challenges)
            continue
        folders = _task_folders(entry)
        if not folders:
            raise ArcInputError(f"{entry}: no task files (*.json) found in it or its sub-directories")
        for folder in folders:
            tasks += [read_task_file(path, folder.name == "evaluation") for path in sorted(folder.glob("*.json"))]
    seen: dict[str, str] = {}
    for task in tasks:
        if task.name in seen:
            raise ArcInputError(f"task name {task.name!r} appears twice: {seen[task.name]} and {task.source}")
        seen[task.name] = task.source
    return tasks


# ---------------------------------------------------------------------------------------------------
# Augmentation and encoding of one task

def _task_seed(seed: int, name: str, stream: int) -> np.random.SeedSequence:
    words = np.frombuffer(hashlib.sha256(name.encode()).digest()[:16], dtype=np.uint32)
    return np.random.SeedSequence([seed, stream, *words.tolist()])


def destinations(task: ArcTask, strict: bool) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The examples of a task per split: {"train": [...], "test": [...]}; empty lists dropped."""
    if task.evaluation:
        dests = {"train": [] if strict else task.train, "test": task.test}
    else:
        dests = {"train": task.train + task.test, "test": []}
    return {split: examples for split, examples in dests.items() if examples}


def choose_augmentations(examples: list[tuple[np.ndarray, np.ndarray]], num_aug: int,
                         rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """The identity and up to num_aug (tid, colour map) whose transformed task is new (formats §2.2)."""
    identity = (0, np.arange(NUM_COLORS, dtype=np.uint8))
    versions = [identity]
    if num_aug == 0:
        return versions
    variants = [[np.ascontiguousarray(dihedral_transform(grid, t)) for t in range(NUM_DIHEDRAL)]
                for pair in examples for grid in pair]

    def task_hash(tid: int, colour_map: np.ndarray) -> bytes:
        pair_hashes = []
        for k in range(0, len(variants), 2):
            digest = hashlib.sha256()
            for grid in (variants[k][tid], variants[k + 1][tid]):
                digest.update(bytes(grid.shape))
                digest.update(colour_map[grid].tobytes())
            pair_hashes.append(digest.digest())
        return hashlib.sha256(b"".join(sorted(pair_hashes))).digest()

    seen = {task_hash(*identity)}
    for _ in range(AUGMENT_RETRIES_FACTOR * num_aug):
        tid = int(rng.integers(0, NUM_DIHEDRAL))
        colour_map = np.concatenate([[0], 1 + rng.permutation(NUM_COLORS - 1)]).astype(np.uint8)
        digest = task_hash(tid, colour_map)
        if digest not in seen:
            seen.add(digest)
            versions.append((tid, colour_map))
            if len(versions) >= num_aug + 1:
                break
    return versions


def encode_versions(examples: list[tuple[np.ndarray, np.ndarray]], versions: list[tuple[int, np.ndarray]],
                    translate: bool, rng: np.random.Generator, chunk: int = 128) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (inputs, labels) blocks of (versions x examples, 900) tokens, a chunk of versions at a time.

    Each version's examples are translated (if `translate`) except one drawn per version, which stays at
    the top-left; input and output share the offset.
    """
    n_examples = len(examples)
    # Top-left templates of every example under every tid, with code 0 PAD, 1 EOS, 2 + colour; an extra
    # PAD slot at index 900 receives everything shifted in from outside the canvas.
    templates = np.zeros((2, NUM_DIHEDRAL, n_examples, SEQ_LEN + 1), dtype=np.uint8)
    extent = np.zeros((NUM_DIHEDRAL, n_examples, 2), dtype=np.int64)     # max height, max width of in/out
    for e, (inp, out) in enumerate(examples):
        for t in range(NUM_DIHEDRAL):
            gin, gout = dihedral_transform(inp, t), dihedral_transform(out, t)
            templates[0, t, e, :SEQ_LEN] = grid_to_seq(gin)
            templates[1, t, e, :SEQ_LEN] = grid_to_seq(gout)
            extent[t, e] = max(gin.shape[0], gout.shape[0]), max(gin.shape[1], gout.shape[1])
    cell_r, cell_c = np.divmod(np.arange(SEQ_LEN, dtype=np.int32), MAX_GRID)
    for first in range(0, len(versions), chunk):
        block = versions[first:first + chunk]
        tids = np.array([tid for tid, _ in block], dtype=np.int32)
        lookup = np.array([np.concatenate([[PAD_ID, EOS_ID], colour_map + COLOR_OFFSET]) for _, colour_map in block],
                          dtype=np.uint8)                                        # (V, 12): code -> token
        if translate:
            room = MAX_GRID - extent[tids]                                       # (V, E, 2)
            offsets = np.floor(rng.random(room.shape) * (room + 1)).astype(np.int32)
            keep = rng.integers(0, n_examples, size=len(block))                  # the untranslated example
            offsets[np.arange(len(block)), keep] = 0
            src_r = cell_r[None, None, :] - offsets[:, :, 0, None]
            src_c = cell_c[None, None, :] - offsets[:, :, 1, None]
            index = np.where((src_r >= 0) & (src_c >= 0), src_r * MAX_GRID + src_c, SEQ_LEN)  # (V, E, 900)
        else:
            index = np.broadcast_to(np.arange(SEQ_LEN, dtype=np.int32), (len(block), n_examples, SEQ_LEN))
        # One flat gather per side: template (tid, example) then cell; then code -> token per version.
        flat = (tids[:, None, None] * n_examples + np.arange(n_examples, dtype=np.int32)[None, :, None]) * (SEQ_LEN + 1) + index
        out = []
        for side in range(2):
            codes = np.take(templates[side], flat)                              # (V, E, 900) codes
            tokens = np.take(lookup, codes + (np.arange(len(block), dtype=np.int32) * lookup.shape[1])[:, None, None])
            out.append(tokens.reshape(-1, SEQ_LEN))
        yield out[0], out[1]


def process_task(task: ArcTask, num_aug: int, seed: int, strict: bool) -> dict[str, Any]:
    """Everything one task contributes: per split, its encoded blocks, examples per puzzle and names."""
    dests = destinations(task, strict)
    all_examples = [pair for examples in dests.values() for pair in examples]
    versions = choose_augmentations(all_examples, num_aug, np.random.default_rng(_task_seed(seed, task.name, 0)))
    names = [task.name] + [aug_name(task.name, tid, cmap) for tid, cmap in versions[1:]]
    result: dict[str, Any] = {"name": task.name, "versions": len(versions), "splits": {}}
    for split, examples in dests.items():
        rng = np.random.default_rng(_task_seed(seed, task.name, 1 if split == "train" else 2))
        blocks = list(encode_versions(examples, versions, translate=split == "train", rng=rng))
        result["splits"][split] = {"inputs": np.concatenate([b[0] for b in blocks]),
                                   "labels": np.concatenate([b[1] for b in blocks]),
                                   "examples": len(examples), "names": names}
    return result


def _process_task_star(args: tuple) -> dict[str, Any]:
    return process_task(*args)


# ---------------------------------------------------------------------------------------------------
# Building

def build(output_dir: str | Path, dataset_dirs: Iterable[str | Path], num_aug: int = 1000, seed: int = 42,
          strict: bool = False, workers: int = 1, builder_args: dict[str, Any] | None = None, log=print) -> Path:
    """Build an ARC dataset from task folders / Kaggle files, streaming to disk task by task."""
    tasks = read_dataset_dirs(dataset_dirs)
    if not tasks:
        raise ArcInputError("no tasks found")
    evaluation = sum(task.evaluation for task in tasks)
    log(f"arc: {len(tasks)} tasks ({evaluation} evaluation), {num_aug} augmentations each"
        f"{', strict split' if strict else ''}")
    if evaluation == 0:
        raise ArcInputError("no evaluation tasks (a folder named 'evaluation' or a Kaggle *evaluation* file): "
                            "the test split would be empty")
    identifiers: dict[str, int] = {BLANK_IDENTIFIER: 0}
    pending_test: list[tuple[int, str]] = []            # test puzzles whose name training never used
    short = 0
    with DatasetWriter(output_dir, builder="arc", arguments=builder_args or {}, seed=seed) as writer:
        splits = {split: writer.split(split, seq_len=SEQ_LEN) for split in ("train", "test")}
        jobs = ((task, num_aug, seed, strict) for task in tasks)
        pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
        try:
            results = _in_order(pool, jobs, 2 * workers) if pool else map(_process_task_star, jobs)
            progress = _progress(len(tasks))
            for result in results:
                short += result["versions"] < num_aug + 1
                for split in ("train", "test"):
                    if split not in result["splits"]:
                        continue
                    part = result["splits"][split]
                    ids = []
                    for name in part["names"]:
                        if split == "train":
                            identifiers.setdefault(name, len(identifiers))
                        if name in identifiers:
                            ids.append(identifiers[name])
                        else:
                            pending_test.append((splits["test"].num_puzzles + len(ids), name))
                            ids.append(0)
                    splits[split].add_group(part["inputs"], part["labels"], [part["examples"]] * len(ids), ids)
                progress(result["name"])
        finally:
            if pool:
                pool.terminate()
        for position, name in pending_test:             # test-only names number after all training names
            splits["test"].puzzle_identifiers[position] = identifiers.setdefault(name, len(identifiers))
        names = [""] * len(identifiers)
        for name, index in identifiers.items():
            names[index] = name
        if short:
            log(f"arc: {short} tasks have fewer than {num_aug + 1} distinct versions (too few colours or symmetric grids)")
        return writer.commit(names, pad_id=PAD_ID, ignore_label_id=PAD_ID, blank_identifier_id=0, vocab_size=VOCAB_SIZE)


def _in_order(pool, jobs: Iterator[tuple], window: int) -> Iterator[dict[str, Any]]:
    """Results of `jobs` in order, with at most `window` in flight, so that finished tasks never pile up
    in memory while the writer catches up (Pool.imap has no such bound)."""
    pending: deque = deque()
    for job in jobs:
        pending.append(pool.apply_async(_process_task_star, (job,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _progress(total: int):
    if not sys.stderr.isatty():
        return lambda name: None
    from hrm.progress import progress_bar
    bar = progress_bar(total=total, desc="arc tasks", unit="task")
    return lambda name: bar.update(1)
