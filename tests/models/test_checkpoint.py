"""Weight files: hrm's format, the original's state dicts (with and without `_orig_mod.`), bad files."""
from __future__ import annotations


import pytest
import torch
import yaml

from hrm.models.checkpoint import CheckpointError, convert_main, load_checkpoint, save_weights
from hrm.reference.hrm import Fixture


@pytest.fixture(scope="module")
def fixture():
    from reference_helpers import fixture_path
    return Fixture(fixture_path("hrm_act_v1_small.json"))   # not the cached load_fixture(): this module keeps its own records


def eval_outputs(head, fixture, steps=4):
    head.eval()
    batch = fixture.batch(1)
    with torch.inference_mode():
        carry = head.initial_carry(batch)
        outs = []
        for _ in range(steps):
            carry, _, _, out, _ = head(carry, batch, return_keys=("logits", "q_halt_logits"))
            outs.append(out)
    return outs


def write_original(tmp_path, fixture, prefix: str):
    """An original-style run directory: step_N (torch.save'd state dict) + all_config.yaml."""
    run = tmp_path / f"run{len(prefix)}"
    run.mkdir()
    state = {prefix + k: v.clone() for k, v in fixture.params().items()}
    state[prefix + "model.inner.H_init"] = state[prefix + "model.inner.H_init"].bfloat16()  # stored in forward dtype
    torch.save(state, run / "step_100")
    arch = {k: v for k, v in fixture.meta["config"].items() if k not in ("seq_len", "vocab_size", "num_puzzle_identifiers")}
    arch |= {"name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
             "loss": {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}}
    (run / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch, "data_path": "missing", "global_batch_size": 4}))
    return run / "step_100"


@pytest.mark.parametrize("prefix", ["", "_orig_mod."])
def test_original_checkpoint_gives_same_outputs_as_our_format(tmp_path, fixture, prefix):
    original = write_original(tmp_path, fixture, prefix)
    head, cfg, info = load_checkpoint(original, arch_overrides={"seq_len": 16}, dtype=torch.float32)
    assert info["format"] == "original" and cfg.vocab_size == 12 and cfg.num_puzzle_identifiers == 10

    ours = tmp_path / "ours"
    assert convert_main([str(original), str(ours), "--seq-len", "16"]) == 0
    head2, cfg2, info2 = load_checkpoint(ours, dtype=torch.float32)
    assert info2["format"] == "hrm" and cfg2 == cfg

    # H_init went through bf16 in the original file (as in real checkpoints): the two loaders must agree exactly.
    for a, b in zip(eval_outputs(head, fixture), eval_outputs(head2, fixture)):
        torch.testing.assert_close(a["logits"], b["logits"], rtol=0, atol=0)
        torch.testing.assert_close(a["q_halt_logits"], b["q_halt_logits"], rtol=0, atol=0)


def test_original_checkpoint_without_bf16_rounding_matches_reference_exactly(tmp_path, fixture):
    from hrm.reference.hrm import ReferenceRun
    run = tmp_path / "r"
    run.mkdir()
    torch.save({"_orig_mod." + k: v for k, v in fixture.params().items()}, run / "step_1")
    head, _, _ = load_checkpoint(run / "step_1", dtype=torch.float32,
                                 arch_overrides={**fixture.meta["config"], "forward_dtype": "float32"})
    for a, r in zip(eval_outputs(head, fixture), eval_outputs(ReferenceRun(fixture).model(), fixture)):
        assert torch.equal(a["logits"], r["logits"])


def test_round_trip_in_our_format(tmp_path, fixture):
    from hrm.reference.hrm import ReferenceRun
    head = ReferenceRun(fixture).model()
    save_weights(head, fixture.config(), tmp_path / "ckpt", extra={"dataset_hash": "abc"})
    loaded, cfg, info = load_checkpoint(tmp_path / "ckpt", dtype=torch.float32)
    assert info["dataset_hash"] == "abc"
    for k, v in head.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] and not list(tmp_path.glob("ckpt/.*"))   # no temporaries left


def test_the_training_dtype_and_architecture_are_recorded(tmp_path, fixture):
    import json

    from hrm.models.checkpoint import trained_dtype
    from hrm.reference.hrm import ReferenceRun
    head = ReferenceRun(fixture).model()
    save_weights(head, fixture.config(), tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["dtype"] == "float32" and meta["arch"]["name"] == "hrm_act_v1"
    assert trained_dtype(tmp_path / "ckpt") == "float32"
    save_weights(head, fixture.config(), tmp_path / "converted", trained_dtype="bfloat16")     # hrm convert's case
    assert trained_dtype(tmp_path / "converted") == "bfloat16"
    # hrm checkpoints from before the "dtype" key: the arch's forward_dtype, unless it was "auto".
    for legacy, expected in (("float32", "float32"), ("auto", None)):
        meta.pop("dtype")
        meta["arch"]["forward_dtype"] = legacy
        (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
        assert trained_dtype(tmp_path / "ckpt") == expected
        load_checkpoint(tmp_path / "ckpt", dtype=torch.float32)                 # the legacy key still loads
        meta["dtype"] = "x"


def test_truncated_and_corrupted_files_are_clear_errors(tmp_path, fixture):
    from hrm.reference.hrm import ReferenceRun
    head = ReferenceRun(fixture).model()
    save_weights(head, fixture.config(), tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors file"):
        load_checkpoint(tmp_path / "ckpt")
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(tmp_path / "ckpt")

    original = write_original(tmp_path, fixture, "_orig_mod.")
    original.write_bytes(original.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="step_100: cannot read as a torch state dict"):
        load_checkpoint(original, arch_overrides={"seq_len": 16})

    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: malformed JSON at line 1"):
        load_checkpoint(tmp_path / "ckpt")


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path, fixture):
    run = tmp_path / "r"
    run.mkdir()
    state = {k: v for k, v in fixture.params().items() if k != "model.inner.lm_head.weight"}
    state["model.inner.extra.weight"] = torch.zeros(2)
    state["model.inner.H_level.layers.0.mlp.down_proj.weight"] = torch.zeros(64, 100)
    torch.save(state, run / "step_1")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(run / "step_1", arch_overrides={**fixture.meta["config"]})
    message = str(err.value)
    assert "missing keys: model.inner.lm_head.weight" in message
    assert "unexpected keys: model.inner.extra.weight" in message
    assert "model.inner.H_level.layers.0.mlp.down_proj.weight: file has (64, 100), model expects (64, 256)" in message


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"x": Evil()}, tmp_path / "step_1")
    with pytest.raises(CheckpointError, match="cannot read as a torch state dict"):
        load_checkpoint(tmp_path / "step_1", arch_overrides={"hidden_size": 64})


def test_missing_config_is_named(tmp_path, fixture):
    torch.save(fixture.params(), tmp_path / "step_1")
    with pytest.raises(CheckpointError, match="no all_config.yaml beside the checkpoint"):
        load_checkpoint(tmp_path / "step_1")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")


def _saved(tmp_path, fixture):
    from hrm.reference.hrm import ReferenceRun
    save_weights(ReferenceRun(fixture).model(), fixture.config(), tmp_path / "ckpt")
    return tmp_path / "ckpt"


def _edit_config(path, change):
    import json
    meta = json.loads((path / "config.json").read_text())
    change(meta)
    (path / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("change,message", [
    (lambda m: m.pop("arch"), "the key 'arch'"),
    (lambda m: m.update(arch="hrm_act_v1"), "'arch' must be a mapping"),
    (lambda m: m["arch"].update(hidden_size="64"), "arch.hidden_size must be an integer, got '64'"),
    (lambda m: m["arch"].update(expansion=[4]), "arch.expansion must be a number"),
    (lambda m: m["arch"].update(pos_encodings=3), "arch.pos_encodings must be a string"),
    (lambda m: m["arch"].update(name=7), "arch.name must be a string"),
    (lambda m: m["arch"].update(num_heads=0), "num_heads must be >= 1"),
    (lambda m: m["arch"].update(loss=[1]), "arch.loss must be a mapping"),
])
def test_a_malformed_config_json_names_the_key(tmp_path, fixture, change, message):
    path = _saved(tmp_path, fixture)
    _edit_config(path, change)
    with pytest.raises(CheckpointError, match=message.replace("[", r"\[")) as caught:
        load_checkpoint(path, dtype=torch.float32)
    assert "config.json" in str(caught.value)


def test_sizes_that_do_not_match_the_weights_are_refused_before_allocating(tmp_path, fixture, monkeypatch):
    """A config.json claiming 2**40 tokens is compared with the weights on the meta device: the error comes
    without a model of that size ever being built on the CPU."""
    import hrm.models.checkpoint as checkpoint

    path = _saved(tmp_path, fixture)
    _edit_config(path, lambda m: m["arch"].update(vocab_size=2**40))
    built = []
    real = checkpoint.build_model
    monkeypatch.setattr(checkpoint, "build_model", lambda config, **kw: built.append(kw["device"]) or real(config, **kw))
    with pytest.raises(CheckpointError, match="embed_tokens.embedding_weight: file has"):
        load_checkpoint(path, dtype=torch.float32)
    assert built == ["meta"]
