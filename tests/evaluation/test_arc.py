"""ARC scoring: de-augmentation round trips, voting with ties, pass@k both ways, the Kaggle submission."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.data.arc import apply_aug, aug_name, crop, grid_to_seq, inverse_aug
from hrm.evaluation import arc

IDENTITY = np.arange(10, dtype=np.uint8)
SWAP = np.array([0, 2, 1, 3, 4, 5, 6, 7, 8, 9], dtype=np.uint8)          # colours 1 and 2 exchanged


@pytest.mark.parametrize("tid", range(8))
def test_inverse_augmentation_round_trips_through_the_canvas(tid):
    rng = np.random.default_rng(tid)
    grid = rng.integers(0, 10, size=(3, 5)).astype(np.uint8)
    colours = np.concatenate([[0], 1 + rng.permutation(9)]).astype(np.uint8)
    name = aug_name("task", tid, colours)
    seen_by_model = grid_to_seq(apply_aug(grid, tid, colours))
    assert np.array_equal(inverse_aug(name, crop(seen_by_model)), grid)


def g(*rows):
    return np.array(rows, dtype=np.uint8)


A, LA, X = g([1, 2], [3, 4]), g([4, 3], [2, 1]), g([1, 1], [1, 1])
B, LB, Y, Z = g([5, 6, 7]), g([7, 6, 5]), g([0, 0, 0]), g([9, 9, 9])
C, LC, W = g([1], [2]), g([2], [1]), g([3], [3])
VERSIONS = [("t1", 0, IDENTITY), ("t1_t1_0123456789", 1, IDENTITY), ("t1_t4_0213456789", 4, SWAP),
            ("t1_t6_0123456789", 6, IDENTITY)]


def build_rows():
    """Rows as the test split holds them, with predictions made in each version's frame.

    t1, input A (label LA): X (q 1), LA (q 1), X (q -3), LA (q -3): two votes each, equal mean confidence:
        the tie keeps first-seen order, so X ranks first and LA second.
    t1, input B (label LB): Z (q -5), LB (q 3), Y (q 0), Z (q -5): Z has two votes; LB beats Y on confidence.
    t2, input C (label LC): three versions say LC, one says W.
    """
    identifiers = ["<blank>"] + [v[0] for v in VERSIONS] + ["t2", "t2_t2_0213456789", "t2_t3_0123456789",
                                                          "t2_t5_0123456789"]
    rows = []
    answers_a, q_a = [X, LA, X, LA], [1.0, 1.0, -3.0, -3.0]
    answers_b, q_b = [Z, LB, Y, Z], [-5.0, 3.0, 0.0, -5.0]
    for v, (name, tid, colours) in enumerate(VERSIONS):
        for grid, label, answer, q in ((A, LA, answers_a[v], q_a[v]), (B, LB, answers_b[v], q_b[v])):
            rows.append((identifiers.index(name), tid, colours, grid, label, answer, q))
    t2_versions = [("t2", 0, IDENTITY), ("t2_t2_0213456789", 2, SWAP), ("t2_t3_0123456789", 3, IDENTITY),
                   ("t2_t5_0123456789", 5, IDENTITY)]
    for v, (name, tid, colours) in enumerate(t2_versions):
        rows.append((identifiers.index(name), tid, colours, C, LC, W if v == 2 else LC, 0.5))
    # A stray row: its de-augmented input is no test input of t1.
    rows.append((identifiers.index("t1_t1_0123456789"), 1, IDENTITY, g([8, 8]), g([8, 8]), g([8, 8]), 9.0))

    def seq(grid, tid, colours, labels=False):
        s = grid_to_seq(apply_aug(grid, tid, colours)).astype(np.int32)
        return np.where(s == 0, -100, s) if labels else s       # labels ignore PAD, as the loader makes them

    inputs = np.stack([seq(r[3], r[1], r[2]) for r in rows])
    labels = np.stack([seq(r[4], r[1], r[2], labels=True) for r in rows])
    predictions = np.stack([seq(r[5], r[1], r[2]) for r in rows])
    ids = np.array([r[0] for r in rows], dtype=np.int32)
    q = np.array([r[6] for r in rows], dtype=np.float32)
    return inputs, labels, ids, predictions, q, identifiers


def test_voting_with_ties_and_pass_at_k_task_level_and_per_test_input():
    inputs, labels, ids, predictions, q, identifiers = build_rows()
    results = arc.score(inputs, labels, ids, predictions, q, identifiers, ks=(1, 2))
    assert list(results.tasks) == ["t1", "t2"]
    a, b = results.tasks["t1"]
    assert [c.votes for c in a.candidates] == [2, 2]
    assert np.array_equal(a.candidates[0].answer, X) and np.array_equal(a.candidates[1].answer, LA)   # first seen wins the tie
    assert a.candidates[0].confidence == pytest.approx(a.candidates[1].confidence)
    assert [(c.votes, c.answer.tolist()) for c in b.candidates] == [(2, Z.tolist()), (1, LB.tolist()), (1, Y.tolist())]
    assert a.label_rank() == 2 and b.label_rank() == 2 and results.tasks["t2"][0].label_rank() == 1
    assert results.stray_votes == 1 and results.versions == len(ids) - 1

    assert results.task_pass_at(1) == pytest.approx(1 / 2)        # t2 only: t1 needs both inputs
    assert results.task_pass_at(2) == pytest.approx(1.0)
    assert results.test_input_pass_at(1) == pytest.approx(1 / 3)
    assert results.test_input_pass_at(2) == pytest.approx(1.0)
    summary = results.summary()
    assert summary["task_pass_at_k"] == {"1": 0.5, "2": 1.0} and summary["test_inputs"] == 3
    per_task = results.per_task()
    assert per_task["t1"]["solved_at_k"] == {"1": False, "2": True}
    assert per_task["t1"]["test_inputs"][0]["top"][1]["correct"] is True


def test_two_identical_test_inputs_of_a_task_share_their_votes():
    """Once augmented, two equal test inputs of one task are indistinguishable: both get every vote."""
    identifiers = ["<blank>", "t3", "t3_t1_0123456789", "t3_t4_0213456789"]
    versions = [(1, 0, IDENTITY), (2, 1, IDENTITY), (3, 4, SWAP)]
    rows = []
    for vid, tid, colours in versions:
        for answer in (LA, X if tid == 4 else LA):               # the two copies of input A, per version
            rows.append((vid, tid, colours, A, LA, answer))

    def seq(grid, tid, colours, labels=False):
        s = grid_to_seq(apply_aug(grid, tid, colours)).astype(np.int64)
        return np.where(s == 0, -100, s) if labels else s
    inputs = np.stack([seq(r[3], r[1], r[2]) for r in rows])
    labels = np.stack([seq(r[4], r[1], r[2], labels=True) for r in rows])
    predictions = np.stack([seq(r[5], r[1], r[2]) for r in rows])
    ids = np.array([r[0] for r in rows], dtype=np.int32)
    results = arc.score(inputs, labels, ids, predictions, np.zeros(len(rows), np.float32), identifiers, ks=(1, 2))
    first, second = results.tasks["t3"]
    assert [(c.votes, c.answer.tolist()) for c in first.candidates] == [(5, LA.tolist()), (1, X.tolist())]
    assert [(c.votes, c.answer.tolist()) for c in second.candidates] == [(5, LA.tolist()), (1, X.tolist())]
    assert results.task_pass_at(1) == 1.0 and results.stray_votes == 0
    entries = arc.submission(results)["t3"]
    assert entries[0] == entries[1] and entries[1]["attempt_1"] == LA.tolist()


def test_submission_has_the_kaggle_structure_and_the_top_two_answers():
    results = arc.score(*build_rows(), ks=(1, 2))
    sub = arc.submission(results)
    arc.validate_submission(sub, expected={"t1": 2, "t2": 1})
    assert sub["t1"][0] == {"attempt_1": X.tolist(), "attempt_2": LA.tolist()}
    assert sub["t1"][1] == {"attempt_1": Z.tolist(), "attempt_2": LB.tolist()}
    assert sub["t2"][0] == {"attempt_1": LC.tolist(), "attempt_2": W.tolist()}


def test_a_test_input_with_one_candidate_gets_the_placeholder_second_attempt():
    inputs, labels, ids, predictions, q, identifiers = build_rows()
    keep = ids == identifiers.index("t2")
    results = arc.score(inputs[keep], labels[keep], ids[keep], predictions[keep], q[keep], identifiers)
    assert arc.submission(results)["t2"] == [{"attempt_1": LC.tolist(), "attempt_2": arc.PLACEHOLDER}]


@pytest.mark.parametrize("bad,message", [
    ([], "expected a JSON object"),
    ({"t1": []}, "non-empty list"),
    ({"t1": [{"attempt_1": [[1]]}]}, "attempt_1 and attempt_2"),
    ({"t1": [{"attempt_1": [[1]], "attempt_2": [[1, 2], [3]]}]}, "row 1 has 1 cells"),
    ({"t1": [{"attempt_1": [[1]], "attempt_2": [[10]]}]}, "colours are integers 0..9"),
    ({"t1": [{"attempt_1": [[0] * 31], "attempt_2": [[1]]}]}, "1..30"),
    ({"t1": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}, "1 entries, the task has 2"),
    ({"t9": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}, "missing"),
])
def test_validate_submission_names_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        expected = {"t1": 2} if "task has" in message else ({"t1": 1} if message == "missing" else None)
        arc.validate_submission(bad, expected)
