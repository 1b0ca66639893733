"""Test-time augmentation: versions undo exactly, keep Sudoku solutions valid, and voting picks the majority."""
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


def test_vote_batch_maps_every_version_back_and_keeps_the_majority():
    """A scripted model answers each version of a row in that version's frame: at the last step right in 3 of
    5 versions (a different wrong answer in the others), at the Q-halt step one common wrong answer in those
    3 versions. The vote must undo every transform and keep the majority of the answers it is asked for."""
    import torch

    from hrm.act_driver import ACTResult

    side, vocab, versions, seed = 4, 6, 5, 7
    augmenter = MAZE.augmenter(side * side, vocab)
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, vocab, size=(2, side * side))
    right = rng.integers(1, vocab, size=(2, side * side))
    common_wrong = np.roll(right, 1, axis=1)
    indices = np.array([10, 11])
    mappings, token_maps = tta.draw_versions(augmenter, indices, versions - 1, seed)

    def in_frame(tokens, v):                       # tokens of the original frame, seen in version v's frame
        return tokens if v == 0 else tta.apply(tokens, mappings[v - 1], token_maps[v - 1])

    script = {}                                     # version inputs -> (last-step answer, Q-halt answer)
    for v in range(versions):
        majority = v in (1, 2, 3)
        final = right if majority else np.roll(right, v + 2, axis=1)
        q_halted = common_wrong if majority else right
        script[in_frame(inputs, v).tobytes()] = (in_frame(final, v), in_frame(q_halted, v))

    def result(version_inputs, q):
        final, q_halted = script[version_inputs.tobytes()]
        B = len(final)
        return ACTResult(predictions=final, logits=np.zeros(final.shape + (vocab,), np.float32), q_halt=q,
                         q_continue=np.zeros(B, np.float32), steps=np.full(B, 3, np.int32),
                         q_halt_step=np.full(B, 2, np.int32), q_halt_predictions=q_halted, q_halt_q=q)

    calls = []

    def run(batch):
        calls.append(batch["inputs"])
        return result(batch["inputs"].numpy().astype(inputs.dtype), np.full(2, 0.5, np.float32))

    batch = {"inputs": torch.from_numpy(inputs.astype(np.int32)), "labels": torch.from_numpy(right.astype(np.int32)),
             "puzzle_identifiers": torch.zeros(2, dtype=torch.int32)}
    first = result(inputs, np.full(2, 0.9, np.float32))
    voted = tta.vote_batch(run, batch, first, augmenter, indices, versions, seed)
    assert len(calls) == versions - 1                    # the original (`first`) is not run again
    assert np.array_equal(voted, right)
    voted_q = tta.vote_batch(run, batch, first, augmenter, indices, versions, seed, use_q_halt=True)
    assert np.array_equal(voted_q, common_wrong)
