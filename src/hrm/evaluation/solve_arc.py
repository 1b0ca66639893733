"""`hrm solve` for an ARC task: every test input in the augmented versions the model knows, voted.

HRM's ARC model conditions on a learned embedding per puzzle version ("<task>_t<tid>_<colour map>"),
looked up by identifier; the demonstration pairs are not an input (they were trained on). So:
  * a task in the checkpoint's dataset (its name in identifiers.json) is solved in each of its versions,
    with that version's identifier, then de-augmented and voted exactly as evaluation does (semantics §12);
  * a task the checkpoint never saw has no embedding: it runs with the blank identifier (0, a zero
    embedding), in the original orientation plus tta - 1 random dihedral/colour versions, and a note
    says that the answer is unlikely to be right (sapientinc/HRM#104).
"""
from __future__ import annotations

import numpy as np

from hrm.puzzles import Puzzle

CHUNK = 64          # rows per forward pass: bounds memory when a task has ~1000 versions


def task_versions(identifiers: list[str] | None, task: str | None) -> list[tuple[int, str]]:
    """(identifier, name) of every version of `task` in the dataset's identifiers, the original first."""
    from hrm.evaluation.arc import task_name

    if not identifiers or not task:
        return []
    versions = [(i, name) for i, name in enumerate(identifiers) if i > 0 and task_name(name) == task]
    return sorted(versions, key=lambda v: v[1] != task)


def random_versions(task: str, count: int, seed: int) -> list[tuple[int, str]]:
    """The original and count - 1 random dihedral/colour versions (black kept), all with the blank identifier."""
    from hrm.data.arc import aug_name

    rng = np.random.default_rng([seed, 0xA6C])
    versions, seen = [(0, task)], {task}
    while len(versions) < count and len(seen) < 8 * 362880:
        colours = np.concatenate([[0], 1 + rng.permutation(9)]).astype(np.uint8)
        name = aug_name(task, int(rng.integers(0, 8)), colours)
        if name not in seen:
            seen.add(name)
            versions.append((0, name))
    return versions


def solve_arc(solver, parsed: Puzzle, halting: str, tta: int, seed: int):
    """(answers, notes) for every test input of `parsed`."""
    from hrm.data import load_identifiers
    from hrm.evaluation.solve import Answer
    from hrm.evaluation.voting import grid_key, rank

    name = parsed.name or "task"
    identifiers = load_identifiers(solver.data_path) if solver.data_path is not None else None
    versions = task_versions(identifiers, parsed.name)
    notes = []
    recorded = solver.info.get("dataset_hash")
    if versions and recorded:
        from hrm.data import dataset_hash
        if dataset_hash(solver.data_path) != recorded:
            notes.append(f"WARNING: {solver.data_path} is not the dataset this checkpoint was trained on: its puzzle "
                         "identifiers may name other puzzles' embeddings")
    if versions:
        if tta > 1:
            versions = versions[:tta]
        notes.append(f"task {name} is in the checkpoint's dataset: solved in {len(versions)} of its trained versions, voted")
    else:
        versions = random_versions(name, tta, seed)
        where = "its dataset's identifiers" if identifiers else "a dataset (pass --data-path to look the task up)"
        notes.append(f"task {name} is not in {where}: HRM's ARC model conditions on a per-task embedding learned in "
                     "training, so an unseen task runs with the blank (zero) embedding and the answer is unlikely to be "
                     f"right; {len(versions)} version(s) voted")

    arc = solver.family
    answers = []
    for test_index, grid in enumerate(parsed.grids):
        inputs = np.stack([arc.encode(arc.version(grid, vname)) for _, vname in versions]).astype(np.int64)
        ids = np.array([vid for vid, _ in versions], dtype=np.int64)
        ballots, original = [], None
        for start in range(0, len(inputs), CHUNK):
            out = solver._run(inputs[start:start + CHUNK], ids[start:start + CHUNK], halting)
            final = out.q_halt_predictions if halting == "q" else out.predictions
            q = out.q_halt_q if halting == "q" else out.q_halt
            for row in range(len(final)):
                vname = versions[start + row][1]
                answer = arc.unversion(vname, np.asarray(arc.decode(final[row]), dtype=np.uint8))
                ballots.append((grid_key(answer), answer, float(q[row])))
            if start == 0:
                original = out
        best = rank(ballots)[0]
        steps = solver._steps(parsed, original, 0, inputs[0], to_rows=arc.decode)
        answer_step, q_step = solver._halt_steps(original, 0, halting)
        result = Answer(grid.tolist(), best.answer.tolist(), steps, answer_step, q_step,
                        versions=len(versions), votes=best.votes)
        result.check = arc.check(parsed, best.answer, test_index)
        answers.append(result)
    return answers, notes
