"""Weight averaging in training (ema=true, TRM's recipe): evaluated, checkpointed, exported and resumed exactly."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from training_fixtures import make_dataset, tiny_config

from hrm.training.trainer import Trainer

EMA_ARGS = ("ema=true", "ema_rate=0.9", "epochs=4", "eval_interval=2", "checkpoint_interval=5")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "reverse-map")


def run(config, callback=None):
    trainer = Trainer(config, callback)
    try:
        return trainer, trainer.run()
    finally:
        trainer.close()


def test_the_checkpoint_holds_the_averages_and_the_live_weights_resume(data, tmp_path):
    trainer, result = run(tiny_config(data, tmp_path / "run", *EMA_ARGS))
    ckpt = result.checkpoint
    weights = load_file(str(ckpt / "model.safetensors"))
    state = load_file(str(ckpt / "train_state.safetensors"))
    live = {k.removeprefix("live."): v for k, v in state.items() if k.startswith("live.")}
    params = dict(trainer.head.named_parameters())
    assert set(live) == set(params)
    for name, p in params.items():
        assert torch.equal(live[name], p.detach())                          # live: what training goes on from
        assert torch.equal(weights[name], trainer.state.ema.shadow[name])  # model.safetensors: the averages
    assert any(not torch.equal(weights[n], live[n]) for n in live)          # they differ (the test can fail)
    # Buffers (the puzzle table, trained by SignSGD) are the live ones, as in the official EMA copy.
    assert torch.equal(weights["model.inner.puzzle_emb.weights"], trainer.head.model.inner.puzzle_emb.weights)
    assert json.loads((ckpt / "config.json").read_text())["weights"].startswith("averaged")


def test_the_trainer_reports_the_averaged_weights_as_hrm_eval_reads_them(data, tmp_path):
    from hrm.cli import main as hrm
    _, result = run(tiny_config(data, tmp_path / "run", *EMA_ARGS))
    out = tmp_path / "eval"
    assert hrm(["eval", f"checkpoint={result.run_dir}", f"out={out}", "progress=false", "dtype=float32"]) == 0
    metrics = json.loads((out / "results.json").read_text())["metrics"]
    for name in ("exact_accuracy", "accuracy", "lm_loss"):
        assert metrics[name] == pytest.approx(result.eval_metrics[f"eval/{name}"], rel=1e-6, abs=1e-7), name


def test_a_run_with_averaging_resumes_bit_for_bit(data, tmp_path):
    config = tiny_config(data, tmp_path / "whole", *EMA_ARGS)
    _, whole = run(config)

    def stop_at_7(event):
        return False if event.kind == "log" and event.step == 7 else None
    _, first = run(dataclasses.replace(config, checkpoint_path=str(tmp_path / "split")), stop_at_7)
    assert first.stopped_early and first.step == 7
    _, second = run(dataclasses.replace(config, checkpoint_path=None, resume=str(tmp_path / "split")))
    assert second.step == whole.step
    for name in ("model.safetensors", "train_state.safetensors"):
        a, b = load_file(str(whole.checkpoint / name)), load_file(str(second.checkpoint / name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_resuming_with_another_averaging_setting_is_one_clear_error(data, tmp_path):
    from hrm.models.checkpoint import CheckpointError
    config = tiny_config(data, tmp_path / "run", *EMA_ARGS)
    run(config)
    with pytest.raises(CheckpointError, match="averaged weights but this run does not average them"):
        Trainer(dataclasses.replace(config, ema=False, checkpoint_path=None, resume=str(tmp_path / "run")))


def test_hrm_eval_evaluates_the_live_weights_when_asked(data, tmp_path):
    from hrm.cli import main as hrm
    trainer, result = run(tiny_config(data, tmp_path / "run", *EMA_ARGS))
    outs = {}
    for weights in ("saved", "live"):
        out = tmp_path / weights
        assert hrm(["eval", f"checkpoint={result.run_dir}", f"out={out}", "progress=false", "dtype=float32",
                    f"weights={weights}"]) == 0
        outs[weights] = json.loads((out / "results.json").read_text())
    assert outs["saved"]["protocol"]["weights"].startswith("averaged")
    assert outs["live"]["protocol"]["weights"] == "live"
    assert outs["saved"]["metrics"]["lm_loss"] != outs["live"]["metrics"]["lm_loss"]


def test_weights_live_on_a_run_that_did_not_average_evaluates_its_saved_weights(data, tmp_path):
    from hrm.cli import main as hrm
    _, result = run(tiny_config(data, tmp_path / "run"))
    assert hrm(["eval", f"checkpoint={result.run_dir}", f"out={tmp_path / 'e'}", "progress=false", "weights=live"]) == 0
    # A run without averaging saves its live weights: weights=live is what it holds anyway.
    assert json.loads((tmp_path / "e" / "results.json").read_text())["protocol"]["weights"] == "live"
