"""AdamATan2 against the update rule computed by hand; SparseSignSGD against the original's recorded step."""
from __future__ import annotations

import json
import math

import pytest
import torch

from hrm.models.sparse_embedding import CastedSparseEmbedding
from hrm.training.optimizers import AdamATan2, SparseSignSGD, sparse_signsgd_


def reference_adam_atan2(theta, grads, lrs, beta1, beta2, wd):
    """The rule of semantics §9.2, written element by element in float64 Python."""
    theta, m, v = list(theta), [0.0] * len(theta), [0.0] * len(theta)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        for i in range(len(theta)):
            theta[i] *= 1 - lr * wd
            m[i] += (1 - beta1) * (g[i] - m[i])
            v[i] += (1 - beta2) * (g[i] ** 2 - v[i])
            theta[i] -= lr / (1 - beta1 ** t) * math.atan2(m[i], math.sqrt(v[i]) / math.sqrt(1 - beta2 ** t))
    return theta, m, v


def test_adam_atan2_first_step_by_hand():
    # Step 1 with β = (0.9, 0.95): m = 0.1 g, v = 0.05 g², 1 − β1 = 0.1, 1 − β2 = 0.05, so
    # √v / √(1 − β2) = |g| and lr / (1 − β1) = 1: θ ← θ·(1 − lr·wd) − atan2(0.1 g, |g|).
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 0.0]))
    p.grad = torch.tensor([0.3, -0.2, 0.0, 1e-3])
    opt = AdamATan2([p], lr=0.1, betas=(0.9, 0.95), weight_decay=0.5)
    opt.step()
    expected = [0.95 * 1.0 - math.atan2(0.03, 0.3), 0.95 * -2.0 - math.atan2(-0.02, 0.2),
                0.95 * 0.5 - 0.0, 0.0 - math.atan2(1e-4, 1e-3)]
    torch.testing.assert_close(p.detach(), torch.tensor(expected), rtol=1e-6, atol=1e-7)
    state = opt.state[p]
    assert float(state["step"]) == 1.0
    torch.testing.assert_close(state["exp_avg"], 0.1 * p.grad)
    torch.testing.assert_close(state["exp_avg_sq"], 0.05 * p.grad ** 2)


def test_adam_atan2_several_steps_several_params_match_reference():
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2, 2), (1,)]
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    initial = [p.detach().clone() for p in params]
    # lr = 0 on the first step (the original starts at 0 and warms up): m, v and t still advance.
    lrs = [0.0, 1e-2, 3e-2, 3e-2]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in lrs]
    opt = AdamATan2(params, lr=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    for step_grads, lr in zip(grads, lrs):
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.param_groups[0]["lr"] = lr
        opt.step()
    for k, p in enumerate(params):
        theta, m, v = reference_adam_atan2(initial[k].flatten().tolist(), [g[k].flatten().tolist() for g in grads],
                                           lrs, 0.9, 0.95, 0.1)
        torch.testing.assert_close(p.detach().flatten(), torch.tensor(theta, dtype=torch.float32), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(opt.state[p]["exp_avg"].flatten(), torch.tensor(m, dtype=torch.float32), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(opt.state[p]["exp_avg_sq"].flatten(), torch.tensor(v, dtype=torch.float32), rtol=1e-5, atol=1e-8)
        assert float(opt.state[p]["step"]) == len(lrs)


def test_adam_atan2_lr_zero_leaves_params_and_skips_params_without_grad():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    a.grad = torch.full((3,), 0.5)
    opt = AdamATan2([a, b], lr=0.0, weight_decay=1.0)
    opt.step()
    assert torch.equal(a.detach(), torch.ones(3)) and torch.equal(b.detach(), torch.ones(2))
    assert b not in opt.state and float(opt.state[a]["step"]) == 1.0


def test_adam_atan2_state_dict_round_trip_continues_identically():
    gen = torch.Generator().manual_seed(1)
    def run(split_at=None):
        p = torch.nn.Parameter(torch.arange(6, dtype=torch.float32))
        opt = AdamATan2([p], lr=1e-2, weight_decay=0.1)
        g = torch.Generator().manual_seed(2)
        for i in range(4):
            if i == split_at:
                saved = opt.state_dict()
                p = torch.nn.Parameter(p.detach().clone())
                opt = AdamATan2([p], lr=1e-2, weight_decay=0.1)
                opt.load_state_dict(saved)
            p.grad = torch.randn(6, generator=g)
            opt.step()
        return p.detach()
    assert torch.equal(run(), run(split_at=2))


def test_adam_atan2_rejects_bad_settings():
    p = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match="lr"):
        AdamATan2([p], lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        AdamATan2([p], betas=(1.0, 0.9))


def test_sparse_signsgd_sums_duplicates_and_decays_only_touched_rows():
    weights = torch.tensor([[1.0, 1.0], [2.0, -2.0], [3.0, 3.0]])
    grads = torch.tensor([[0.5, -0.1], [-0.2, 0.0], [-0.4, 0.3]])   # rows 0 and 2 share id 1: sums (0.1, 0.2)
    ids = torch.tensor([1, 2, 1], dtype=torch.int32)
    sparse_signsgd_(weights, grads, ids, lr=0.1, weight_decay=0.5)
    expected = torch.tensor([[1.0, 1.0],                              # untouched, not decayed
                             [2.0 * 0.95 - 0.1, -2.0 * 0.95 - 0.1],   # sign(0.1)=+1, sign(0.2)=+1
                             [3.0 * 0.95 + 0.1, 3.0 * 0.95 - 0.0]])   # sign(-0.2)=-1, sign(0)=0
    torch.testing.assert_close(weights, expected)


def test_sparse_signsgd_matches_original_fixture():
    from reference_helpers import fixture_path
    from safetensors.torch import load_file

    records = load_file(str(fixture_path("hrm_act_v1_small.safetensors")))
    sidecar = json.loads(fixture_path("hrm_act_v1_small.json").read_text())
    cfg = sidecar["config"]
    embedding = CastedSparseEmbedding(cfg["num_puzzle_identifiers"], cfg["puzzle_emb_ndim"], cfg["batch_size"],
                                      init_std=0, cast_to=torch.float32)
    embedding.weights.copy_(records["param.model.inner.puzzle_emb.weights"])
    embedding.local_ids.copy_(records["train.call1.local_ids"])
    embedding.local_weights.grad = records["grad.model.inner.puzzle_emb.local_weights"].clone()
    assert len(set(records["train.call1.local_ids"].tolist())) < cfg["batch_size"]   # duplicates are exercised

    opt = SparseSignSGD(embedding, lr=1e-2, weight_decay=0.1)
    opt.step()
    opt.zero_grad()
    torch.testing.assert_close(embedding.weights, records["train.call1.signsgd_weights_after"], rtol=1e-4, atol=1e-4)
    # The rows of ids absent from the batch are bit-identical to before.
    absent = sorted(set(range(cfg["num_puzzle_identifiers"])) - set(records["train.call1.local_ids"].tolist()))
    assert torch.equal(embedding.weights[absent], records["param.model.inner.puzzle_emb.weights"][absent])
    assert embedding.local_weights.grad is None
