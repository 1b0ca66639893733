"""The host-side ACT loop with a scripted step function: protocol, early halting, per-step records."""
from __future__ import annotations

import numpy as np
import pytest

from hrm.act_driver import StepOutputs, run_act


class Scripted:
    """A step that adds 1 to the carry and reads q_halt - q_continue from a (B, K) script by carry value."""

    name = "scripted"

    def __init__(self, margins: np.ndarray, T=3, D=2, V=5):
        self.margins = margins                         # (B, K): q_halt - q_continue per row and step
        self.carry_init = {"z_H": np.zeros(D, np.float32), "z_L": np.full(D, 10, np.float32)}
        self.carry_positions = T
        self.V = V
        self.calls = []

    def __call__(self, carry, inputs, puzzle_identifiers):
        z_H, z_L = carry["z_H"], carry["z_L"]
        self.calls.append(puzzle_identifiers.copy())
        step = int(z_H[0, 0, 0])                      # steps taken so far by these rows
        rows = puzzle_identifiers                     # the scripted rows are their identifiers
        logits = np.zeros(inputs.shape + (self.V,), np.float32)
        logits[..., (step + 1) % self.V] = 1          # step k predicts token k mod V
        q_halt = self.margins[rows, step].astype(np.float32)
        return StepOutputs({"z_H": z_H + 1, "z_L": z_L + 1}, logits, q_halt, np.zeros_like(q_halt))


def test_eval_protocol_runs_every_row_all_steps():
    margins = np.array([[1, 1, 1], [-1, -1, -1]], float)
    step = Scripted(margins)
    r = run_act(step, np.ones((2, 4), np.int32), np.array([0, 1]), halt_max_steps=3)
    assert r.steps.tolist() == [3, 3]
    assert (r.predictions == 3).all()                 # the last step's argmax
    assert r.step_predictions[:, :, 0].tolist() == [[1, 2, 3], [1, 2, 3]]
    assert r.step_q_halt.tolist() == [[1, 1, 1], [-1, -1, -1]]
    assert [c.tolist() for c in step.calls] == [[0, 1]] * 3


def test_early_halting_stops_rows_and_steps_only_the_rest():
    margins = np.array([[1, 0, 0, 0], [-1, -1, -1, -1], [-1, 0.5, 0, 0]], float)
    step = Scripted(margins)
    r = run_act(step, np.ones((3, 4), np.int32), np.array([0, 1, 2]), halt_max_steps=4, halt_early=True)
    assert r.steps.tolist() == [1, 4, 2]
    assert r.predictions[:, 0].tolist() == [1, 4 % 5, 2]
    assert np.isnan(r.step_q_halt[0, 1:]).all() and (r.step_predictions[0, 1:] == -1).all()
    assert [c.tolist() for c in step.calls] == [[0, 1, 2], [1, 2], [1], [1]]
    # The halted row's carry (in the result of step 1) was not advanced by later steps.
    assert r.q_halt.tolist() == [1, -1, 0.5]


def test_initial_carry_is_h_init_and_l_init():
    seen = {}

    class Probe(Scripted):
        def __call__(self, carry, inputs, ids):
            seen.setdefault("z", (carry["z_H"].copy(), carry["z_L"].copy()))
            return super().__call__(carry, inputs, ids)
    run_act(Probe(np.zeros((1, 2))), np.ones((1, 4), np.int32), np.array([0]), halt_max_steps=2)
    z_H, z_L = seen["z"]
    assert z_H.shape == (1, 3, 2) and (z_H == 0).all() and (z_L == 10).all()


def test_early_halting_follows_the_models_halt_rule():
    # Both logits shifted by -3: row 0 has q_halt = -1 > q_continue = -3 (HRM's rule halts it, TRM's does not);
    # row 1 has q_halt = q_continue = -3 (neither rule halts it).
    class Shifted(Scripted):
        def __call__(self, carry, inputs, ids):
            out = super().__call__(carry, inputs, ids)
            return out._replace(q_halt=out.q_halt - 3, q_continue=out.q_continue - 3)
    margins = np.array([[2, 2, 2], [0, 0, 0]], float)
    hrm = run_act(Shifted(margins), np.ones((2, 4), np.int32), np.array([0, 1]), 3, halt_early=True,
                  halt_rule="q_halt > q_continue")
    trm = run_act(Shifted(margins), np.ones((2, 4), np.int32), np.array([0, 1]), 3, halt_early=True,
                  halt_rule="q_halt > 0")
    assert hrm.steps.tolist() == [1, 3]          # row 0: -1 > -3 at once; row 1: -3 > -3 never
    assert trm.steps.tolist() == [3, 3]          # q_halt is never > 0
    with pytest.raises(ValueError, match="unknown halt rule"):
        run_act(Shifted(margins), np.ones((2, 4), np.int32), np.array([0, 1]), 3, halt_early=True, halt_rule="q > 1")


@pytest.mark.parametrize("inputs, ids, k", [(np.ones(4), np.zeros(1), 2), (np.ones((2, 4)), np.zeros(3), 2),
                                            (np.ones((2, 4)), np.zeros(2), 0)])
def test_bad_arguments_are_named(inputs, ids, k):
    with pytest.raises(ValueError, match="inputs must be|halt_max_steps"):
        run_act(Scripted(np.zeros((2, 2))), inputs, ids, halt_max_steps=k)
