"""`hrm solve` / `hrm.solve` on Sudoku, mazes and ARC tasks, and the bad inputs it must explain."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import eval_fixtures
import hrm
from hrm.cli import main as cli
from hrm.puzzles import PuzzleError


@pytest.fixture(scope="session")
def sudoku_run(tmp_path_factory):
    return eval_fixtures.sudoku_run(tmp_path_factory)


@pytest.fixture(scope="session")
def maze_ckpt(tmp_path_factory):
    return eval_fixtures.maze_ckpt(tmp_path_factory)


@pytest.fixture(scope="session")
def arc_ckpt(tmp_path_factory):
    return eval_fixtures.arc_ckpt(tmp_path_factory)


def test_hrm_solve_is_importable_lazily():
    import subprocess
    import sys
    code = "import sys, hrm; assert 'torch' not in sys.modules; assert callable(hrm.solve); print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_sudoku_answer_is_the_evaluation_answer(sudoku_run, tmp_path):
    from hrm.data.sudoku import board_to_string, decode_tokens
    from hrm.evaluation.predictions import read_predictions

    assert cli(["eval", f"checkpoint={sudoku_run.run_dir}", f"out={tmp_path}", "progress=false"]) == 0
    arrays, _ = read_predictions(tmp_path)
    for row in (0, 1, 2):
        puzzle = board_to_string(decode_tokens(arrays["inputs"][row]))
        result = hrm.solve(sudoku_run.run_dir, puzzle)
        (answer,) = result.answers
        assert "".join(answer.answer) == board_to_string(decode_tokens(arrays["predictions"][row]))
        assert len(answer.steps) == 3 and answer.answer_step == 3
        assert answer.answer == answer.steps[-1].prediction
        assert answer.check["valid"] == bool(arrays["exact"][row])    # a valid 4x4 answer is the unique solution


def test_sudoku_cli_text_and_json(sudoku_run, capsys):
    puzzle = "1.3.....2..4.1.."
    assert cli(["solve", str(sudoku_run.run_dir), puzzle]) == 0
    text = capsys.readouterr().out
    assert "answer:" in text and "halted at step 3 (halt_max_steps" in text and "step  q_halt" in text
    assert cli(["solve", str(sudoku_run.run_dir), puzzle, "--json", "--halting", "q", "--tta", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "sudoku" and out["halting"] == "q" and out["halt_max_steps"] == 3
    (answer,) = out["answers"]
    assert answer["versions"] == 4 and 1 <= answer["votes"] <= 4
    assert answer["puzzle"] == ["1.3.", "....", "2..4", ".1.."]
    assert len(answer["steps"]) <= 3 and {"q_halt_logit", "q_continue_logit", "says_halt", "changed"} <= set(answer["steps"][0])
    if answer["q_halt_step"] is not None:           # stopped where the Q head said halt
        assert answer["answer_step"] == answer["q_halt_step"]


@pytest.mark.parametrize("puzzle,message", [
    ("1.3.....2..4.1.", "a Sudoku of 15 cells; this model solves 4x4 boards"),
    ("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79", "this model solves 4x4 boards"),
    ("1.3.....2..4.1.x", "character 16: 'x' is not a cell"),
    ("1.3.....2..4.1.5", "character 16: '5' is not a cell (1-4"),
    ("1.1.....2..4.1..", "row 1 holds the digit 1 more than once"),
    ("#S..\n..G.\n....\n....", "this checkpoint solves sudoku puzzles, but the input looks like a maze"),
    ('{"test": [{"input": [[1]]}]}', "input looks like an ARC task"),
])
def test_bad_sudoku_inputs(sudoku_run, puzzle, message, capsys):
    with pytest.raises(PuzzleError, match=re.escape(message)):
        hrm.solve(sudoku_run.run_dir, puzzle)
    assert cli(["solve", str(sudoku_run.run_dir), puzzle]) == 2
    assert message in capsys.readouterr().err


def write_maze(tmp_path, data):
    from hrm.data.maze import tokens_to_rows

    tokens = np.load(data / "test" / "all__inputs.npy")[0]
    path = tmp_path / "maze.txt"
    path.write_text("\n".join(tokens_to_rows(tokens)) + "\n")
    return path, tokens


def test_maze_solve_from_a_text_file(maze_ckpt, tmp_path, capsys):
    checkpoint, data = maze_ckpt
    path, tokens = write_maze(tmp_path, data)
    result = hrm.solve(checkpoint, path, data_path=data)
    (answer,) = result.answers
    assert result.task == "maze" and len(answer.answer) == 6 and all(len(r) == 6 for r in answer.answer)
    assert answer.puzzle == path.read_text().splitlines() and set(answer.check) == {"valid", "matches_solver", "message"}
    one_line = hrm.solve(checkpoint, "".join(answer.puzzle), data_path=data)     # the dataset CSVs' form
    assert one_line.answers[0].answer == answer.answer
    assert cli(["solve", str(checkpoint), str(path), "--data-path", str(data), "--steps", "--tta", "3"]) == 0
    text = capsys.readouterr().out
    assert "voted over 3 versions" in text and "answer:" in text


@pytest.mark.parametrize("edit,message", [
    (lambda rows: rows[:-1], "a maze of 5 lines; this model solves 6x6 mazes"),
    (lambda rows: [rows[0][:-1]] + rows[1:], "line 1: 5 characters, expected 6"),
    (lambda rows: [rows[0]] + ["x" + rows[1][1:]] + rows[2:], "line 2, character 1: 'x' is not one of"),
    (lambda rows: [r.replace("G", " ") for r in rows], "exactly one G (goal), this one has 0"),
    (lambda rows: [rows[0][:2] + "o" + rows[0][3:]] + rows[1:], "line 1, character 3: 'o' marks a path cell"),
])
def test_bad_maze_inputs(maze_ckpt, tmp_path, edit, message):
    checkpoint, data = maze_ckpt
    path, _ = write_maze(tmp_path, data)
    rows = path.read_text().splitlines()
    path.write_text("\n".join(edit(rows)) + "\n")
    with pytest.raises(PuzzleError, match=re.escape(message)):
        hrm.solve(checkpoint, path, data_path=data)


def test_arc_task_known_to_the_dataset_is_solved_in_its_versions(arc_ckpt, capsys):
    checkpoint, data, evaluation = arc_ckpt
    task = evaluation / "aaaa0001.json"
    result = hrm.solve(checkpoint, task, data_path=data)
    assert result.task == "arc" and len(result.answers) == 2
    assert "solved in 4 of its trained versions" in result.notes[0]
    first = result.answers[0]
    assert first.versions == 4 and first.puzzle == [[5, 6, 7]]
    assert first.check["message"].startswith(("correct", "NOT correct"))
    assert cli(["solve", str(checkpoint), str(task), "--data-path", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["answers"]) == 2 and out["answers"][1]["puzzle"] == [[1], [2]]


def test_arc_task_unknown_to_the_checkpoint_is_solved_with_a_warning(arc_ckpt, tmp_path):
    checkpoint, data, _ = arc_ckpt
    task = {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3, 3], [4, 4]]}]}
    result = hrm.solve(checkpoint, task, data_path=data, tta=3)
    assert "not in its dataset's identifiers" in result.notes[0] and result.answers[0].versions == 3
    assert result.answers[0].check == {}                         # no test output given


@pytest.mark.parametrize("task,message", [
    ({"test": [{"input": [[0] * 31]}]}, "grid is 1x31, larger than 30x30"),
    ({"test": [{"input": [[1, 2], [3]]}]}, "row 1: 1 cells, row 0 has 2"),
    ({"test": [{"input": [[12]]}]}, "colour 12 is outside 0..9"),
    ({"train": []}, 'non-empty "test" list'),
])
def test_bad_arc_inputs(arc_ckpt, task, message):
    checkpoint, data, _ = arc_ckpt
    with pytest.raises(PuzzleError, match=re.escape(message)):
        hrm.solve(checkpoint, task, data_path=data)


def test_a_checkpoint_for_another_task_is_named(maze_ckpt, arc_ckpt, tmp_path, capsys):
    maze_checkpoint, maze_data = maze_ckpt
    _, _, evaluation = arc_ckpt
    assert cli(["solve", str(maze_checkpoint), str(evaluation / "aaaa0001.json"), "--data-path", str(maze_data)]) == 2
    assert "this checkpoint solves maze puzzles, but the input looks like an ARC task" in capsys.readouterr().err
