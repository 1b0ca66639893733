"""The eval-mode ACT loop against the original's recorded eval loop, and the metrics from arrays."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hrm.evaluation import metrics
from hrm.evaluation.loop import run_act
from hrm.models import IGNORE_LABEL_ID
from hrm.models.reference import Fixture, ReferenceRun


@pytest.fixture(scope="module")
def fixture():
    from reference_helpers import fixture_path
    return Fixture(fixture_path("hrm_act_v1_small.json"))   # not the cached load_fixture(): this module keeps its own records


def test_run_act_matches_the_recorded_eval_loop(fixture):
    head = ReferenceRun(fixture).model().eval()
    out = run_act(head, fixture.batch(1), save_steps=True)
    K = fixture.meta["config"]["halt_max_steps"]
    assert out.steps_run == K and out.step_predictions.shape[1] == K
    rec = fixture.records
    for step in range(1, K + 1):
        assert torch.equal(out.step_predictions[:, step - 1], rec[f"eval.step{step}.logits"].argmax(-1).int())
        torch.testing.assert_close(out.step_q_halt_logits[:, step - 1], rec[f"eval.step{step}.q_halt_logits"],
                                   atol=fixture.atol, rtol=fixture.rtol)
    assert torch.equal(out.predictions, out.step_predictions[:, -1])
    for name in ("count", "exact_accuracy", "q_halt_accuracy", "steps"):
        assert int(out.metrics[name]) == int(rec[f"eval.step{K}.metric.{name}"]), name
    torch.testing.assert_close(out.metrics["accuracy"].double(), rec[f"eval.step{K}.metric.accuracy"].double(),
                               atol=1e-5, rtol=1e-5)


def test_q_halt_step_is_the_first_step_where_q_halt_exceeds_q_continue(fixture):
    head = ReferenceRun(fixture).model().eval()
    out = run_act(head, fixture.batch(1), save_steps=True)
    says = out.step_q_halt_logits > out.step_q_continue_logits
    K = says.shape[1]
    says[:, -1] = True
    expected = says.int().argmax(1) + 1
    assert torch.equal(out.q_halt_step, expected.int())
    rows = torch.arange(len(expected))
    assert torch.equal(out.q_halt_predictions, out.step_predictions[rows, expected - 1])
    assert torch.equal(out.q_halt_q_logits, out.step_q_halt_logits[rows, expected - 1])
    assert 1 <= int(out.q_halt_step.min()) and int(out.q_halt_step.max()) <= K


def test_stop_at_q_halt_stops_early_when_every_row_has_halted(fixture):
    params = fixture.params()
    params["model.inner.q_head.bias"] = torch.tensor([10.0, -10.0])   # halt says yes everywhere
    params["model.inner.q_head.weight"] = torch.zeros_like(params["model.inner.q_head.weight"])
    head = ReferenceRun(fixture).model(params).eval()
    out = run_act(head, fixture.batch(1), stop_at_q_halt=True)
    assert out.steps_run == 1 and out.q_halt_step.tolist() == [1] * fixture.batch_size


def test_run_act_refuses_training_mode(fixture):
    head = ReferenceRun(fixture).model().train()
    with pytest.raises(RuntimeError, match="eval mode"):
        run_act(head, fixture.batch(1))


def test_metrics_from_predictions_with_known_answers():
    labels = np.array([[2, 3, 4, 5],        # all right
                       [2, 3, 4, 5],        # 3 of 4 right
                       [2, IGNORE_LABEL_ID, IGNORE_LABEL_ID, 5],   # 2 supervised, both right
                       [IGNORE_LABEL_ID] * 4])                      # padding: not counted
    preds = np.array([[2, 3, 4, 5], [2, 3, 4, 9], [2, 0, 0, 5], [1, 1, 1, 1]])
    q_halt = np.array([1.0, 2.0, -1.0, 5.0])        # says right, right, wrong, (padding)
    steps = np.array([4, 2, 3, 100])
    got = metrics.from_predictions(preds, labels, q_halt, steps)
    assert got["count"] == 3
    assert got["exact_accuracy"] == pytest.approx(2 / 3)
    assert got["accuracy"] == pytest.approx((1 + 0.75 + 1) / 3)
    assert got["q_halt_accuracy"] == pytest.approx(1 / 3)     # row 0 agrees; row 1 says right but is wrong; row 2 says wrong but is right
    assert got["steps"] == pytest.approx(3.0)
    assert metrics.exact(preds, labels).tolist() == [True, False, True, True]


def test_metrics_from_arrays_agree_with_the_loss_head_sums(fixture):
    head = ReferenceRun(fixture).model().eval()
    batch = fixture.batch(1)
    out = run_act(head, batch)
    sums = metrics.sums_from_predictions(out.predictions.numpy(), batch["labels"].numpy(), out.q_halt_logits.numpy(),
                                         np.full(len(out.predictions), out.steps_run))
    for name in ("count", "exact_accuracy", "q_halt_accuracy", "steps"):
        assert sums[name] == int(out.metrics[name]), name
    assert sums["accuracy"] == pytest.approx(float(out.metrics["accuracy"]), abs=1e-5)


def test_normalise_divides_every_sum_by_count():
    got = metrics.normalise({"count": 4.0, "exact_accuracy": 3.0, "lm_loss": 2.0, "steps": 64.0})
    assert got == {"count": 4, "exact_accuracy": 0.75, "lm_loss": 0.5, "steps": 16.0}


def test_q_halting_comparison_reports_cost_and_saving():
    got = metrics.q_halting_comparison({"exact_accuracy": 0.8}, {"exact_accuracy": 0.7, "steps": 4.0}, 16)
    assert got["accuracy_cost"] == pytest.approx(0.1)
    assert got["compute_saved"] == pytest.approx(0.75)
