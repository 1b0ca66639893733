"""hrm.training.ema.EMA, TRM's average of the parameters: the update rule, evaluating with the averages,
and exact resume. (The TRM fixture's ema.* records check it against the official EMAHelper.)"""
from __future__ import annotations

import pytest
import torch

from hrm.models import TRMConfig, build_model
from hrm.training.ema import EMA

SMALL = dict(seq_len=6, vocab_size=5, num_puzzle_identifiers=3, batch_size=2, hidden_size=16, num_heads=2,
             expansion=2.0, puzzle_emb_ndim=16, H_cycles=1, L_cycles=1, L_layers=1, halt_max_steps=2)


def model():
    torch.manual_seed(0)
    return build_model(TRMConfig(**SMALL), torch.float32)


def perturb(head, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn(p.shape, generator=g))
        head.model.puzzle_emb.weights.add_(1.0)                   # a buffer: not averaged


def test_the_shadow_covers_the_parameters_only_and_updates_at_rate_mu():
    head = model()
    ema = EMA(head, mu=0.75)
    names = {n for n, _ in head.named_parameters()}
    assert set(ema.shadow) == names and not any("puzzle_emb" in n or "_init" in n for n in ema.shadow)
    start = {n: p.detach().clone() for n, p in head.named_parameters()}
    perturb(head, 1)
    ema.update(head)
    for n, p in head.named_parameters():
        torch.testing.assert_close(ema.shadow[n], 0.25 * p.detach() + 0.75 * start[n], rtol=0, atol=0)
        assert not torch.equal(ema.shadow[n], p.detach())


def test_averaged_swaps_the_averages_in_and_back_and_copy_keeps_the_live_buffers():
    head = model()
    ema = EMA(head, mu=0.5)
    perturb(head, 1)
    ema.update(head)
    live = {k: v.clone() for k, v in head.state_dict().items()}
    with ema.averaged(head) as averaged:
        assert averaged is head
        for n, p in head.named_parameters():
            assert torch.equal(p, ema.shadow[n])
        assert torch.equal(head.model.puzzle_emb.weights, live["model.inner.puzzle_emb.weights"])
    assert all(torch.equal(v, live[k]) for k, v in head.state_dict().items())
    with pytest.raises(RuntimeError, match="boom"), ema.averaged(head):
        raise RuntimeError("boom")
    assert all(torch.equal(v, live[k]) for k, v in head.state_dict().items())      # restored on errors too

    copy = ema.copy(head)
    assert copy is not head
    for n, p in copy.named_parameters():
        assert torch.equal(p, ema.shadow[n])
    assert torch.equal(copy.model.puzzle_emb.weights, live["model.inner.puzzle_emb.weights"])
    assert all(torch.equal(v, live[k]) for k, v in head.state_dict().items())


def test_state_dict_resumes_exactly():
    head = model()
    ema = EMA(head, mu=0.9)
    perturb(head, 1)
    ema.update(head)
    resumed = EMA(model(), mu=0.1)
    resumed.load_state_dict(ema.state_dict())
    assert resumed.mu == 0.9
    perturb(head, 2)
    ema.update(head)
    resumed.update(head)
    assert all(torch.equal(resumed.shadow[n], ema.shadow[n]) for n in ema.shadow)


def test_a_state_of_another_model_is_refused():
    ema = EMA(model())
    other = build_model(TRMConfig(**{**SMALL, "L_layers": 2}), torch.float32)
    with pytest.raises(ValueError, match="does not fit the model"):
        ema.load_state_dict(EMA(other).state_dict())
    with pytest.raises(ValueError, match="not the EMA's"):
        ema.update(other)
    with pytest.raises(ValueError, match="mu must be in"):
        EMA(model(), mu=1.5)
