"""Config: presets, `key=value` overrides with the original's names, errors, and the original's all_config.yaml."""
from __future__ import annotations

import textwrap

import pytest

from hrm.training.config import (PRESETS, ConfigError, TrainConfig, all_keys, load_config, parse_overrides,
                                 save_config)

ORIGINAL_ALL_CONFIG = """\
arch:
  H_cycles: 2
  H_layers: 4
  L_cycles: 2
  L_layers: 4
  expansion: 4
  halt_exploration_prob: 0.1
  halt_max_steps: 16
  hidden_size: 512
  loss:
    loss_type: stablemax_cross_entropy
    name: losses@ACTLossHead
  name: hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1
  num_heads: 8
  pos_encodings: rope
  puzzle_emb_ndim: 512
beta1: 0.9
beta2: 0.95
checkpoint_every_eval: true
checkpoint_path: checkpoints/Sudoku-extreme-1k-aug-1000 ACT-torch/HierarchicalReasoningModel_ACTV1 pastel-lorikeet
data_path: data/sudoku-extreme-1k-aug-1000
epochs: 20000
eval_interval: 2000
eval_save_outputs: []
global_batch_size: 384
lr: 7.0e-05
lr_min_ratio: 1.0
lr_warmup_steps: 2000
project_name: Sudoku-extreme-1k-aug-1000 ACT-torch
puzzle_emb_lr: 7.0e-05
puzzle_emb_weight_decay: 1.0
run_name: HierarchicalReasoningModel_ACTV1 pastel-lorikeet
seed: 0
weight_decay: 1.0
"""


def test_defaults_are_the_originals():
    c = TrainConfig()
    assert (c.global_batch_size, c.epochs, c.eval_interval, c.lr, c.lr_min_ratio, c.lr_warmup_steps) == (768, 100000, 10000, 1e-4, 1.0, 2000)
    assert (c.beta1, c.beta2, c.weight_decay, c.puzzle_emb_weight_decay, c.puzzle_emb_lr, c.seed) == (0.9, 0.95, 0.1, 0.1, 1e-2, 0)
    assert (c.arch.hidden_size, c.arch.H_layers, c.arch.L_layers, c.arch.halt_max_steps) == (512, 4, 4, 16)


def test_readme_command_line_works():
    # The original README's single-GPU Sudoku command, after `hrm train`.
    argv = ("data_path=data/sudoku-extreme-1k-aug-1000 epochs=20000 eval_interval=2000 global_batch_size=384 "
            "lr=7e-5 puzzle_emb_lr=7e-5 weight_decay=1.0 puzzle_emb_weight_decay=1.0 arch.L_cycles=8").split()
    c = load_config(None, argv)
    assert c.data_path == "data/sudoku-extreme-1k-aug-1000"
    assert (c.epochs, c.eval_interval, c.global_batch_size) == (20000, 2000, 384)
    assert isinstance(c.lr, float) and c.lr == 7e-5 and c.puzzle_emb_lr == 7e-5
    assert c.weight_decay == 1.0 and c.arch.L_cycles == 8 and isinstance(c.arch.L_cycles, int)


def test_override_types_lists_null_and_shortcuts():
    c = load_config(None, ["arch.loss.loss_type=softmax_cross_entropy", "arch.pos_encodings=learned",
                           "eval_save_outputs=[inputs,logits]", "run_name=null", "compile=false",
                           "checkpoint_every_eval=False", "logger=tensorboard", "+seed=3", "epochs=1e4",
                           "eval_interval=1000", "arch.expansion=2"])
    assert c.arch.loss.loss_type == "softmax_cross_entropy" and c.arch.pos_encodings == "learned"
    assert c.eval_save_outputs == ["inputs", "logits"] and c.run_name is None
    assert c.compile is False and c.checkpoint_every_eval is False
    assert c.logging.logger == "tensorboard" and c.seed == 3 and c.epochs == 10000
    assert load_config(None, ["compile=auto"]).compile is None
    assert load_config(None, ["eval_save_outputs=inputs,labels"]).eval_save_outputs == ["inputs", "labels"]


@pytest.mark.parametrize("argv, message", [
    (["arch.L_cycle=8"], "unknown config key 'arch.L_cycle'; did you mean 'arch.L_cycles'?"),
    (["L_cycles=8"], "did you mean 'arch.L_cycles'?"),
    (["global_batchsize=8"], "did you mean 'global_batch_size'?"),
    (["puzzle_emb_lr_=1"], "did you mean 'puzzle_emb_lr'?"),
    (["lr=fast"], "lr: expected a number, got 'fast'"),
    (["epochs=1.5"], "epochs: expected an integer"),
    (["arch.hidden_size=true"], "expected an integer"),
    (["checkpoint_every_eval=maybe"], "expected true or false"),
    (["lr"], "is not a key=value override"),
    (["arch=small"], "no architecture block named 'small'"),
    (["arch.loss=small"], "'arch.loss' is a section"),
    (["arch.loss.name=losses@Other"], "arch.loss.name"),
    (["epochs=100", "eval_interval=30"], "must divide epochs"),
    (["arch.hidden_size=100", "arch.num_heads=8"], "not divisible by num_heads"),
    (["logger=mlflow"], "logger must be none, tensorboard or wandb"),
    (["lr_min_ratio=2"], "lr_min_ratio"),
])
def test_override_errors_are_clear(argv, message):
    with pytest.raises(ConfigError, match=None) as info:
        load_config(None, argv)
    assert message in str(info.value)


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lr: 1e-4\narch:\n  hidden_size: 64\n  L_cycle: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: unknown config key 'arch.L_cycle'; did you mean 'arch.L_cycles'"):
        load_config(path)
    path.write_text("lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2:1: malformed YAML"):
        load_config(path)
    path.write_text("epochs: 10\nglobal_batch_size: many\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: global_batch_size: expected an integer, got 'many'"):
        load_config(path)
    with pytest.raises(ConfigError, match="no config file or preset named 'sudoku_extrem_1k'; did you mean 'sudoku_extreme_1k'"):
        load_config(__import__("hrm.training.config", fromlist=["preset_path"]).preset_path("sudoku_extrem_1k"))


def test_original_all_config_yaml_loads(tmp_path):
    path = tmp_path / "all_config.yaml"
    path.write_text(ORIGINAL_ALL_CONFIG)
    c = load_config(path)
    assert c.arch.name == "hrm_act_v1"          # the original's class path, resolved by the registry
    assert c.arch.loss.loss_type == "stablemax_cross_entropy" and c.arch.puzzle_emb_ndim == 512
    assert c.global_batch_size == 384 and c.lr == 7e-5 and c.eval_save_outputs == []
    assert c.run_name == "HierarchicalReasoningModel_ACTV1 pastel-lorikeet"


def test_the_dtype_is_a_run_setting_and_the_originals_key_sets_it():
    assert load_config(None, ["arch.forward_dtype=float32"]).dtype == "float32"
    assert load_config(None, ["dtype=bfloat16"]).dtype == "bfloat16"
    assert not hasattr(load_config(None, []).arch, "forward_dtype")
    with pytest.raises(ConfigError, match="dtype must be auto or one of float32, bfloat16, float16, float64, got 'float8'"):
        load_config(None, ["dtype=float8"])


def test_saved_config_round_trips(tmp_path):
    c = load_config(None, ["arch.L_cycles=8", "lr=3e-4", "eval_save_outputs=[logits]", "data.eval_max_examples=64"])
    save_config(c, tmp_path / "all_config.yaml")
    assert load_config(tmp_path / "all_config.yaml") == c


EXPECTED_PRESETS = {
    # name: (data_path, batch, epochs, eval_interval, lr, puzzle_emb_lr, wd, puzzle_emb_wd, lr_min_ratio)
    "sudoku_extreme_1k": ("data/sudoku-extreme-1k-aug-1000", 768, 20000, 2000, 1e-4, 1e-4, 1.0, 1.0, 1.0),
    "sudoku_extreme_1k_single_gpu": ("data/sudoku-extreme-1k-aug-1000", 384, 20000, 2000, 7e-5, 7e-5, 1.0, 1.0, 1.0),
    "maze_30x30_hard_1k": ("data/maze-30x30-hard-1k", 768, 20000, 2000, 1e-4, 1e-4, 1.0, 1.0, 1.0),
    "arc1": ("data/arc-aug-1000", 768, 100000, 10000, 1e-4, 1e-2, 0.1, 0.1, 1.0),
    "arc2": ("data/arc-2-aug-1000", 768, 100000, 10000, 1e-4, 1e-2, 0.1, 0.1, 1.0),
    "sudoku_hard_full": ("data/sudoku-hard-full", 2304, 100, 10, 3e-4, 3e-4, 0.1, 0.1, 0.1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_PRESETS))
def test_paper_presets_have_the_spec_hyper_parameters(name):
    c = load_config(PRESETS / f"{name}.yaml")
    got = (c.data_path, c.global_batch_size, c.epochs, c.eval_interval, c.lr, c.puzzle_emb_lr, c.weight_decay,
           c.puzzle_emb_weight_decay, c.lr_min_ratio)
    assert got == EXPECTED_PRESETS[name]
    assert (c.arch.hidden_size, c.arch.num_heads, c.arch.H_layers, c.arch.L_layers, c.arch.H_cycles) == (512, 8, 4, 4, 2)
    assert c.lr_warmup_steps == 2000 and (c.beta1, c.beta2) == (0.9, 0.95)
    if name == "sudoku_hard_full":
        assert (c.arch.L_cycles, c.arch.halt_max_steps, c.arch.pos_encodings, c.arch.loss.loss_type) == (
            8, 8, "learned", "softmax_cross_entropy")
    else:
        assert (c.arch.L_cycles, c.arch.halt_max_steps, c.arch.pos_encodings, c.arch.loss.loss_type) == (
            2, 16, "rope", "stablemax_cross_entropy")


TRM_PRESETS = {
    # name: (data_path, epochs, eval_interval, puzzle_emb_lr, wd = puzzle_emb_wd, L_cycles, mlp_t, pos_encodings)
    "trm_sudoku_extreme_mlp": ("data/sudoku-extreme-1k-aug-1000", 50000, 5000, 1e-4, 1.0, 6, True, "none"),
    "trm_sudoku_extreme_att": ("data/sudoku-extreme-1k-aug-1000", 50000, 5000, 1e-4, 1.0, 6, False, "rope"),
    "trm_maze_30x30_hard": ("data/maze-30x30-hard-1k", 50000, 5000, 1e-4, 1.0, 4, False, "rope"),
    "trm_arc1": ("data/arc1concept-aug-1000", 100000, 10000, 1e-2, 0.1, 4, False, "rope"),
    "trm_arc2": ("data/arc2concept-aug-1000", 100000, 10000, 1e-2, 0.1, 4, False, "rope"),
}


@pytest.mark.parametrize("name", sorted(TRM_PRESETS))
def test_trm_presets_have_the_official_runs_hyper_parameters(name):
    """The official README's commands of the published runs (configs/README.md), EMA at 0.999 in every one."""
    c = load_config(PRESETS / f"{name}.yaml")
    a = c.arch
    got = (c.data_path, c.epochs, c.eval_interval, c.puzzle_emb_lr, c.weight_decay, a.L_cycles, a.mlp_t, a.pos_encodings)
    assert got == TRM_PRESETS[name] and c.puzzle_emb_weight_decay == c.weight_decay
    assert a.name == "trm" and (a.hidden_size, a.num_heads, a.L_layers, a.H_cycles, a.puzzle_emb_len) == (512, 8, 2, 3, 16)
    assert (a.halt_max_steps, a.halt_exploration_prob, a.no_ACT_continue, a.halting_policy.rule) == (16, 0.1, True, "q_halt > 0")
    assert (c.global_batch_size, c.lr, c.lr_min_ratio, c.lr_warmup_steps, (c.beta1, c.beta2)) == (768, 1e-4, 1.0, 2000, (0.9, 0.95))
    assert c.ema and c.ema_rate == 0.999


def test_every_preset_loads():
    names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
    assert set(EXPECTED_PRESETS) <= set(names)
    for name in names:
        load_config(PRESETS / f"{name}.yaml")


def test_keys_cover_the_originals():
    keys = set(all_keys())
    original = ("data_path global_batch_size epochs eval_interval checkpoint_every_eval lr lr_min_ratio lr_warmup_steps "
                "beta1 beta2 weight_decay puzzle_emb_weight_decay puzzle_emb_lr seed eval_save_outputs project_name "
                "run_name checkpoint_path").split()
    assert set(original) <= keys
    assert {"arch.H_cycles", "arch.L_cycles", "arch.halt_max_steps", "arch.loss.loss_type"} <= keys
    assert parse_overrides(["a.b=c=d"]) == [("a.b", "c=d")]
