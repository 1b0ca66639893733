"""Checkpoints written by the official TRM code load, evaluate and convert (the TRM issue's item 5).

The official code saves `torch.save(state_dict)` of the compiled loss head (keys `_orig_mod.model.inner.*`,
H_init/L_init in the forward dtype, bf16 in every published run) to `step_<N>`, the EMA copy's weights when
`ema=True`, with `all_config.yaml` (PretrainConfig.model_dump(): `data_paths` a list, the arch under its
class name) beside it. Here a TRM trained by hrm with EMA is written that way, then `hrm eval` reads it
directly and after `hrm convert`, and both give the answers of hrm's own checkpoint of the same weights.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file

from training_fixtures import make_dataset, tiny_config

from hrm.cli import main as hrm
from hrm.training import train

TRM = ("arch=trm_demo", "arch.hidden_size=32", "arch.num_heads=2", "arch.expansion=2", "arch.H_cycles=2",
       "arch.L_cycles=2", "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=32", "arch.puzzle_emb_len=2",
       "ema=true", "ema_rate=0.9", "epochs=4")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trm-original")
    data = make_dataset(root / "data")
    result = train(tiny_config(data, root / "run", *TRM))
    return result, data


def write_official_run(folder, result, data, prefix: str = "_orig_mod.", bf16_init: bool = True):
    """What the official pretrain.py leaves: folder/step_N and folder/all_config.yaml."""
    folder.mkdir()
    state = load_file(str(result.checkpoint / "model.safetensors"))      # the EMA weights, as the official saves
    state = {prefix + k: (v.bfloat16() if bf16_init and k.endswith(("H_init", "L_init")) else v) for k, v in state.items()}
    torch.save(state, folder / f"step_{result.step}")
    ours = yaml.safe_load((result.run_dir / "all_config.yaml").read_text())["arch"]
    arch = {k: ours[k] for k in ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "expansion", "num_heads",
                                 "pos_encodings", "puzzle_emb_ndim", "puzzle_emb_len", "rms_norm_eps", "rope_theta",
                                 "halt_max_steps", "halt_exploration_prob", "mlp_t", "no_ACT_continue")}
    arch |= {"name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1",
             "forward_dtype": "bfloat16" if bf16_init else "float32",
             "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}}
    config = {"arch": arch, "data_paths": [str(data)], "data_paths_test": [], "evaluators": [],
              "global_batch_size": 16, "epochs": 4, "eval_interval": 2, "checkpoint_every_eval": True, "lr": 3e-3,
              "lr_min_ratio": 1.0, "lr_warmup_steps": 5, "beta1": 0.9, "beta2": 0.95, "weight_decay": 0.1,
              "puzzle_emb_weight_decay": 0.1, "puzzle_emb_lr": 1e-2, "seed": 0, "min_eval_interval": 0, "ema": True,
              "ema_rate": 0.9, "freeze_weights": False, "load_checkpoint": None, "project_name": "Data ACT-torch",
              "run_name": "TinyRecursiveReasoningModel_ACTV1 tiny-test", "checkpoint_path": str(folder),
              "eval_save_outputs": []}
    (folder / "all_config.yaml").write_text(yaml.safe_dump(config))
    return folder / f"step_{result.step}"


def eval_predictions(tmp_path, name, *args):
    out = tmp_path / name
    assert hrm(["eval", *args, f"out={out}", "progress=false", "device=cpu", "batch_size=16"]) == 0
    return load_numpy(str(out / "predictions.safetensors")), json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("prefix", ["_orig_mod.", ""], ids=["compiled-keys", "plain-keys"])
def test_an_official_trm_checkpoint_evaluates_directly_and_after_conversion(trained, tmp_path, prefix):
    result, data = trained
    original = write_official_run(tmp_path / "official", result, data, prefix=prefix, bf16_init=False)
    # weights_only=True: a pickle that is not a plain state dict is refused, never executed.
    assert isinstance(torch.load(original, weights_only=True), dict)
    ours, _ = eval_predictions(tmp_path, "ours", f"checkpoint={result.checkpoint}")
    direct, results = eval_predictions(tmp_path, "direct", f"checkpoint={original}")    # data_paths[0] from the yaml
    assert results["protocol"]["halt_max_steps"] == 2
    assert np.array_equal(direct["predictions"], ours["predictions"])
    assert np.array_equal(direct["q_halt_logits"], ours["q_halt_logits"])
    assert hrm(["convert", str(original), str(tmp_path / "converted")]) == 0
    converted, _ = eval_predictions(tmp_path, "conv", f"checkpoint={tmp_path / 'converted'}", f"data_path={data}")
    assert np.array_equal(converted["predictions"], ours["predictions"])
    config = json.loads((tmp_path / "converted" / "config.json").read_text())
    assert config["arch"]["name"] == "trm" and config["arch"]["puzzle_emb_len"] == 2


def test_bf16_initial_states_as_the_published_runs_save_them(trained, tmp_path):
    result, data = trained
    original = write_official_run(tmp_path / "official", result, data)
    direct, _ = eval_predictions(tmp_path, "direct", f"checkpoint={original}", "dtype=float32")
    ours, _ = eval_predictions(tmp_path, "ours", f"checkpoint={result.checkpoint}", "dtype=float32")
    # H_init/L_init went through bf16: nearly, not exactly, the same answers.
    assert (direct["predictions"] == ours["predictions"]).mean() > 0.9


def test_an_hrm_checkpoint_under_a_trm_config_is_a_one_line_error(trained, tmp_path, capsys):
    result, data = trained
    original = write_official_run(tmp_path / "official", result, data)
    state = torch.load(original, weights_only=True)
    state["_orig_mod.model.inner.H_level.layers.0.mlp.down_proj.weight"] = torch.zeros(4, 4)
    torch.save(state, original)
    assert hrm(["eval", f"checkpoint={original}", "progress=false"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "H_level" in err[0], err


def test_seq_len_of_learned_positions_counts_trms_puzzle_positions(tmp_path):
    """Learned positions store P + S rows; TRM's P is puzzle_emb_len (here 2, where HRM's rule gives 1)."""
    from hrm.models import arch_config, build_model
    from hrm.models.checkpoint import load_checkpoint

    arch = dict(name="trm", hidden_size=32, num_heads=2, puzzle_emb_ndim=32, puzzle_emb_len=2, pos_encodings="learned",
                L_layers=2, H_cycles=2, L_cycles=3, halt_max_steps=8, seq_len=5, vocab_size=6, num_puzzle_identifiers=3)
    torch.manual_seed(0)
    head = build_model(arch_config(arch))
    torch.save({"_orig_mod." + k: v for k, v in head.state_dict().items()}, tmp_path / "step_1")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": {
        "name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1", "hidden_size": 32, "num_heads": 2,
        "puzzle_emb_len": 2, "pos_encodings": "learned", "H_layers": 0, "L_layers": 2, "H_cycles": 2, "L_cycles": 3,
        "expansion": 4, "halt_max_steps": 8, "halt_exploration_prob": 0.5, "mlp_t": False, "no_ACT_continue": True,
        "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}}, "data_paths": ["elsewhere"]}))
    loaded, loaded_arch, _ = load_checkpoint(tmp_path / "step_1", dtype=torch.float32)
    assert loaded_arch.seq_len == 5 and loaded_arch.puzzle_emb_len == 2
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), loaded.state_dict().values()))
