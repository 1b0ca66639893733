"""TRM (arch.name=trm): against the fixture recorded from the official code, its math, its configs, its
halting policies, its state dict and its NumPy port."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from hrm.halting import Q_HALT_GT_Q_CONTINUE, Q_HALT_GT_ZERO
from hrm.models import TRMConfig, arch_config, build_model
from hrm.reference.hrm import INIT_MAX_DIFFERING, INIT_MAX_ULP, Fixture, ReferenceRun, format_report, runner
from hrm.reference.trm import TRMReferenceRun

SMALL = dict(seq_len=12, vocab_size=9, num_puzzle_identifiers=5, batch_size=4, hidden_size=32, num_heads=2,
             expansion=2.0, puzzle_emb_ndim=32, H_cycles=2, L_cycles=2, L_layers=2, halt_max_steps=3)


def batch(B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"inputs": torch.randint(1, 9, (B, 12), generator=g, dtype=torch.int32),
            "labels": torch.randint(1, 9, (B, 12), generator=g, dtype=torch.int32),
            "puzzle_identifiers": torch.randint(0, 5, (B,), generator=g, dtype=torch.int32)}


def small_model(seed=0, **changes):
    torch.manual_seed(seed)
    head = build_model(TRMConfig(**{**SMALL, **changes}), torch.float32)
    with torch.no_grad():                       # non-zero Q logits, so that they are checked too
        head.model.inner.q_head.weight.normal_(0, 0.1)
        head.model.inner.puzzle_emb.weights.normal_(0, 0.1)
    return head


# --- the fixture recorded from the official code ------------------------------------------------------

@pytest.fixture(scope="module")
def fixture():
    from reference_helpers import fixture_path
    return Fixture(fixture_path("trm_small.json"))


@pytest.fixture(scope="module")
def run(fixture):
    run = runner(fixture)
    run.run_all()
    return run


def test_the_trm_fixture_gets_the_trm_replay(fixture, run):
    assert fixture.architecture == "trm" and isinstance(run, TRMReferenceRun)


@pytest.mark.parametrize("group", list(TRMReferenceRun.GROUPS))
def test_every_group_is_replayed_and_matches(run, group):
    assert run.absent == {}, run.absent                     # none skipped
    assert group in run.groups and run.groups[group].comparisons, f"no records compared for {group}"
    assert run.groups[group].ok, format_report({group: run.groups[group]})


def test_every_recorded_output_is_compared(fixture, run):
    """Everything except the inputs we feed in (batches, the perturbed weights) is checked."""
    compared = {c.name for g in run.groups.values() for c in g.comparisons}
    perturbed = tuple(f"{prefix}.{name}" for prefix in ("param", "variant_mlp_t.param")
                      for name in fixture.meta["perturbed_tensors"]["names"])
    unchecked = [k for k in fixture.records if k not in compared and not k.startswith(("batch",) + perturbed)]
    assert unchecked == []


def test_the_init_draws_the_officials_numbers(run):
    """Bit-identical on most CPUs; where the C library's float32 erfinv rounds differently, a few ulps (the
    bounds of hrm.reference.hrm, which a wrong draw order or constant exceeds by far)."""
    init = run.groups["init"].comparisons
    names = {c.name for c in init}
    assert "param.model.inner.L_level.layers.1.mlp.down_proj.weight" in names
    assert "variant_mlp_t.param.model.inner.L_level.layers.0.mlp_t.gate_up_proj.weight" in names
    assert "variant_learned.param.model.inner.embed_pos.embedding_weight" in names
    report = format_report({"init": run.groups["init"]})
    assert all(c.max_ulp is not None and c.max_ulp <= INIT_MAX_ULP for c in init), report
    assert sum(c.differing for c in init) <= INIT_MAX_DIFFERING * sum(c.elements for c in init), report


def test_the_sidecars_quick_checks(fixture):
    q = fixture.meta["quick_checks"]
    head = ReferenceRun(fixture).model().train()
    b = fixture.batch(1)
    _, loss, metrics, _, _ = head(head.initial_carry(b), b)
    loss = loss.detach()
    assert float(loss) == pytest.approx(q["train_call1_loss"], rel=1e-6)
    assert float(metrics["lm_loss"]) == pytest.approx(q["train_call1_lm_loss"], rel=1e-6)
    assert float(metrics["q_halt_loss"]) == pytest.approx(q["train_call1_q_halt_loss"], rel=1e-6)
    assert "q_continue_loss" not in metrics


@pytest.mark.parametrize("name, scale", [("model.inner.L_level.layers.1.mlp.down_proj.weight", 1.001),
                                         ("model.inner.H_init", 1.001)])
def test_a_wrong_model_fails_the_check(fixture, name, scale):
    run = TRMReferenceRun(fixture)
    params = fixture.params()
    params[name] = params[name] * scale
    run.run_eval("eval", run.model(params), "eval")
    assert not run.groups["eval"].ok


def test_hrms_one_step_gradient_would_fail_the_grad_records(fixture, monkeypatch):
    """The grad records tell TRM's full gradient through the last cycle from HRM's 1-step gradient."""
    from hrm.models import trm

    def one_step_cycle(self, z_H, z_L, x, cos_sin):
        with torch.no_grad():
            for _ in range(self.config.L_cycles - 1):
                z_L = self.L_level(z_L, z_H + x, cos_sin)
        z_L = self.L_level(z_L, z_H + x, cos_sin)
        return self.L_level(z_H, z_L, cos_sin), z_L

    monkeypatch.setattr(trm.TRMInner, "cycle", one_step_cycle)
    run = TRMReferenceRun(fixture)
    run.run_train("train_noexplore", "train_noexplore", inject=False, grad_group="grad", halt_exploration_prob=0.0)
    grads = [c for c in run.groups["train_noexplore"].comparisons if ".grad." in c.name]
    assert grads and not all(c.ok for c in grads)


# --- the math -------------------------------------------------------------------------------------------

def test_one_step_is_T_cycles_of_one_network_and_the_last_cycle_is_back_propagated():
    head = small_model(H_cycles=3, L_cycles=2).train()
    inner, b = head.model.inner, batch()
    carry = head.initial_carry(b)
    carry, loss, _, outputs, _ = head(carry, b, return_keys=("logits", "q_halt_logits"))
    loss.backward()
    ours = {n: p.grad.clone() for n, p in head.named_parameters()}
    head.zero_grad()

    # By hand, with the block stack's own pieces: two cycles detached, the third differentiated.
    x = inner.input_embeddings(b["inputs"], b["puzzle_identifiers"])
    shape = (4, inner.carry_positions, 32)
    z_H, z_L = inner.H_init.expand(shape), inner.L_init.expand(shape)
    cs = inner.rope()
    for cycle in range(3):
        if cycle < 2:
            z_H, z_L = z_H.detach(), z_L.detach()
        for _ in range(2):
            z_L = inner.L_level(z_L, z_H + (x.detach() if cycle < 2 else x), cs)
        z_H = inner.L_level(z_H, z_L, cs)
        if cycle < 2:
            z_H, z_L = z_H.detach(), z_L.detach()
    logits, (q_halt, _) = inner.heads(z_H)
    torch.testing.assert_close(outputs["logits"], logits.detach(), rtol=0, atol=0)
    torch.testing.assert_close(carry.inner_carry["z_H"], z_H.detach(), rtol=0, atol=0)
    torch.testing.assert_close(carry.inner_carry["z_L"], z_L.detach(), rtol=0, atol=0)
    head.train()
    labels = b["labels"]
    from hrm.models.losses import stablemax_cross_entropy
    seq_correct = (logits.argmax(-1) == labels).all(-1)
    manual = (stablemax_cross_entropy(logits, labels) / labels.shape[1]).sum() + 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(
        q_halt, seq_correct.float(), reduction="sum")
    manual.backward()
    for n, p in head.named_parameters():
        torch.testing.assert_close(ours[n], p.grad, rtol=1e-5, atol=1e-7, msg=n)
    assert ours["model.inner.L_level.layers.0.self_attn.qkv_proj.weight"].abs().max() > 0


def test_the_state_dict_keys_are_the_officials():
    head = build_model(TRMConfig(**SMALL), torch.float32)
    block = lambda i: [f"model.inner.L_level.layers.{i}.{k}" for k in (  # noqa: E731
        "self_attn.qkv_proj.weight", "self_attn.o_proj.weight", "mlp.gate_up_proj.weight", "mlp.down_proj.weight")]
    assert sorted(head.state_dict()) == sorted([
        "model.inner.embed_tokens.embedding_weight", "model.inner.lm_head.weight", "model.inner.q_head.weight",
        "model.inner.q_head.bias", "model.inner.puzzle_emb.weights", *block(0), *block(1),
        "model.inner.H_init", "model.inner.L_init"])
    mlp_t = build_model(TRMConfig(**SMALL, mlp_t=True), torch.float32).state_dict()
    assert "model.inner.L_level.layers.1.mlp_t.gate_up_proj.weight" in mlp_t
    assert not any("self_attn" in k or "H_level" in k for k in mlp_t)


@pytest.mark.parametrize("vocab, seq_len, changes, expected", [
    (12, 900, {}, 6_829_058),                                           # ARC
    (11, 81, {}, 6_828_034),                                            # Sudoku, attention
    (11, 81, {"mlp_t": True, "pos_encodings": "none"}, 5_028_866),      # Sudoku, MLP ("5M")
    (6, 900, {}, 6_822_914),                                            # Maze
])
def test_the_parameter_counts_of_the_published_runs(vocab, seq_len, changes, expected):
    head = build_model(TRMConfig(vocab_size=vocab, seq_len=seq_len, **changes), torch.float32)
    assert sum(p.numel() for p in head.parameters()) == expected


@pytest.mark.parametrize("changes, positions", [
    (dict(mlp_t=True, pos_encodings="none"), 16 + 12),
    (dict(mlp_t=True), 16 + 12),                                  # rope tables built, ignored by mlp_t
    (dict(puzzle_emb_len=0), 1 + 12),                             # HRM's rule: ceil(32 / 32)
    (dict(puzzle_emb_len=0, puzzle_emb_ndim=80), 3 + 12),         # ceil(80 / 32), zero-padded
    (dict(pos_encodings="learned"), 16 + 12),
    (dict(pos_encodings="none"), 16 + 12),
    (dict(H_cycles=1, L_cycles=1), 16 + 12),
])
def test_variants_build_and_train(changes, positions):
    head = small_model(**changes).train()
    inner, b = head.model.inner, batch()
    assert inner.carry_positions == positions and head.model.config.puzzle_emb_len == positions - 12
    assert hasattr(inner, "embed_pos") == (changes.get("pos_encodings") == "learned")
    carry, loss, _, outputs, _ = head(head.initial_carry(b), b, return_keys=("logits",))
    assert outputs["logits"].shape == (4, 12, 9) and outputs["logits"].dtype == torch.float32
    assert carry.inner_carry["z_H"].shape == (4, positions, 32)
    loss.backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["model.inner.L_level.layers.0.mlp.gate_up_proj.weight"].abs().max() > 0
    if changes.get("mlp_t"):
        assert grads["model.inner.L_level.layers.0.mlp_t.gate_up_proj.weight"].shape == (2 * 256, positions)
    assert head.model.puzzle_emb.local_weights.grad.abs().max() > 0


def test_mlp_t_normalises_over_positions():
    head = small_model(mlp_t=True, pos_encodings="none")
    block = head.model.inner.L_level.layers[0]
    h = torch.randn(2, 28, 32)
    with torch.no_grad():
        t = h.transpose(1, 2)
        after = t + block.mlp_t(t)
        expected = after * torch.rsqrt(after.square().mean(-1, keepdim=True) + 1e-5)
        expected = expected.transpose(1, 2)
        expected = expected + block.mlp(expected)
        expected = expected * torch.rsqrt(expected.square().mean(-1, keepdim=True) + 1e-5)
        torch.testing.assert_close(block(h, None), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("values, message", [
    (dict(pos_encodings="rop"), "pos_encodings must be 'rope', 'learned' or 'none', got 'rop'"),
    (dict(puzzle_emb_ndim=0), "puzzle_emb_len=16 needs a puzzle embedding"),
    (dict(puzzle_emb_len=1, puzzle_emb_ndim=80), "puzzle_emb_len=1 positions of width 32 cannot hold"),
    (dict(puzzle_emb_len=-1), "puzzle_emb_len must be >= 0"),
    (dict(L_cycles=0), "L_cycles must be >= 1"),
])
def test_bad_configs_are_one_line_errors(values, message):
    with pytest.raises(ValueError) as error:
        TRMConfig(**{**SMALL, **values})
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="pos_encodings must be"):
        arch_config({"name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1", "pos_encodings": "nope"})


def test_puzzle_emb_ndim_0_works_with_puzzle_emb_len_0():
    head = build_model(TRMConfig(**{**SMALL, "puzzle_emb_ndim": 0, "puzzle_emb_len": 0}), torch.float32).train()
    b = batch()
    assert head.model.inner.carry_positions == 12 and head.model.puzzle_emb is None
    _, loss, _, _, _ = head(head.initial_carry(b), b)
    loss.backward()


def test_the_official_config_loads_under_its_name():
    official = {"name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1", "loss": {
        "name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}, "H_cycles": 3, "L_cycles": 4,
        "H_layers": 0, "L_layers": 2, "hidden_size": 512, "num_heads": 8, "expansion": 4, "puzzle_emb_ndim": 512,
        "pos_encodings": "rope", "forward_dtype": "bfloat16", "mlp_t": False, "puzzle_emb_len": 16,
        "no_ACT_continue": True, "halt_max_steps": 16, "halt_exploration_prob": 0.1}
    config = arch_config(official)
    assert isinstance(config, TRMConfig) and config.name == "trm" and config.L_cycles == 4
    assert config.block_applications() == (3 * 5 * 2, 5 * 2)


# --- halting -------------------------------------------------------------------------------------------

def count_inner_calls(head):
    calls = []
    head.model.inner.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_default_halting_is_q_halt_above_zero_without_a_target():
    head = small_model(halt_exploration_prob=0.0).train()
    assert head.model.policy.rule == Q_HALT_GT_ZERO and not head.model.policy.q_target
    b = batch()
    with torch.no_grad():
        head.model.inner.q_head.bias.copy_(torch.tensor([0.0, 100.0]))   # q_continue would always win
        q_halt = head(head.initial_carry(b), b, return_keys=("q_halt_logits",))[3]["q_halt_logits"]
        head.model.inner.q_head.bias[0] = -q_halt.median() + 1e-3      # so that some rows halt, some not
    calls = count_inner_calls(head)
    carry, loss, metrics, outputs, _ = head(head.initial_carry(b), b, return_keys=("q_halt_logits", "target_q_continue"))
    assert len(calls) == 1 and "target_q_continue" not in outputs and "q_continue_loss" not in metrics
    assert carry.halted.tolist() == (outputs["q_halt_logits"] > 0).tolist()
    assert 0 < int(carry.halted.sum()) < 4                                 # the batch shows both outcomes
    loss.backward()
    assert head.model.inner.q_head.weight.grad[1].abs().max() == 0 and head.model.inner.q_head.bias.grad[1] == 0


def test_no_ACT_continue_false_trains_with_hrms_rule_and_its_target():
    """The official code crashes here (it unpacks three outputs into five names); we run HRM's Q-learning."""
    head = small_model(no_ACT_continue=False, halt_exploration_prob=0.0).train()
    assert head.model.policy.rule == Q_HALT_GT_Q_CONTINUE and head.model.policy.q_target
    calls = count_inner_calls(head)
    b = batch()
    carry, loss, metrics, outputs, _ = head(head.initial_carry(b), b,
                                            return_keys=("q_halt_logits", "q_continue_logits", "target_q_continue"))
    assert len(calls) == 2                                                 # the target's second forward
    assert carry.halted.tolist() == (outputs["q_halt_logits"] > outputs["q_continue_logits"]).tolist()
    assert outputs["target_q_continue"].shape == (4,) and "q_continue_loss" in metrics
    expected = metrics["lm_loss"] + 0.5 * (metrics["q_halt_loss"] + metrics["q_continue_loss"])
    torch.testing.assert_close(loss.detach(), expected.to(loss.dtype))
    loss.backward()
    assert head.model.inner.q_head.weight.grad[1].abs().max() > 0          # the continue logit is trained
    optimiser = torch.optim.SGD(head.parameters(), lr=0.01)
    optimiser.step()
    carry, loss, _, _, _ = head(carry, b)
    assert torch.isfinite(loss)


def test_eval_runs_every_row_for_halt_max_steps():
    head = small_model().eval()
    b = batch()
    carry = head.initial_carry(b)
    with torch.inference_mode():
        for step in range(1, 4):
            carry, _, _, outputs, all_halted = head(carry, b, return_keys=("preds", "logits"))
            assert bool(all_halted) == (step == 3) and carry.steps.tolist() == [step] * 4
    assert torch.equal(outputs["preds"], outputs["logits"].argmax(-1))


def test_flops_count_the_trm_recursion():
    from hrm.flops import block_flops, segment_flops, train_step_flops
    config = TRMConfig(**SMALL)
    applied, differentiated = config.block_applications()
    assert (applied, differentiated) == (2 * 3 * 2, 3 * 2)
    assert train_step_flops(config, 4) > segment_flops(config, 4) > applied * block_flops(config, 4)
    mlp_t = TRMConfig(**SMALL, mlp_t=True)
    assert block_flops(mlp_t, 4) != block_flops(config, 4)


# --- the NumPy port ------------------------------------------------------------------------------------

# NOTE: the PyTorch model rotates q and k and normalises in float32 even when it computes in float64 (as the
# originals), so the float64 port agrees with it to float32 rounding only. The mlp_t recursion at random init
# amplifies rounding several-fold per network application (the spec's conditioning note; the fixture uses a
# shallow mlp_t for the same reason): measured at 2 cycles x 2 updates, 2 steps, 2.8e-5 (float32) and 7e-6
# (float64) relative, so its case here is one step of one cycle of one update (1.3e-6 and 2.1e-7).
@pytest.mark.parametrize("changes, steps", [
    (dict(), 2), (dict(mlp_t=True, pos_encodings="none", H_cycles=1, L_cycles=1), 1),
    (dict(pos_encodings="learned"), 2), (dict(puzzle_emb_len=0), 2)])
@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-5), (np.float64, 1e-6)])
def test_the_numpy_port_agrees_with_pytorch(changes, steps, dtype, tolerance):
    from hrm.act_driver import initial_carry
    from hrm.ports.numpy import NumpyTRM, numpy_model

    torch.manual_seed(1)
    config = TRMConfig(**{**SMALL, **changes})
    head = build_model(config, torch.float64 if dtype == np.float64 else torch.float32).eval()
    with torch.no_grad():
        head.model.inner.q_head.weight.normal_(0, 0.1)
        head.model.inner.puzzle_emb.weights.normal_(0, 0.1)
    port = numpy_model(asdict(config), {k: v.numpy() for k, v in head.state_dict().items()}, dtype)
    assert isinstance(port, NumpyTRM) and list(port.carry_init) == ["z_H", "z_L"]
    assert port.halt_rule == Q_HALT_GT_ZERO and port.carry_positions == head.model.inner.carry_positions
    b = batch()
    ours = initial_carry(port, 4)
    ref = {k: torch.from_numpy(v).to(head.model.inner.forward_dtype) for k, v in ours.items()}
    for _ in range(steps):                                   # two steps: the carry feeds the next one
        out = port(ours, b["inputs"].numpy(), b["puzzle_identifiers"].numpy())
        with torch.no_grad():
            ref, logits, (q_halt, _) = head.model.inner(ref, b)
        ours = out.carry
        for mine, theirs in ((out.logits, logits), (out.carry["z_H"], ref["z_H"]), (out.carry["z_L"], ref["z_L"]),
                             (out.q_halt, q_halt)):
            theirs = theirs.numpy()
            assert mine.dtype == (np.float32 if mine is out.q_halt else dtype)
            assert np.abs(mine - theirs).max() / np.abs(theirs).max() < tolerance


def test_the_numpy_port_reads_the_official_puzzle_emb_len_0():
    from hrm.ports.numpy import TRMArch
    arch = TRMArch.from_dict({**SMALL, "puzzle_emb_len": 0, "puzzle_emb_ndim": 80})
    assert arch.puzzle_emb_len == 3


# --- the MLX port (inference) ----------------------------------------------------------------------------

@pytest.mark.parametrize("changes, steps", [
    (dict(), 2), (dict(mlp_t=True, pos_encodings="none", H_cycles=1, L_cycles=1), 1),
    (dict(pos_encodings="learned"), 2), (dict(puzzle_emb_len=0), 2)])
def test_the_mlx_port_agrees_with_pytorch(changes, steps, tmp_path):
    from reference_helpers import require_module
    require_module("mlx.core")
    from hrm.act_driver import initial_carry
    from hrm.export.backends import build as build_backend
    from hrm.ports.mlx.convert import build
    from hrm.ports.mlx.model import MlxStep
    from hrm.ports.mlx.trm import TRMInner

    torch.manual_seed(1)
    config = TRMConfig(**{**SMALL, **changes})
    head = build_model(config, torch.float32).eval()
    with torch.no_grad():
        head.model.inner.q_head.weight.normal_(0, 0.1)
        head.model.inner.puzzle_emb.weights.normal_(0, 0.1)
    model = build(asdict(config), {k: v.numpy() for k, v in head.state_dict().items()}, "test")
    assert isinstance(model, TRMInner) and not hasattr(model, "H_level")
    step = MlxStep(model)
    b = batch()
    ours = initial_carry(step, 4)
    ref = {k: torch.from_numpy(v) for k, v in ours.items()}
    for _ in range(steps):
        out = step(ours, b["inputs"].numpy(), b["puzzle_identifiers"].numpy())
        with torch.no_grad():
            ref, logits, (q_halt, _) = head.model.inner(ref, b)
        ours = out.carry
        for mine, theirs in ((out.logits, logits), (out.carry["z_H"], ref["z_H"]), (out.q_halt, q_halt)):
            theirs = theirs.numpy()
            # NOTE: measured at most 2.1e-6 relative (AMD EPYC, mlx-cpu 0.32): the float32 rounding of the NumPy port's bound.
            assert np.abs(mine - theirs).max() / np.abs(theirs).max() < 1e-5
    # The backend registry's MLX route runs the ACT loop with TRM's halting rule.
    backend = build_backend("mlx", head, config, tmp_path)
    result = backend.run(b["inputs"].numpy(), b["puzzle_identifiers"].numpy(), halt_early=False)
    assert result.predictions.shape == (4, SMALL["seq_len"])


def test_a_backend_that_does_not_serve_an_architecture_says_so():
    from hrm.export.backends import unsupported
    assert unsupported("mlx", "trm") is None and unsupported("numpy", "transformer") is None
    assert "the mlx port serves hrm_act_v1, trm only, not transformer" in unsupported("mlx", "transformer")


def test_mlx_trains_hrm_only_and_says_so():
    from reference_helpers import require_module
    require_module("mlx.core")
    from hrm.ports.mlx.convert import build
    from hrm.ports.mlx.train import train_step

    head = build_model(TRMConfig(**SMALL), torch.float32)
    model = build(asdict(TRMConfig(**SMALL)), {k: v.numpy() for k, v in head.state_dict().items()}, "test")
    with pytest.raises(ValueError, match="MLX training serves hrm_act_v1 only"):
        train_step(model, None, None, {}, global_batch_size=4)


def test_the_demo_preset_builds_a_trm():
    from hrm.training.config import load_config, preset_path
    config = load_config(preset_path("demo"), ["arch=trm_demo", "arch.seq_len=36", "arch.vocab_size=8"]).arch
    assert isinstance(config, TRMConfig) and config.puzzle_emb_len == 1
    assert config.block_applications() == (16, 8)
    assert sum(p.numel() for p in build_model(config, torch.float32).parameters()) == 132_226   # as its comment says
