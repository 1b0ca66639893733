"""Sudoku datasets (formats §2, §2.2), for any box shape: reading, checking, generating, augmenting, building.

Encoding (the original's): a cell value v (0 = blank, 1..N) is the token v + 1, PAD = 0, vocab N + 2;
labels are the solution, so nothing is ignored. Every puzzle identifier is 0 (identifiers ["<blank>"]).
Each base puzzle is one group of 1 + num_aug puzzles with one example each; the test split is unaugmented.

Sources: the original CSV (`source,question,answer,rating`, N*N characters, `.` for a blank) and plain
lists (one puzzle a line, `.` or `0` for blanks, optionally followed by its solution after a space, comma,
colon, semicolon or `|`; `#` starts a comment). The exact solver fills in missing solutions and rejects
puzzles with no solution or several.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hrm.data import source_csv
from hrm.data.format import BLANK_IDENTIFIER, DatasetWriter
# Re-exported: augment and random_symmetries are also used by evaluation (test-time augmentation).
from hrm.data.sudoku_symmetry import augment, canonical_key, random_symmetries  # noqa: F401
from hrm.data.sudoku_solver import Box, dig_puzzle, random_solution, solve_many

PAD_ID = 0


class SudokuInputError(ValueError):
    """A Sudoku source is malformed or holds an invalid puzzle; the message names the file and line."""


# ---------------------------------------------------------------------------------------------------
# Text <-> values <-> tokens

def _char_table(n: int, blanks: str) -> np.ndarray:
    table = np.full(256, 255, dtype=np.uint8)
    for ch in blanks:
        table[ord(ch)] = 0
    for d in range(1, n + 1):
        table[ord(str(d))] = d
    return table


def parse_board(text: str, box: Box = Box(), where: str = "board", allow_blanks: bool = True) -> np.ndarray:
    """N*N characters, row-major, digits 1..N and (if allowed) `.` or `0` for blanks -> values (int8)."""
    if len(text) != box.cells:
        raise SudokuInputError(f"{where}: expected {box.cells} characters for a {box.size}x{box.size} board, got {len(text)}")
    raw = np.frombuffer(text.encode("latin1", errors="replace"), dtype=np.uint8)
    values = _char_table(box.size, ".0" if allow_blanks else "")[raw]
    if (values == 255).any():
        position = int(np.argmax(values == 255))
        expected = f"1-{box.size}" + (", '.' or '0'" if allow_blanks else "")
        raise SudokuInputError(f"{where}, character {position + 1}: {text[position]!r} is not a cell ({expected})")
    return values.astype(np.int8)


def board_to_string(values: np.ndarray, blank: str = ".") -> str:
    return "".join(blank if v == 0 else str(int(v)) for v in np.asarray(values).reshape(-1))


def encode_board(values: np.ndarray) -> np.ndarray:
    """Values (0 = blank, 1..N) -> tokens (blank 1, digit d -> d + 1)."""
    return (np.asarray(values, dtype=np.int16) + 1).astype(np.uint8)


def decode_tokens(tokens: np.ndarray) -> np.ndarray:
    """Tokens -> values; PAD and blank both become 0."""
    return np.clip(np.asarray(tokens, dtype=np.int16) - 1, 0, None).astype(np.int8)


def vocab_size(box: Box) -> int:
    return box.size + 2


# ---------------------------------------------------------------------------------------------------
# Reading sources

@dataclass
class SudokuRecord:
    puzzle: np.ndarray
    solution: np.ndarray | None
    rating: float | None
    where: str                      # "file:line", for messages


def read_sudoku_file(path: str | Path, box: Box = Box()) -> list[SudokuRecord]:
    """Read a CSV in the original format or a plain list; errors name the file, line and character."""
    path = Path(path)
    text = source_csv.read_text(path, SudokuInputError)
    first = text.split("\n", 1)[0].strip().lower()
    if first.startswith("source,") or path.suffix.lower() == ".csv":
        return _read_csv(path, text, box)
    return _read_plain(path, text, box)


def _read_csv(path: Path, text: str, box: Box) -> list[SudokuRecord]:
    rows = []
    for where, row in source_csv.read_rows(path, text, SudokuInputError):
        source_csv.check_columns(row, where, SudokuInputError)
        _, question, answer, rating = (cell.strip() for cell in row)
        for column, text in (("question", question), ("answer", answer)):
            if len(text) != box.cells and (column == "question" or text):
                parse_board(text, box, f"{where}, column '{column}'")      # raises, naming the problem
        try:
            rating_value = float(rating) if rating else None
        except ValueError:
            raise SudokuInputError(f"{where}, column 'rating': {rating!r} is not a number") from None
        rows.append((where, question, answer, rating_value))
    # Convert every board in one go; on a bad character, the per-board parser names the row and position.
    questions = _parse_many([r[1] for r in rows], box, True)
    if questions is None:
        for where, question, _, _ in rows:
            parse_board(question, box, f"{where}, column 'question'")
    answered = [r for r in rows if r[2]]
    answers = _parse_many([r[2] for r in answered], box, False)
    if answers is None:
        for where, _, answer, _ in answered:
            parse_board(answer, box, f"{where}, column 'answer'", allow_blanks=False)
    answer_of = {id(r): a for r, a in zip(answered, answers if answers is not None else [])}
    return [SudokuRecord(q, answer_of.get(id(r)), r[3], r[0]) for r, q in zip(rows, questions)]


def _parse_many(texts: list[str], box: Box, allow_blanks: bool) -> np.ndarray | None:
    """Boards of equal, checked length -> values (n, cells); None if any character is not a cell."""
    raw = np.frombuffer("".join(texts).encode("latin1", errors="replace"), dtype=np.uint8).reshape(len(texts), box.cells)
    values = _char_table(box.size, ".0" if allow_blanks else "")[raw]
    return None if (values == 255).any() else values.astype(np.int8)


_SEPARATORS = re.compile(r"[\s,;:|]+")


def _read_plain(path: Path, text: str, box: Box) -> list[SudokuRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        fields = _SEPARATORS.split(line)
        if len(fields) > 2:
            raise SudokuInputError(f"{where}: expected a puzzle and optionally its solution, got {len(fields)} fields")
        puzzle = parse_board(fields[0], box, where)
        solution = parse_board(fields[1], box, f"{where} (solution)", allow_blanks=False) if len(fields) == 2 else None
        records.append(SudokuRecord(puzzle, solution, None, where))
    return records


@dataclass
class CheckReport:
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def __str__(self) -> str:
        parts = [f"{self.kept} puzzles kept"] + [f"{count} rejected: {reason}" for reason, count in sorted(self.rejected.items())]
        return ", ".join(parts)


def take_valid(records: list[SudokuRecord], order: np.ndarray, count: int | None, box: Box, skip_invalid: bool,
               report: CheckReport, min_rating: float | None = None, exclude: set[bytes] | None = None,
               chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Walk `records` in `order`, solving each (counting to 2), and return the first `count` valid ones
    (all when count is None) as (puzzles, solutions, ratings, number of entries of `order` walked).

    A puzzle with no solution or several, or whose given answer is not its solution, is an error naming
    its line; with skip_invalid it is counted in `report` and passed over. The rating is the source's
    rating column when it has one, else the solver's branch points; puzzles rated below `min_rating` and
    puzzles equivalent to a key in `exclude` are passed over.
    NOTE: only the puzzles walked are solved, so with --subsample-size a bad line that is never drawn goes
    unreported; this keeps a 1k subsample of a 50k file fast.
    """
    kept: list[tuple[np.ndarray, np.ndarray, float]] = []
    walked = 0
    for first in range(0, len(order), chunk):
        if count is not None and len(kept) >= count:
            break
        batch = [records[i] for i in order[first:first + chunk]]
        counts, solutions, branches = solve_many(np.stack([r.puzzle for r in batch]), box, limit=2)
        for record, n_solutions, solution, effort in zip(batch, counts, solutions, branches):
            if count is not None and len(kept) >= count:
                break
            walked += 1
            if n_solutions == 0:
                problem = "no solution"
            elif n_solutions > 1:
                problem = "several solutions"
            elif record.solution is not None and not np.array_equal(record.solution, solution):
                problem = "the given answer is not the puzzle's solution"
            else:
                rating = float(record.rating if record.rating is not None else effort)
                if (min_rating is None or rating >= min_rating) and (
                        exclude is None or canonical_key(record.puzzle, box) not in exclude):
                    kept.append((record.puzzle, solution, rating))
                continue
            if not skip_invalid:
                raise SudokuInputError(f"{record.where}: {problem} (use --skip-invalid to drop such puzzles)")
            report.reject(problem)
    report.kept += len(kept)
    if not kept:
        return np.zeros((0, box.cells), np.int8), np.zeros((0, box.cells), np.int8), np.zeros(0), walked
    puzzles, solutions, ratings = zip(*kept)
    return np.stack(puzzles), np.stack(solutions), np.array(ratings), walked


# ---------------------------------------------------------------------------------------------------
# Generation

DIFFICULTY_LEVELS = {"any": (0, None), "easy": (0, 0), "medium": (1, 4), "hard": (5, None)}


def parse_difficulty(text: str) -> tuple[int, int | None]:
    """'easy' (0 branch points: singles suffice), 'medium' (1-4), 'hard' (5+), 'any', or 'MIN', 'MIN:MAX'."""
    if text in DIFFICULTY_LEVELS:
        return DIFFICULTY_LEVELS[text]
    match = re.fullmatch(r"(\d+)(?:[:-](\d*))?", text)
    if not match:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTY_LEVELS)} or MIN[:MAX] branch points, got {text!r}")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else None      # a bare number or 'MIN:' is a minimum only
    if high is not None and high < low:
        raise ValueError(f"difficulty {text!r}: maximum below minimum")
    return low, high


# Distinct puzzles with a unique solution, up to the symmetries canonical_key factors out, where that is
# countable: for 4x4, every blank mask of a representative of each of the 2 classes of solved grids, the
# unique ones kept and their canonical keys counted (4,710, the full grids included). Asking for more
# can never succeed, so it is refused at once.
DISTINCT_PUZZLES = {(2, 2): 4710}
# Generation gives up when this many puzzles in a row, each acceptable but for being equivalent to one
# already drawn, bring nothing new: the distinct puzzles left are too few, or too rare, to find.
STALL_DUPLICATES = 5000


def generate_puzzles(count: int, box: Box, rng: np.random.Generator, min_blanks: int = 0,
                     max_blanks: int | None = None, difficulty: tuple[int, int | None] = (0, None),
                     exclude: set[bytes] | None = None, max_attempts: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` puzzles with a unique solution, pairwise inequivalent and not equivalent to any key in
    `exclude` (which is updated). Each: a random solved grid, cells blanked in random order while the
    solution stays unique until a target drawn from [min_blanks, max_blanks]; kept when it has at least
    min_blanks blanks and its branch points lie in `difficulty`. Returns (puzzles, solutions, branch points).
    """
    max_blanks = box.cells if max_blanks is None else max_blanks
    if not 0 <= min_blanks <= max_blanks <= box.cells:
        raise ValueError(f"need 0 <= min_blanks <= max_blanks <= {box.cells}, got {min_blanks}, {max_blanks}")
    low, high = difficulty
    exclude = exclude if exclude is not None else set()
    board = f"{box.size}x{box.size}"
    bound = DISTINCT_PUZZLES.get((box.rows, box.cols))
    if bound is not None and len(exclude) + count > bound:
        raise ValueError(f"a {board} board has only {bound:,} distinct puzzles (up to symmetry); "
                         f"{len(exclude) + count:,} were asked for (train and test together)")
    max_attempts = max_attempts or 1000 * count + 10_000
    puzzles, solutions, ratings = [], [], []
    attempts = duplicates = 0
    while len(puzzles) < count:
        attempts += 1
        if attempts > max_attempts:
            raise RuntimeError(f"gave up after {max_attempts} attempts with {len(puzzles)} of {count} puzzles: "
                               f"blanks {min_blanks}-{max_blanks} at difficulty {low}-{high if high is not None else ''} "
                               f"is too rare (or too few inequivalent puzzles exist) for {box.size}x{box.size}")
        solution = random_solution(box, rng)
        puzzle = dig_puzzle(solution, box, rng, int(rng.integers(min_blanks, max_blanks + 1)))
        if (puzzle == 0).sum() < min_blanks:
            continue
        counts, _, branches = solve_many(puzzle[None], box, limit=2)
        assert counts[0] == 1
        if branches[0] < low or (high is not None and branches[0] > high):
            continue
        key = canonical_key(puzzle, box)
        if key in exclude:
            duplicates += 1
            if duplicates >= STALL_DUPLICATES:
                raise RuntimeError(f"found only {len(exclude):,} distinct {board} puzzles (up to symmetry) of the "
                                   f"{len(exclude) - len(puzzles) + count:,} needed: the last {duplicates:,} were all "
                                   f"repeats, so too few exist with these settings; ask for fewer")
            continue
        duplicates = 0
        exclude.add(key)
        puzzles.append(puzzle)
        solutions.append(solution)
        ratings.append(int(branches[0]))
    return np.array(puzzles, np.int8).reshape(-1, box.cells), np.array(solutions, np.int8).reshape(-1, box.cells), np.array(ratings)


# ---------------------------------------------------------------------------------------------------
# Building

def write_sudoku_dataset(output_dir: str | Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                         box: Box, num_aug: int, seed: int, builder_args: dict[str, Any]) -> Path:
    """Write the dataset: each train puzzle a group of itself plus num_aug transforms; test unaugmented."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5D0C]))
    with DatasetWriter(output_dir, builder="sudoku", arguments=builder_args, seed=seed) as writer:
        split = writer.split("train", seq_len=box.cells)
        for puzzle, solution in zip(*train):
            puzzles, solutions = augment(puzzle, solution, box, num_aug, rng)
            split.add_group(encode_board(puzzles), encode_board(solutions), np.ones(len(puzzles), int), np.zeros(len(puzzles), int))
        split = writer.split("test", seq_len=box.cells)
        for puzzle, solution in zip(*test):
            split.add_group(encode_board(puzzle[None]), encode_board(solution[None]), [1], [0])
        return writer.commit([BLANK_IDENTIFIER], pad_id=PAD_ID, ignore_label_id=0, blank_identifier_id=0,
                             vocab_size=vocab_size(box))


def build_from_files(output_dir: str | Path, inputs: Iterable[str | Path], test_inputs: Iterable[str | Path] = (),
                     box: Box = Box(), test_size: int | None = None, subsample_size: int | None = None,
                     num_aug: int = 0, min_difficulty: float | None = None, skip_invalid: bool = False,
                     seed: int = 0, builder_args: dict[str, Any] | None = None, log=print) -> Path:
    """Import CSV / plain-list sources, check the puzzles, and write the dataset.

    The test split is every puzzle of `test_inputs` when given, else `test_size` puzzles (default: a
    tenth) drawn from `inputs`, and then training never holds a puzzle equivalent to a test one;
    `subsample_size` draws the training puzzles (seeded, without replacement); `min_difficulty` keeps
    puzzles rated at least that, in both splits, as the original.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5D0D]))
    report = CheckReport()
    inputs, test_inputs = list(inputs), list(test_inputs)
    if not inputs:
        raise SudokuInputError("no --input files given")
    pool = [record for path in inputs for record in read_sudoku_file(path, box)]
    order = rng.permutation(len(pool))
    if test_inputs:
        test_pool = [record for path in test_inputs for record in read_sudoku_file(path, box)]
        test = take_valid(test_pool, np.arange(len(test_pool)), None, box, skip_invalid, report, min_difficulty)[:3]
    else:
        size = max(1, len(pool) // 10) if test_size is None else test_size
        *test, walked = take_valid(pool, order, size, box, skip_invalid, report, min_difficulty)
        test_keys = {canonical_key(p, box) for p in test[0]}
        order = order[walked:]
    train = take_valid(pool, order, subsample_size, box, skip_invalid, report, min_difficulty,
                       exclude=None if test_inputs else test_keys)[:3]
    if len(train[0]) == 0 or len(test[0]) == 0:
        raise SudokuInputError(f"nothing to build: {len(train[0])} training and {len(test[0])} test puzzles ({report})")
    log(f"sudoku {box.size}x{box.size}: {report}; {len(train[0])} train x {1 + num_aug} versions, {len(test[0])} test")
    return write_sudoku_dataset(output_dir, train[:2], test[:2], box, num_aug, seed, builder_args or {})


def build_generated_dataset(output_dir: str | Path, n_train: int, n_test: int, box: Box | tuple[int, int] | str = (3, 3),
                            min_blanks: int = 0, max_blanks: int | None = None, difficulty: str | tuple = "any",
                            num_aug: int = 0, seed: int = 0, builder_args: dict[str, Any] | None = None,
                            log=print) -> Path:
    """Generate n_train + n_test puzzles with unique solutions and write a dataset.

    No two puzzles are equivalent under the augmentation symmetries (for boards up to 6x6 exactly; for
    9x9 up to digit relabelling), so every test puzzle differs from every training puzzle and from all of
    their augmentations.
    """
    box = Box.parse(box)
    difficulty = parse_difficulty(difficulty) if isinstance(difficulty, str) else tuple(difficulty)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5D0E]))
    seen: set[bytes] = set()
    test = generate_puzzles(n_test, box, rng, min_blanks, max_blanks, difficulty, seen)
    train = generate_puzzles(n_train, box, rng, min_blanks, max_blanks, difficulty, seen)
    args = dict(builder_args or {}, generate=n_train, test_size=n_test, box=str(box), min_blanks=min_blanks,
                max_blanks=max_blanks, difficulty=list(difficulty), num_aug=num_aug)
    log(f"sudoku {box.size}x{box.size}: generated {n_train} train x {1 + num_aug} versions and {n_test} test puzzles")
    return write_sudoku_dataset(output_dir, train[:2], test[:2], box, num_aug, seed, args)
