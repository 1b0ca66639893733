"""The training state is saved and restored whole: step, iteration, carry, optimiser, loader, RNG, LR horizon."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from training_fixtures import make_dataset, tiny_config

from hrm.training.trainer import Trainer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "reverse-map")


def test_a_stopped_run_resumes_with_the_whole_state(data, tmp_path):
    config = tiny_config(data, tmp_path / "run", "epochs=4", "eval_interval=2", "logging.log_interval=1")
    def callback(event):
        if event.kind == "log" and event.step == 7:
            trainer.state.lr_horizon = 50                      # the LR horizon is state, not config
            return False
        return None

    trainer = Trainer(config, callback)
    try:
        result = trainer.run()
        before = trainer.state
        seen = {"step": before.step, "iteration": before.iteration, "finished": before.iteration_finished,
                "carry_steps": before.carry.steps.clone(), "z_H": before.carry.inner_carry["z_H"].clone(),
                "adam": {k: v.clone() for k, v in before.adam.state[next(iter(before.adam.state))].items()},
                "loader": json.dumps(before.loader.state_dict(), sort_keys=True),
                "rng": torch.get_rng_state().clone()}
    finally:
        trainer.close()
    assert result.stopped_early and result.step == 7
    saved = json.loads((result.checkpoint / "train_state.json").read_text())
    assert saved["step"] == 7 and saved["lr_horizon"] == 50 and saved["iteration_finished"] is False

    torch.manual_seed(999)                                     # resume must bring its own RNG state back
    resumed = Trainer(dataclasses.replace(config, resume=str(tmp_path / "run")))
    try:
        state = resumed.state
        assert (state.step, state.iteration, state.iteration_finished) == (seen["step"], seen["iteration"], seen["finished"])
        assert state.lr_horizon == 50
        assert torch.equal(state.carry.steps, seen["carry_steps"])
        assert torch.equal(state.carry.inner_carry["z_H"], seen["z_H"])
        restored = state.adam.state[next(iter(state.adam.state))]
        assert all(torch.equal(restored[k], v) for k, v in seen["adam"].items())
        assert json.dumps(state.loader.state_dict(), sort_keys=True) == seen["loader"]
        assert torch.equal(torch.get_rng_state(), seen["rng"])
        assert state.first_iteration == seen["iteration"]       # the pass was not finished: it is run again
    finally:
        resumed.close()


def test_a_callback_stop_at_the_start_event_does_not_stop_the_run(data, tmp_path):
    config = tiny_config(data, tmp_path / "run", "epochs=1", "eval_interval=1")
    trainer = Trainer(config, lambda event: False if event.kind == "start" else None)
    try:
        result = trainer.run()
    finally:
        trainer.close()
    assert not result.stopped_early and result.step == result.total_steps
