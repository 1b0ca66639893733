"""The transformer baseline (arch.name=transformer): its math, its size, its place in the registry and the ACT
wrapper, and its NumPy port."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hrm.models import HRMConfig, TransformerConfig, arch_config, build_model
from hrm.models.hrm_act_v1 import ReasoningModule
from hrm.training.config import ConfigError, load_config, preset_path

SMALL = dict(seq_len=12, vocab_size=9, num_puzzle_identifiers=5, batch_size=4, hidden_size=32, num_heads=2,
             expansion=2.0, puzzle_emb_ndim=32)


def batch(B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(1, 9, (B, 12), generator=g, dtype=torch.int32),
            "labels": torch.randint(1, 9, (B, 12), generator=g, dtype=torch.int32),
            "puzzle_identifiers": torch.randint(0, 5, (B,), generator=g, dtype=torch.int32)}


@pytest.mark.parametrize("hrm, transformer", [
    (dict(), dict(L_layers=8)),                                                     # the released 27M
    (dict(hidden_size=64, num_heads=4, H_layers=2, L_layers=2, puzzle_emb_ndim=64), # the demo
     dict(hidden_size=64, num_heads=4, L_layers=4, puzzle_emb_ndim=64)),
])
def test_the_baseline_has_hrms_parameter_count_at_its_layer_count(hrm, transformer):
    sizes = dict(seq_len=81, vocab_size=11)
    count = lambda config: sum(p.numel() for p in build_model(config, torch.float32).parameters())  # noqa: E731
    assert count(TransformerConfig(**sizes, **transformer)) == count(HRMConfig(**sizes, **hrm))


def test_one_step_is_one_pass_of_the_blocks_over_the_embedded_puzzle():
    torch.manual_seed(0)
    head = build_model(TransformerConfig(**SMALL, L_layers=3), torch.float32).eval()
    inner = head.model.inner
    with torch.no_grad():
        inner.q_head.weight.normal_(0, 0.1)        # non-zero Q logits, so that they are checked too
        inner.puzzle_emb.weights.normal_(0, 0.1)
    b = batch()
    carry = head.initial_carry(b)
    carry, _, _, outputs, all_halted = head(carry, b, return_keys=("logits", "q_halt_logits", "q_continue_logits"))

    # By hand: z = Blocks(H_init + x) with the layers' own pieces.
    x = inner.input_embeddings(b["inputs"], b["puzzle_identifiers"])
    z = inner.H_init + x
    for block in inner.blocks.layers:
        z = block(z, inner.rope())
    P = inner.puzzle_emb_len
    torch.testing.assert_close(outputs["logits"], inner.lm_head(z)[:, P:], rtol=0, atol=0)
    q = inner.q_head(z[:, 0])
    torch.testing.assert_close(outputs["q_halt_logits"], q[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(outputs["q_continue_logits"], q[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(carry.inner_carry["z_H"], z, rtol=0, atol=0)
    assert list(carry.inner_carry) == ["z_H"] and bool(all_halted) and carry.steps.tolist() == [1] * 4


def test_in_training_every_row_halts_after_one_pass_and_no_q_target_is_computed():
    torch.manual_seed(0)
    head = build_model(TransformerConfig(**SMALL, L_layers=2), torch.float32).train()
    calls = []
    head.model.inner.register_forward_hook(lambda *_: calls.append(1))
    carry = head.initial_carry(batch())
    carry, loss, metrics, _, all_halted = head(carry, batch())
    assert len(calls) == 1                                  # no second forward for a Q-continue target
    assert bool(all_halted) and "q_continue_loss" not in metrics
    loss.backward()
    # The continue logit takes part in no loss: its row of the Q head gets no gradient.
    assert head.model.inner.q_head.weight.grad[1].abs().max() == 0
    assert head.model.inner.q_head.bias.grad[1] == 0 and head.model.inner.q_head.bias.grad[0] != 0
    # Every layer is trained (full backpropagation through the one pass).
    assert all(p.grad is not None and p.grad.abs().max() > 0 for n, p in head.named_parameters()
               if n.endswith("proj.weight"))


def test_with_more_steps_the_stack_is_reapplied_to_its_own_output():
    torch.manual_seed(0)
    head = build_model(TransformerConfig(**SMALL, L_layers=1, halt_max_steps=3), torch.float32).eval()
    inner, b = head.model.inner, batch()
    carry = head.initial_carry(b)
    for _ in range(3):
        previous = carry.inner_carry["z_H"] if carry.steps.max() > 0 else inner.H_init.expand(4, inner.carry_positions, -1)
        carry, _, _, _, all_halted = head(carry, b)
        x = inner.input_embeddings(b["inputs"], b["puzzle_identifiers"])
        torch.testing.assert_close(carry.inner_carry["z_H"], inner.blocks(previous, x, inner.rope()), rtol=0, atol=0)
    assert bool(all_halted) and carry.steps.tolist() == [3] * 4


def test_the_config_loader_builds_the_architecture_arch_name_names():
    config = load_config(None, ["arch.L_layers=2", "arch.name=transformer"])   # the name is applied first
    assert isinstance(config.arch, TransformerConfig) and config.arch.L_layers == 2
    with pytest.raises(ConfigError, match=r"unknown config key 'arch.H_cycles'.*\(the keys of architecture transformer\)"):
        load_config(None, ["arch.name=transformer", "arch.H_cycles=2"])
    with pytest.raises(ConfigError, match="unknown architecture 'transfomer'; available: hrm_act_v1, transformer"):
        load_config(None, ["arch.name=transfomer"])
    assert isinstance(arch_config({"name": "transformer", "L_layers": 3}), TransformerConfig)
    # Presets compose: an arch block by name, replaced from the command line.
    demo = load_config(preset_path("demo"), ["arch=transformer_demo"])
    assert isinstance(demo.arch, TransformerConfig) and demo.arch.hidden_size == 64 and demo.lr == 2e-3
    with pytest.raises(ConfigError, match="no architecture block named 'transformer_dem'; did you mean 'transformer_demo'"):
        load_config(preset_path("demo"), ["arch=transformer_dem"])


# NOTE: the PyTorch model rotates q and k in float32 (its RoPE tables' dtype, as the originals) even when it
# computes in float64, so the float64 port agrees with it to float32 rounding only.
@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-5), (np.float64, 1e-6)])
def test_the_numpy_port_agrees_with_pytorch(dtype, tolerance):
    from dataclasses import asdict

    from hrm.act_driver import initial_carry
    from hrm.ports.numpy import NumpyTransformer, numpy_model

    torch.manual_seed(1)
    config = TransformerConfig(**SMALL, L_layers=2, halt_max_steps=2)
    head = build_model(config, torch.float64 if dtype == np.float64 else torch.float32).eval()
    with torch.no_grad():
        head.model.inner.q_head.weight.normal_(0, 0.1)
    port = numpy_model(asdict(config), {k: v.numpy() for k, v in head.state_dict().items()}, dtype)
    assert isinstance(port, NumpyTransformer) and list(port.carry_init) == ["z_H"]
    b = batch()
    ours = initial_carry(port, 4)
    ref = {"z_H": torch.from_numpy(ours["z_H"]).to(head.model.inner.forward_dtype)}
    for _ in range(2):                                       # two steps: the carry feeds the next one
        out = port(ours, b["inputs"].numpy(), b["puzzle_identifiers"].numpy())
        with torch.no_grad():
            ref, logits, (q_halt, _) = head.model.inner(ref, b)
        ours = out.carry
        for mine, theirs in ((out.logits, logits), (out.carry["z_H"], ref["z_H"]), (out.q_halt, q_halt)):
            theirs = theirs.numpy()
            assert mine.dtype == (np.float32 if mine is out.q_halt else dtype)
            assert np.abs(mine - theirs).max() / np.abs(theirs).max() < tolerance
