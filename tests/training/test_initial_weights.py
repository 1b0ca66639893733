"""TRM's training options, for every architecture: load_checkpoint (with the puzzle-table resize),
freeze_weights and min_eval_interval (semantics §15.6)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from training_fixtures import make_dataset, tiny_config

from hrm.models.checkpoint import CheckpointError
from hrm.training import train
from hrm.training.config import ConfigError, load_config

TABLE = "model.inner.puzzle_emb.weights"
STILL = ("lr=0", "puzzle_emb_lr=0")          # a run that changes nothing: its weights are those it started from


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("initial")
    data = make_dataset(root / "data")
    return train(tiny_config(data, root / "source")), data, root


def weights(result):
    return load_file(str(result.checkpoint / "model.safetensors"))


def test_a_run_starts_from_the_checkpoints_weights(trained, tmp_path):
    source, data, _ = trained
    result = train(tiny_config(data, tmp_path / "run", f"load_checkpoint={source.run_dir}", "seed=7", *STILL))
    a, b = weights(source), weights(result)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fresh = weights(train(tiny_config(data, tmp_path / "fresh", "seed=7", *STILL)))
    assert not torch.equal(fresh["model.inner.lm_head.weight"], b["model.inner.lm_head.weight"])


def test_an_official_state_dict_loads_and_a_new_puzzle_set_gets_the_mean_row(trained, tmp_path):
    source, _, _ = trained
    state = weights(source)
    torch.save({"_orig_mod." + k: v for k, v in state.items()}, tmp_path / "step_64")     # as the official saves
    more_puzzles = make_dataset(tmp_path / "data6", num_ids=6)
    result = train(tiny_config(more_puzzles, tmp_path / "run", f"load_checkpoint={tmp_path / 'step_64'}", *STILL))
    table = weights(result)[TABLE]
    assert table.shape[0] == 7 != state[TABLE].shape[0]                    # 6 puzzles + the blank identifier
    assert torch.allclose(table, state[TABLE].mean(0).expand_as(table))
    assert torch.equal(weights(result)["model.inner.lm_head.weight"], state["model.inner.lm_head.weight"])


def test_a_checkpoint_that_does_not_fit_is_one_line(trained, tmp_path):
    source, data, _ = trained
    with pytest.raises(CheckpointError, match="does not fit the model") as error:
        train(tiny_config(data, tmp_path / "run", f"load_checkpoint={source.run_dir}", "arch.hidden_size=64"))
    assert "\n" not in str(error.value)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        train(tiny_config(data, tmp_path / "run2", f"load_checkpoint={tmp_path / 'nowhere'}"))


def test_freeze_weights_trains_the_puzzle_table_only(trained, tmp_path):
    source, data, _ = trained
    result = train(tiny_config(data, tmp_path / "run", f"load_checkpoint={source.run_dir}", "freeze_weights=true"))
    a, b = weights(source), weights(result)
    assert not torch.equal(a[TABLE], b[TABLE])
    assert all(torch.equal(a[k], b[k]) for k in a if k != TABLE)
    with pytest.raises(ConfigError, match="nothing would train"):
        load_config(None, ["data_path=x", "freeze_weights=true", "arch.puzzle_emb_ndim=0"])


def test_min_eval_interval_skips_the_early_evaluations_and_keeps_their_checkpoints(trained, tmp_path):
    _, data, _ = trained
    evals = []
    config = tiny_config(data, tmp_path / "run", "epochs=6", "min_eval_interval=2")    # iterations 0, 1, 2
    result = train(config, callback=lambda e: evals.append(e.step) if e.kind == "eval" else None)
    assert evals == [result.total_steps]
    assert len(list((result.run_dir / "checkpoints").iterdir())) == 3
    assert dataclasses.replace(config).min_eval_interval == 2
