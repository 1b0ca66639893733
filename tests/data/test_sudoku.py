"""Sudoku: the solver, readers, generator (general boxes), augmentation and the builder."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from hrm.data import sudoku
from hrm.data.sudoku import SudokuInputError, canonical_key, parse_board
from hrm.data.sudoku_solver import Box, solve, solve_many

from reference_helpers import REPO, require_shared

HARDEST = "data/sudoku/tdoku-forum-hardest-1905-11plus/puzzles.csv"


def is_valid_solution(values: np.ndarray, box: Box) -> bool:
    n = box.size
    grid = values.reshape(n, n)
    units = [grid[r] for r in range(n)] + [grid[:, c] for c in range(n)]
    units += [grid[b * box.rows:(b + 1) * box.rows, s * box.cols:(s + 1) * box.cols].reshape(-1)
              for b in range(n // box.rows) for s in range(n // box.cols)]
    return all(sorted(unit.tolist()) == list(range(1, n + 1)) for unit in units)


def test_solver_matches_the_shared_hardest_answers_and_ratings():
    records = sudoku.read_sudoku_file(require_shared(HARDEST))[:300]
    counts, solutions, branches = solve_many(np.stack([r.puzzle for r in records]))
    assert (counts == 1).all()
    assert all(np.array_equal(s, r.solution) for s, r in zip(solutions, records))
    # The shared rating is the branch count of the same search (naked + hidden singles, MRV).
    assert [int(b) for b in branches] == [int(r.rating) for r in records]
    assert branches.min() > 0, "these puzzles need search"


def test_solver_counts_none_and_several():
    puzzle = parse_board("11" + "." * 79)
    assert solve(puzzle).count == 0
    unique = sudoku.read_sudoku_file(require_shared(HARDEST))[0]
    loose = unique.puzzle.copy()
    loose[np.flatnonzero(loose)[:6]] = 0
    assert solve(loose).count == 2
    empty6 = solve(np.zeros(36, np.int8), Box(2, 3), limit=1)
    assert empty6.count == 1 and is_valid_solution(empty6.solution, Box(2, 3))


def test_readers_report_file_line_and_position(tmp_path):
    good = sudoku.read_sudoku_file(require_shared(HARDEST))[0]
    q, a = sudoku.board_to_string(good.puzzle), sudoku.board_to_string(good.solution)
    plain = tmp_path / "list.txt"
    plain.write_text(f"# comment\n{q}\n{q.replace('.', '0')} {a}\n")
    records = sudoku.read_sudoku_file(plain)
    assert len(records) == 2 and records[1].solution is not None and records[1].where.endswith(":3")
    plain.write_text(f"{q}\n{q[:40]}x{q[41:]}\n")
    with pytest.raises(SudokuInputError, match=r"list.txt:2, character 41: 'x'"):
        sudoku.read_sudoku_file(plain)
    plain.write_text(q[:80] + "\n")
    with pytest.raises(SudokuInputError, match=r"list.txt:1: expected 81 characters"):
        sudoku.read_sudoku_file(plain)
    table = tmp_path / "bad.csv"
    table.write_text("source,question,answer,rating\nx," + q + "," + a + "\n")
    with pytest.raises(SudokuInputError, match=r"bad.csv:2: expected 4 columns"):
        sudoku.read_sudoku_file(table)
    table.write_text("source,q,a,rating\n")
    with pytest.raises(SudokuInputError, match=r"bad.csv:1: expected the header"):
        sudoku.read_sudoku_file(table)
    with pytest.raises(SudokuInputError, match="file not found"):
        sudoku.read_sudoku_file(tmp_path / "missing.csv")


def test_invalid_puzzles_fail_with_line_or_are_skipped(tmp_path):
    good = sudoku.read_sudoku_file(require_shared(HARDEST))[:12]
    lines = [sudoku.board_to_string(r.puzzle) for r in good]
    lines[3] = "11" + lines[3][2:]                          # no solution
    lines[7] = "." * 81                                      # several
    source = tmp_path / "p.txt"
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(SudokuInputError, match=r"p.txt:4: no solution"):
        sudoku.build_from_files(tmp_path / "out", [source], test_size=2, log=lambda *_: None)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    messages = []
    sudoku.build_from_files(tmp_path / "out", [source], test_size=2, skip_invalid=True, log=messages.append)
    assert "1 rejected: no solution" in messages[0] and "1 rejected: several solutions" in messages[0]


@pytest.mark.parametrize("box", [Box(2, 2), Box(2, 3), Box(3, 3)])
def test_augmentation_keeps_puzzles_valid_and_equivalent(box):
    rng = np.random.default_rng(0)
    (puzzle,), (solution,), _ = sudoku.generate_puzzles(1, box, rng)
    puzzles, solutions = sudoku.augment(puzzle, solution, box, 40, rng)
    assert np.array_equal(puzzles[0], puzzle) and np.array_equal(solutions[0], solution)
    counts, solved, _ = solve_many(puzzles, box)
    assert (counts == 1).all() and np.array_equal(solved, solutions)
    assert all(is_valid_solution(s, box) for s in solutions)
    assert ((puzzles == 0) == (puzzles == 0)).all() and ((puzzles == 0).sum(1) == (puzzle == 0).sum()).all()
    if box.size <= 6:                                       # the canonical form is exact up to 6x6
        assert len({canonical_key(p, box) for p in puzzles}) == 1
    assert len({p.tobytes() for p in puzzles}) > 30


def test_generated_6x6_dataset_for_the_demo(tmp_path):
    out = sudoku.build_generated_dataset(tmp_path / "s6", n_train=60, n_test=20, box=(2, 3), min_blanks=14,
                                         max_blanks=24, num_aug=5, seed=1, log=lambda *_: None)
    box = Box(2, 3)
    train_in = np.load(out / "train" / "all__inputs.npy")
    test_in = np.load(out / "test" / "all__inputs.npy")
    test_labels = np.load(out / "test" / "all__labels.npy")
    assert train_in.shape == (60 * 6, 36) and test_in.shape == (20, 36)
    blanks = (test_in == 1).sum(1)
    assert blanks.min() >= 14 and blanks.max() <= 24
    counts, solved, _ = solve_many(sudoku.decode_tokens(test_in), box)
    assert (counts == 1).all() and np.array_equal(sudoku.encode_board(solved), test_labels)
    train_keys = {canonical_key(sudoku.decode_tokens(row), box) for row in train_in}
    assert not train_keys & {canonical_key(sudoku.decode_tokens(row), box) for row in test_in}
    # A second build gives identical bytes.
    again = sudoku.build_generated_dataset(tmp_path / "s6b", n_train=60, n_test=20, box=(2, 3), min_blanks=14,
                                           max_blanks=24, num_aug=5, seed=1, log=lambda *_: None)
    for path in out.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(out)).read_bytes(), path


def test_generator_makes_puzzles_that_need_search():
    _, _, branches = sudoku.generate_puzzles(3, Box(3, 3), np.random.default_rng(5), difficulty=sudoku.parse_difficulty("hard"))
    assert (branches >= 5).all()
    assert sudoku.parse_difficulty("2:7") == (2, 7) and sudoku.parse_difficulty("3") == (3, None)


@pytest.mark.parametrize("name", ["tdoku-17-clue", "tdoku-forum-hardest-1905-11plus", "tdoku-magictour-top1465"])
def test_build_from_every_shared_sudoku_collection(tmp_path, name):
    source = require_shared(f"data/sudoku/{name}/puzzles.csv")
    out = sudoku.build_from_files(tmp_path / "d", [source], test_size=10, subsample_size=30, num_aug=3,
                                  seed=2, log=lambda *_: None)
    inputs = np.load(out / "train" / "all__inputs.npy")
    labels = np.load(out / "train" / "all__labels.npy")
    assert inputs.shape == (30 * 4, 81) and inputs.dtype == np.uint8
    assert inputs.min() >= 1 and inputs.max() <= 10 and labels.min() >= 2 and labels.max() <= 10
    counts, solved, _ = solve_many(sudoku.decode_tokens(inputs))
    assert (counts == 1).all() and np.array_equal(sudoku.encode_board(solved), labels)
    train_keys = {canonical_key(sudoku.decode_tokens(r), Box()) for r in inputs[::4]}
    test_keys = {canonical_key(sudoku.decode_tokens(r), Box()) for r in np.load(out / "test" / "all__inputs.npy")}
    assert not train_keys & test_keys


def test_malformed_csv_names_the_line(tmp_path):
    table = tmp_path / "q.csv"
    table.write_text('source,question,answer,rating\nx,"' + "." * 81 + '\0,,0\n')
    with pytest.raises(SudokuInputError, match=r"q.csv:2"):
        sudoku.read_sudoku_file(table)


def test_without_numba_the_same_code_solves_as_python(tmp_path):
    """The kernels run as plain Python when numba is absent (NUMBA_DISABLE_JIT runs exactly that path)."""
    source = require_shared("data/sudoku/tdoku-magictour-top1465/puzzles.csv")
    script = ("import sys, numpy as np; from hrm.data import sudoku; from hrm.data.sudoku_solver import solve_many; "
              "r = sudoku.read_sudoku_file(sys.argv[1])[:2]; c, s, b = solve_many(np.stack([x.puzzle for x in r])); "
              "assert (c == 1).all() and all((s[i] == r[i].solution).all() for i in range(2)); "
              "assert [int(v) for v in b] == [int(x.rating) for x in r], (b, [x.rating for x in r]); print('ok')")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", script, str(source)], env=env, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
