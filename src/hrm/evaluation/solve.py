"""`hrm solve` and `hrm.solve(...)`: one puzzle in, the answer, the reasoning steps and the halt decision out.

    import hrm
    result = hrm.solve("runs/sudoku-demo", "1.3.....2..4.1..")
    print(result.render())            # the answer as a grid, each ACT step, where the Q head says halt
    result.to_json()                  # the same as a dict

    solver = hrm.evaluation.solve.Solver("runs/sudoku-demo")      # load once, solve many
    solver.solve(puzzle, halting="q", tta=8)

The model runs the eval-mode ACT loop (hrm.act_driver.run_act, through hrm.evaluation.loop.run_batch). By
default the answer is the last step's, as evaluation scores it; halting="q" stops at the first step where the Q head says halt
(the model's halt rule, hrm.halting). With tta=K (Sudoku, maze) the puzzle is also solved in K - 1 random symmetric
versions and the answers, mapped back, are voted. ARC tasks known to the checkpoint's dataset are solved
in every augmented version the model was trained with, as evaluation does (semantics §12).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrm.halting import says_halt
from hrm.puzzles import Puzzle, family, read_puzzle


@dataclass
class Step:
    step: int
    prediction: list                  # rows (Sudoku/maze: strings; ARC: lists of colours)
    q_halt_logit: float
    q_continue_logit: float
    says_halt: bool                   # the model's halt rule (hrm.halting) says halt at this step
    changed: int                      # cells that differ from the previous step's prediction (step 1: the input)


@dataclass
class Answer:
    """The answer to one test input (Sudoku and mazes have one)."""
    puzzle: list
    answer: list
    steps: list[Step]                 # of the original (un-augmented) version
    answer_step: int                  # the step whose prediction is the answer (before voting)
    q_halt_step: int | None           # first step where the Q head says halt; None if it never does
    versions: int = 1                 # versions voted
    votes: int = 1                    # versions that gave this answer
    check: dict[str, Any] = field(default_factory=dict)


@dataclass
class SolveResult:
    task: str
    checkpoint: str
    source: str
    halting: str
    halt_max_steps: int
    answers: list[Answer]
    notes: list[str] = field(default_factory=list)
    box_text: str | None = None       # Sudoku box shape, e.g. "2x3", for drawing

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def render(self, show_steps: bool = False) -> str:
        fam = family(self.task)
        out = []
        for note in self.notes:
            out.append(f"note: {note}")
        for i, a in enumerate(self.answers):
            if len(self.answers) > 1:
                out.append(f"=== test input {i + 1} of {len(self.answers)} ===")
            out.append("step  q_halt  q_cont  halt?  changed" + ("  prediction" if fam.steps_inline else ""))
            for s in a.steps:
                line = (f"{s.step:4d}  {s.q_halt_logit:6.2f}  {s.q_continue_logit:6.2f}  {'yes' if s.says_halt else 'no':>5}  "
                        f"{s.changed:7d}")
                if fam.steps_inline:
                    line += "  " + "".join(s.prediction)
                out.append(line)
                if show_steps and not fam.steps_inline:
                    out.append(fam.draw(s.prediction, self.box_text))
            out.append(halt_sentence(self.halting, self.halt_max_steps, a))
            if a.versions > 1:
                out.append(f"voted over {a.versions} versions: {a.votes} gave this answer")
            out.append("answer:")
            out.append(fam.draw(a.answer, self.box_text))
            if a.check:
                out.append(a.check.get("message", ""))
        return "\n".join(out)


def halt_sentence(halting: str, halt_max_steps: int, a: Answer) -> str:
    q = (f"the Q head says halt at step {a.q_halt_step}" if a.q_halt_step is not None
         else f"the Q head never says halt in {halt_max_steps} steps")
    if halting == "q":
        return f"halted at step {a.answer_step}: {q}"
    return f"halted at step {a.answer_step} (halt_max_steps, the original's rule); {q}"


# ----------------------------------------------------------------------------------------------------

class Solver:
    """A checkpoint loaded once, to solve puzzles one at a time."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", dtype: str = "auto",
                 data_path: str | Path | None = None, seq_len: int | None = None):
        from hrm.evaluation.sources import EvalError
        from hrm.runs import RunError, open_run

        try:
            self.run = open_run(checkpoint, device, dtype, data_path=data_path,
                                arch_overrides={"seq_len": seq_len} if seq_len else None)
        except RunError as e:
            raise EvalError(str(e)) from None
        self.choice, self.head, self.arch, self.info = self.run.choice, self.run.head, self.run.arch, self.run.info
        self.checkpoint = str(self.run.weights)
        self.data_path = self.run.data_path
        self.halt_rule = self.arch.halting_policy.rule
        self.family, self.task, self.box = self.run.family, self.run.task, self.run.box
        if self.family is None:
            raise EvalError(f"{self.checkpoint}: cannot tell which puzzles this checkpoint solves (vocab "
                            f"{self.arch.vocab_size}, seq_len {self.arch.seq_len}); pass data_path=its dataset")

    # -- running --------------------------------------------------------------------------------------
    def _run(self, inputs: np.ndarray, identifiers: np.ndarray, halting: str):
        from hrm.evaluation.loop import run_batch
        from hrm.models import IGNORE_LABEL_ID

        device = self.choice.device
        batch = {"inputs": torch.from_numpy(inputs.astype(np.int32)).to(device),
                 "labels": torch.full(inputs.shape, IGNORE_LABEL_ID, dtype=torch.int32, device=device),
                 "puzzle_identifiers": torch.from_numpy(identifiers.astype(np.int32)).to(device)}
        return run_batch(self.head, batch, save_steps=True, halt_early=halting == "q")

    def solve(self, puzzle: Any, halting: str = "fixed", tta: int = 1, seed: int = 0) -> SolveResult:
        if halting not in ("fixed", "q"):
            raise ValueError(f"halting must be 'fixed' or 'q', got {halting!r}")
        if tta < 1:
            raise ValueError(f"tta must be >= 1, got {tta}")
        parsed = read_puzzle(puzzle, self.family, self.arch.seq_len, self.box)
        if self.family.dataset_versions:
            from hrm.evaluation.solve_arc import solve_arc
            answers, notes = solve_arc(self, parsed, halting, tta, seed)
        else:
            answers, notes = [self._solve_grid(parsed, halting, tta, seed)], []
        return SolveResult(self.task, self.checkpoint, parsed.source, halting, self.arch.halt_max_steps, answers, notes,
                           box_text=str(parsed.box) if parsed.box is not None else None)

    def _solve_grid(self, parsed: Puzzle, halting: str, tta: int, seed: int) -> Answer:
        """A family with test-time transforms (Sudoku, maze): the original plus tta - 1 versions, voted.

        NOTE: not hrm.evaluation.breadth, which hrm eval's tta= runs: one puzzle, every version's step table
        at hand, and with halting=q each version's answer is the one at its own Q-halt step. The versions
        (draw_versions, seeded by example index 0) and the vote (voting.rank) are the same."""
        from hrm.evaluation import tta as tta_
        from hrm.evaluation.voting import rank

        inputs = parsed.tokens
        mappings = token_maps = None
        if tta > 1:
            augmenter = self.family.augmenter(self.arch.seq_len, self.arch.vocab_size, str(parsed.box) if parsed.box else None)
            mappings, token_maps = tta_.draw_versions(augmenter, np.array([0]), tta - 1, seed)
            versions = [tta_.apply(inputs, m, t) for m, t in zip(mappings, token_maps)]
            inputs = np.concatenate([inputs] + versions)
        out = self._run(inputs, np.zeros(len(inputs), np.int64), halting)
        answers = (out.q_halt_predictions if halting == "q" else out.predictions).astype(np.int64)
        q = out.q_halt_q if halting == "q" else out.q_halt
        ballots = [(answers[0].tobytes(), answers[0], float(q[0]))]
        for v in range(1, len(inputs)):
            back = tta_.invert(answers[v:v + 1], mappings[v - 1], token_maps[v - 1])[0]
            ballots.append((back.tobytes(), back, float(q[v])))
        best = rank(ballots)[0]
        answer = Answer(self._rows(parsed, parsed.tokens[0]), self._rows(parsed, best.answer),
                        self._steps(parsed, out, 0, parsed.tokens[0]), *self._halt_steps(out, 0, halting),
                        versions=len(inputs), votes=best.votes)
        answer.check = self.family.check(parsed, best.answer)
        return answer

    def _rows(self, parsed: Puzzle, tokens: np.ndarray) -> list:
        return self.family.decode(tokens, parsed.box)

    def _steps(self, parsed: Puzzle, out, row: int, inputs: np.ndarray, to_rows=None) -> list[Step]:
        """Each step the row ran; `changed` counts the cells that differ from the step before (step 1: the input)."""
        to_rows = to_rows or (lambda tokens: self._rows(parsed, tokens))
        steps, previous = [], np.asarray(inputs)
        for k in range(int(out.steps[row])):
            prediction = out.step_predictions[row, k]
            q_halt = float(out.step_q_halt[row, k])
            q_cont = float(out.step_q_continue[row, k])
            steps.append(Step(k + 1, to_rows(prediction), q_halt, q_cont, bool(says_halt(self.halt_rule, q_halt, q_cont)),
                              int((prediction != previous).sum())))
            previous = prediction
        return steps

    def _halt_steps(self, out, row: int, halting: str) -> tuple[int, int | None]:
        ran = int(out.steps[row])
        says = says_halt(self.halt_rule, out.step_q_halt[row, :ran], out.step_q_continue[row, :ran])
        q_step = int(np.argmax(says)) + 1 if says.any() else None
        answer_step = int(out.q_halt_step[row]) if halting == "q" else ran
        return answer_step, q_step


def solve(checkpoint: str | Path, puzzle: Any, *, halting: str = "fixed", tta: int = 1, seed: int = 0,
          device: str = "auto", dtype: str = "auto", data_path: str | Path | None = None,
          seq_len: int | None = None) -> SolveResult:
    """Solve one puzzle with a checkpoint: a Sudoku string, a maze text (or file), or an ARC task (JSON file or dict)."""
    return Solver(checkpoint, device, dtype, data_path, seq_len).solve(puzzle, halting=halting, tta=tta, seed=seed)
