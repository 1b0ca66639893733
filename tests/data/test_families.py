"""The puzzle families (hrm.puzzles): encode/decode round trips, drawing, checking right and wrong answers,
test-time transforms that undo exactly, and detection from the sizes."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.puzzles import ARC, FAMILIES, MAZE, SUDOKU, PuzzleError, apply, detect, invert, read_puzzle

SUDOKU_4 = "1234341221434321"           # a solved 4x4 board (boxes 2x2)
SUDOKU_4_PUZZLE = ".2343.1221.3432."
MAZE_5 = ["#####", "#S  #", "### #", "#G  #", "#####"]
ARC_TASK = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3, 4], [5, 6]], "output": [[4, 3], [6, 5]]}]}


def test_the_registry_holds_the_three_families_and_torch_is_not_needed():
    import subprocess
    import sys

    assert list(FAMILIES) == ["arc", "sudoku", "maze"]
    code = "import sys, hrm.puzzles; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("seq_len, vocab, family", [(81, 11, SUDOKU), (36, 8, SUDOKU), (16, 6, SUDOKU),
                                                    (900, 6, MAZE), (25, 6, MAZE), (900, 12, ARC), (50, 7, None)])
def test_detect_from_the_sizes(seq_len, vocab, family):
    assert detect(seq_len, vocab) is family
    if family is not None:
        assert family.fits(seq_len, vocab) and detect(seq_len, vocab, family.name + "-built") is family


# -- Sudoku ------------------------------------------------------------------------------------------

def test_sudoku_encode_decode_draw():
    tokens = SUDOKU.encode(SUDOKU_4_PUZZLE)
    assert tokens.tolist()[:4] == [1, 3, 4, 5]                   # digit d -> d + 1, blank 1
    rows = SUDOKU.decode(tokens)
    assert rows == [".234", "3.12", "21.3", "432."] and np.array_equal(SUDOKU.encode(rows), tokens)
    drawing = SUDOKU.draw(rows, "2x2")
    assert drawing.splitlines()[0] == "+-----+-----+" and "| . 2 | 3 4 |" in drawing


def test_sudoku_check_right_and_wrong_answers():
    puzzle = read_puzzle(SUDOKU_4_PUZZLE, SUDOKU, 16, "2x2")
    right = SUDOKU.check(puzzle, SUDOKU.encode(SUDOKU_4))
    assert right["valid"] and right["matches_solver"] and "matches the unique solution" in right["message"]
    wrong = SUDOKU.check(puzzle, SUDOKU.encode("1234341221434312"))
    assert not wrong["valid"] and "NOT valid" in wrong["message"]
    changed = SUDOKU.check(puzzle, SUDOKU.encode("2134341212434321"))
    assert not changed["valid"] and "a given was changed" in changed["message"]


def test_sudoku_read_refuses_what_it_cannot_solve():
    with pytest.raises(PuzzleError, match="row 1 holds the digit 1 more than once"):
        SUDOKU.read("11..............", 16, "2x2")
    with pytest.raises(PuzzleError, match="this model solves 4x4 boards"):
        SUDOKU.read("1.3", 16, "2x2")
    with pytest.raises(PuzzleError, match="looks like a maze"):
        read_puzzle("\n".join(MAZE_5), SUDOKU, 16)


def test_sudoku_versions_undo_exactly_and_stay_solutions():
    solution = SUDOKU.encode(SUDOKU_4)[None].astype(np.int64)
    augmenter = SUDOKU.augmenter(16, 6, "2x2")
    mapping, token_map = augmenter.draw(np.random.default_rng(0), 8)
    puzzle = read_puzzle(SUDOKU_4.replace("1", ".", 1), SUDOKU, 16, "2x2")
    for m, t in zip(mapping, token_map):
        version = apply(solution, m[None], t[None])
        assert np.array_equal(invert(version, m[None], t[None]), solution)
        assert SUDOKU.check(read_puzzle("." * 16, SUDOKU, 16, "2x2"), version[0])["valid"]
    assert SUDOKU.check(puzzle, solution[0])["valid"]


# -- Mazes -------------------------------------------------------------------------------------------

def test_maze_encode_decode_draw_and_check():
    tokens = MAZE.encode(MAZE_5)
    assert MAZE.decode(tokens) == MAZE_5 and MAZE.draw(MAZE_5) == "\n".join(MAZE_5)
    puzzle = read_puzzle("\n".join(MAZE_5), MAZE, 25)
    from hrm.data.maze import solve_maze
    label, _ = solve_maze(tokens.astype(np.uint8))
    right = MAZE.check(puzzle, label)
    assert right["valid"] and "shortest path" in right["message"]
    wrong = MAZE.check(puzzle, tokens)                           # no path marked
    assert not wrong["valid"] and "NOT correct" in wrong["message"]


def test_maze_versions_undo_exactly():
    tokens = MAZE.encode(MAZE_5)[None].astype(np.int64)
    mapping, token_map = MAZE.augmenter(25, 6).draw(np.random.default_rng(1), 7)
    assert not (mapping == np.arange(25)).all(axis=1).any()       # never the identity
    for m, t in zip(mapping, token_map):
        assert np.array_equal(invert(apply(tokens, m[None], t[None]), m[None], t[None]), tokens)


# -- ARC ---------------------------------------------------------------------------------------------

def test_arc_encode_decode_draw_and_check():
    grid = [[3, 4], [5, 6]]
    tokens = ARC.encode(grid)
    assert tokens.shape == (900,) and ARC.decode(tokens) == grid
    assert ARC.draw(grid) == "34\n56" and ARC.draw([[]]) == "(empty grid)"
    puzzle = read_puzzle(ARC_TASK, ARC, 900)
    assert ARC.check(puzzle, np.array([[4, 3], [6, 5]]))["valid"]
    assert not ARC.check(puzzle, np.array([[3, 4], [5, 6]]))["valid"]
    assert ARC.check(read_puzzle({"test": [{"input": grid}]}, ARC, 900), np.array(grid)) == {}


def test_arc_has_no_test_time_transforms_but_its_versions_undo_exactly():
    from hrm.data.arc import aug_name

    with pytest.raises(ValueError, match="ARC datasets carry"):
        ARC.augmenter(900, 12)
    grid = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    for tid in range(8):
        name = aug_name("task", tid, np.random.default_rng(tid).permutation(10))
        assert np.array_equal(ARC.unversion(name, ARC.version(grid, name)), grid)


@pytest.mark.parametrize("family", list(FAMILIES.values()))
def test_every_family_has_a_style_for_its_sizes(family):
    seq_len, vocab = {"sudoku": (16, 6), "maze": (25, 6), "arc": (900, 12)}[family.name]
    style = family.style(seq_len, vocab)
    assert style.task == family.name and all(t in style.tokens for t in range(vocab))
