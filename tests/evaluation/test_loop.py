"""The eval-mode ACT loop against the original's recorded eval loop, and the metrics from arrays."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hrm.evaluation import metrics
from hrm.evaluation.loop import batch_metrics, run_batch
from hrm.models import IGNORE_LABEL_ID
from hrm.reference.hrm import Fixture, ReferenceRun


@pytest.fixture(scope="module")
def fixture():
    from reference_helpers import fixture_path
    return Fixture(fixture_path("hrm_act_v1_small.json"))   # not the cached load_fixture(): this module keeps its own records


def test_run_batch_matches_the_recorded_eval_loop(fixture):
    head = ReferenceRun(fixture).model().eval()
    batch = fixture.batch(1)
    out = run_batch(head, batch, save_steps=True)
    K = fixture.meta["config"]["halt_max_steps"]
    assert out.steps.tolist() == [K] * fixture.batch_size and out.step_predictions.shape[1] == K
    rec = fixture.records
    for step in range(1, K + 1):
        assert np.array_equal(out.step_predictions[:, step - 1], rec[f"eval.step{step}.logits"].argmax(-1).numpy())
        np.testing.assert_allclose(out.step_q_halt[:, step - 1], rec[f"eval.step{step}.q_halt_logits"].numpy(),
                                   atol=fixture.atol, rtol=fixture.rtol)
    assert np.array_equal(out.predictions, out.step_predictions[:, -1])
    sums = batch_metrics(head.loss_fn, out, batch["labels"])
    for name in ("count", "exact_accuracy", "q_halt_accuracy", "steps"):
        assert int(sums[name]) == int(rec[f"eval.step{K}.metric.{name}"]), name
    for name in ("accuracy", "lm_loss", "q_halt_loss"):
        torch.testing.assert_close(sums[name].double(), rec[f"eval.step{K}.metric.{name}"].double(),
                                   atol=1e-5, rtol=1e-5)


def test_the_driver_loop_equals_the_loss_heads_own_calls_exactly(fixture):
    """The one driver over the inner step gives bit for bit what K calls of the ACT wrapper and loss head give."""
    head = ReferenceRun(fixture).model().eval()
    batch = fixture.batch(1)
    with torch.inference_mode():
        carry = head.initial_carry(batch)
        for _ in range(head.model.config.halt_max_steps):
            carry, _, head_metrics, outputs, all_halted = head(carry, batch, return_keys=("logits", "q_halt_logits"))
    assert bool(all_halted)
    out = run_batch(head, batch)
    assert np.array_equal(out.logits, outputs["logits"].numpy())
    assert np.array_equal(out.q_halt, outputs["q_halt_logits"].numpy())
    sums = batch_metrics(head.loss_fn, out, batch["labels"])
    assert set(sums) == set(head_metrics)
    for name, value in head_metrics.items():
        assert torch.equal(sums[name], value), name


def test_q_halt_step_is_the_first_step_where_the_halt_rule_says_halt(fixture):
    head = ReferenceRun(fixture).model().eval()
    out = run_batch(head, fixture.batch(1), save_steps=True)
    says = out.step_q_halt > out.step_q_continue
    K = says.shape[1]
    says[:, -1] = True
    expected = says.argmax(1) + 1
    assert np.array_equal(out.q_halt_step, expected)
    rows = np.arange(len(expected))
    assert np.array_equal(out.q_halt_predictions, out.step_predictions[rows, expected - 1])
    assert np.array_equal(out.q_halt_q, out.step_q_halt[rows, expected - 1])
    assert 1 <= out.q_halt_step.min() and out.q_halt_step.max() <= K


def test_halt_early_stops_every_row_where_its_q_head_says_halt(fixture):
    params = fixture.params()
    params["model.inner.q_head.bias"] = torch.tensor([10.0, -10.0])   # halt says yes everywhere
    params["model.inner.q_head.weight"] = torch.zeros_like(params["model.inner.q_head.weight"])
    head = ReferenceRun(fixture).model(params).eval()
    out = run_batch(head, fixture.batch(1), save_steps=True, halt_early=True)
    assert out.steps.tolist() == [1] * fixture.batch_size and out.q_halt_step.tolist() == [1] * fixture.batch_size
    assert (out.step_predictions[:, 1:] == -1).all()
    # Metrics count only rows halted under the eval rule (halt_max_steps): none here.
    assert int(batch_metrics(head.loss_fn, out, fixture.batch(1)["labels"])["count"]) == 0


def test_evaluation_leaves_the_weights_unchanged(fixture):
    head = ReferenceRun(fixture).model().train()
    before = {k: v.clone() for k, v in head.state_dict().items()}
    run_batch(head, fixture.batch(1))
    assert all(torch.equal(v, head.state_dict()[k]) for k, v in before.items())


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
    out = run_batch(head, batch)
    head_sums = batch_metrics(head.loss_fn, out, batch["labels"])
    sums = metrics.sums_from_predictions(out.predictions, batch["labels"].numpy(), out.q_halt, out.steps)
    for name in ("count", "exact_accuracy", "q_halt_accuracy", "steps"):
        assert sums[name] == int(head_sums[name]), name
    assert sums["accuracy"] == pytest.approx(float(head_sums["accuracy"]), abs=1e-5)


def test_normalise_divides_every_sum_by_count():
    got = metrics.normalise({"count": 4.0, "exact_accuracy": 3.0, "lm_loss": 2.0, "steps": 64.0})
    assert got == {"count": 4, "exact_accuracy": 0.75, "lm_loss": 0.5, "steps": 16.0}


def test_q_halting_comparison_reports_cost_and_saving():
    got = metrics.q_halting_comparison({"exact_accuracy": 0.8}, {"exact_accuracy": 0.7, "steps": 4.0}, 16)
    assert got["accuracy_cost"] == pytest.approx(0.1)
    assert got["compute_saved"] == pytest.approx(0.75)
