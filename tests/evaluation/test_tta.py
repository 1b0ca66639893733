"""Test-time augmentation: versions undo exactly, keep Sudoku solutions valid, map back as breadth, and voting
picks the majority."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.evaluation import tta
from hrm.evaluation.voting import rank
from hrm.puzzles import ARC, MAZE, SUDOKU

SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def sudoku_valid(values: np.ndarray, n: int = 9, r: int = 3, c: int = 3) -> bool:
    board = values.reshape(n, n)
    digits = set(range(1, n + 1))
    rows = all(set(row) == digits for row in board)
    cols = all(set(col) == digits for col in board.T)
    boxes = all(set(board[i:i + r, j:j + c].reshape(-1)) == digits for i in range(0, n, r) for j in range(0, n, c))
    return rows and cols and boxes


def tokens_of(solution: str) -> np.ndarray:
    return np.array([int(ch) + 1 for ch in solution])[None]            # value + 1, as the datasets


@pytest.mark.parametrize("box,side", [(None, 9), ("2x3", 6)])
def test_sudoku_versions_round_trip_and_stay_valid(box, side):
    from hrm.data.sudoku import random_solution
    from hrm.data.sudoku_solver import Box

    shape = Box.parse(box) if box else Box()
    solution = random_solution(shape, np.random.default_rng(0)).reshape(1, -1).astype(np.int64) + 1
    puzzle = solution.copy()
    puzzle[0, ::3] = 1                                                   # blanks
    augmenter = SUDOKU.augmenter(side * side, side + 2, box)
    mappings, token_maps = tta.draw_versions(augmenter, np.array([0]), 20, seed=1)
    seen = set()
    for mapping, token_map in zip(mappings, token_maps):
        version = tta.apply(solution, mapping, token_map)
        assert sudoku_valid(version[0] - 1, side, shape.rows, shape.cols)
        assert np.array_equal(tta.invert(version, mapping, token_map), solution)
        blanks = tta.apply(puzzle, mapping, token_map)
        assert (blanks == 1).sum() == (puzzle == 1).sum()                # blanks stay blanks
        assert np.array_equal(tta.invert(blanks, mapping, token_map), puzzle)
        seen.add(version.tobytes())
    assert len(seen) > 15                                                # they really differ


def test_maze_versions_are_non_identity_dihedral_and_round_trip():
    rng = np.random.default_rng(0)
    maze = rng.integers(1, 6, size=(3, 16))
    maze[:, 0] = -100                                                    # ignored labels stay ignored
    augmenter = MAZE.augmenter(16, 6)
    mappings, token_maps = tta.draw_versions(augmenter, np.array([5, 6, 7]), 7, seed=0)
    for mapping, token_map in zip(mappings, token_maps):
        assert not (mapping == np.arange(16)).all(axis=1).any()
        version = tta.apply(maze, mapping, token_map)
        assert (version == -100).sum() == 3
        assert np.array_equal(tta.invert(version, mapping, token_map), maze)


def test_versions_depend_on_the_example_not_the_batch():
    augmenter = SUDOKU.augmenter(81, 11)
    alone, _ = tta.draw_versions(augmenter, np.array([42]), 3, seed=7)
    batched, _ = tta.draw_versions(augmenter, np.array([3, 42, 9]), 3, seed=7)
    assert np.array_equal(alone[:, 0], batched[:, 1])


def test_augmenter_rejects_other_tasks():
    with pytest.raises(ValueError, match="ARC datasets carry"):
        ARC.augmenter(900, 12)
    with pytest.raises(ValueError, match="does not fit"):
        SUDOKU.augmenter(81, 11, "2x3")


def test_voting_ranks_by_count_then_confidence_then_first_seen():
    votes = [("a", "A", 1.0), ("b", "B", 1.0), ("a", "A", -1.0), ("c", "C", 5.0), ("b", "B", -1.0), ("d", "D", 5.0),
             ("e", "E", 4.0), ("e", "E", 4.0)]
    ranked = rank(votes)
    # e, a and b have two votes each: e is the most confident; a and b tie exactly (same votes, same
    # mean confidence) and keep first-seen order. c and d tie at one vote and sigmoid(5): c was seen first.
    assert [c.key for c in ranked] == ["e", "a", "b", "c", "d"]
    assert ranked[1].votes == 2 and ranked[1].confidence == pytest.approx(0.5)
    ranked = rank([("x", "X", -2.0), ("y", "Y", 2.0)])
    assert [c.key for c in ranked] == ["y", "x"]                         # one vote each: confidence decides


def test_logits_map_back_with_the_answers():
    """The logits of a version, mapped back, put each cell's scores in the original cell and token order: their
    argmax is the mapped-back answer."""
    augmenter = SUDOKU.augmenter(36, 8, "2x3")
    mappings, token_maps = tta.draw_versions(augmenter, np.arange(3), 2, seed=4)
    rng = np.random.default_rng(1)
    for mapping, token_map in zip(mappings, token_maps):
        logits = rng.normal(size=(3, 36, 8)).astype(np.float32)
        back = tta.invert_logits(logits, mapping, token_map)
        assert np.array_equal(back.argmax(-1), tta.invert(logits.argmax(-1), mapping, token_map))
        assert np.array_equal(np.sort(back, axis=-1), np.sort(logits[np.arange(3)[:, None], np.argsort(mapping)], -1))


def test_augmented_breadth_maps_every_trajectory_back_and_selects():
    """A scripted model answers each version of a puzzle in that version's frame: right (in the original
    frame) in 3 of 5 versions, a different wrong answer in each of the others, with the Q head most confident
    on one wrong version. Breadth over the 5 versions (tta=5) must undo every transform, keep every
    trajectory's answer in the original frame, and pick the majority by vote and the confident one by q."""
    from types import SimpleNamespace

    import torch

    from hrm.act_driver import ACTResult
    from hrm.evaluation.breadth import breadth_runner

    side, vocab, versions, seed = 6, 8, 5, 7
    augmenter = SUDOKU.augmenter(side * side, vocab, "2x3")
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, vocab, size=(2, side * side))
    right = rng.integers(2, vocab, size=(2, side * side))
    indices = np.array([10, 11])
    mapping, token_map = tta.trajectory_frames(augmenter, indices, versions, 1, seed, side * side)
    assert np.array_equal(mapping[::versions], np.tile(np.arange(side * side), (2, 1)))        # version 0: itself
    answers, confident = {}, {}                        # a trajectory's inputs (its frame) -> answer, q_halt
    for row in range(2 * versions):
        b, v = divmod(row, versions)
        final = right[b] if v in (1, 2, 4) else np.roll(right[b], v + 1)
        seen = tta.apply(inputs[b:b + 1], mapping[row:row + 1], token_map[row:row + 1])
        answers[seen.tobytes()] = tta.apply(final[None], mapping[row:row + 1], token_map[row:row + 1])[0]
        confident[seen.tobytes()] = 3.0 if v == 3 else 0.0

    def inner(batch, save_steps):
        rows = batch["inputs"].numpy().astype(inputs.dtype)
        final = np.stack([answers[r[None].tobytes()] for r in rows])
        q = np.array([confident[r[None].tobytes()] for r in rows], np.float32)
        logits = np.eye(vocab, dtype=np.float32)[final]
        B = len(rows)
        return ACTResult(predictions=final, logits=logits, q_halt=q, q_continue=np.zeros(B, np.float32),
                         steps=np.full(B, 3, np.int32), q_halt_step=np.full(B, 3, np.int32),
                         q_halt_predictions=final, q_halt_q=q)

    batch = {"inputs": torch.from_numpy(inputs.astype(np.int32)), "labels": torch.from_numpy(right.astype(np.int32)),
             "puzzle_identifiers": torch.zeros(2, dtype=torch.int32),
             "example_indices": torch.from_numpy(indices)}
    head = SimpleNamespace(model=None)
    voted = breadth_runner(head, 1, select_by="vote", seed=seed, augmenter=augmenter, versions=versions,
                           inner=inner)(batch, False)
    assert np.array_equal(voted.predictions, right)                        # the 3 right versions outvote the rest
    assert np.array_equal(voted.logits.argmax(-1), right)                  # the logits mapped back as well
    assert voted.sample_predictions.shape == (2, versions, side * side)
    assert [np.array_equal(a, r) for a, r in zip(voted.sample_predictions[0], [right[0]] * versions)] == \
        [False, True, True, False, True]
    by_q = breadth_runner(head, 1, select_by="q", seed=seed, augmenter=augmenter, versions=versions,
                          inner=inner)(batch, False)
    assert np.array_equal(by_q.predictions, np.roll(right, 4, axis=1))      # version 3's answer, mapped back
