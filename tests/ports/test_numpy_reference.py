"""The NumPy reference against the original's recorded outputs and against the PyTorch model."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
from reference_helpers import load_fixture, rel_error

from hrm.act_driver import run_act
from hrm.export.torch_step import TorchStep
from hrm.ports.numpy import Arch, NumpyHRM, evaluate, load_hrm_weights

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def fixture():
    return load_fixture()


def numpy_model(fixture, dtype, params=None, **changes):
    arch = Arch.from_dict({**fixture.meta["config"], **changes})
    params = params if params is not None else fixture.params()
    return NumpyHRM(arch, {k: v.numpy() for k, v in params.items()}, dtype)


def per_step(model, batch, steps):
    """The carry and outputs after each step of the eval loop (driving the step by hand)."""
    from hrm.act_driver import initial_carry
    inputs, ids = batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy()
    carry = initial_carry(model, len(inputs))
    for _ in range(steps):
        out = model(carry, inputs, ids)
        carry = out.carry
        yield out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_steps_match_the_original_within_1e5(fixture, dtype):
    model = numpy_model(fixture, dtype)
    for k, out in enumerate(per_step(model, fixture.batch(1), 4), start=1):
        p = f"eval.step{k}"
        for name, ours in (("logits", out.logits), ("q_halt_logits", out.q_halt),
                           ("q_continue_logits", out.q_continue), ("z_H", out.carry["z_H"]),
                           ("z_L", out.carry["z_L"])):
            assert rel_error(ours, fixture.records[f"{p}.{name}"]) < TOLERANCE, (p, name)
        assert out.carry["z_H"].dtype == dtype


@pytest.mark.parametrize("variant, changes", [("variant_learned", {"pos_encodings": "learned"}),
                                              ("variant_pe80", {"puzzle_emb_ndim": 80})])
def test_variants_match_the_original(fixture, variant, changes):
    params = fixture.params()
    if variant == "variant_learned":
        params["model.inner.embed_pos.embedding_weight"] = fixture.records[f"{variant}.param.model.inner.embed_pos.embedding_weight"]
    else:
        params["model.inner.puzzle_emb.weights"] = fixture.records[f"{variant}.param.model.inner.puzzle_emb.weights"]
    model = numpy_model(fixture, np.float32, params, **changes)
    steps = [k for k in range(1, 9) if fixture.has(f"{variant}.eval.step{k}.logits")]
    for k, out in zip(steps, per_step(model, fixture.batch(1), len(steps))):
        assert rel_error(out.logits, fixture.records[f"{variant}.eval.step{k}.logits"]) < TOLERANCE
        assert rel_error(out.q_halt, fixture.records[f"{variant}.eval.step{k}.q_halt_logits"]) < TOLERANCE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("halt_early", [False, True])
def test_act_loop_matches_pytorch_on_every_batch(fixture, dtype, halt_early):
    from hrm.reference.hrm import ReferenceRun
    torch_step = TorchStep(ReferenceRun(fixture).model().model.inner)
    model = numpy_model(fixture, dtype)
    # The five fixture batches as one: rows are independent in evaluation.
    inputs = np.concatenate([fixture.batch(n)["inputs"].numpy() for n in range(1, 6)])
    ids = np.concatenate([fixture.batch(n)["puzzle_identifiers"].numpy() for n in range(1, 6)])
    ours = evaluate(model, inputs, ids, halt_early=halt_early)
    ref = run_act(torch_step, inputs, ids, 4, halt_early=halt_early)
    assert np.array_equal(ours.steps, ref.steps)
    assert rel_error(ours.logits, ref.logits) < TOLERANCE
    assert np.array_equal(np.isnan(ours.step_q_halt), np.isnan(ref.step_q_halt))
    assert np.nanmax(np.abs(ours.step_q_halt - ref.step_q_halt)) < TOLERANCE * np.nanmax(np.abs(ref.step_q_halt))
    assert np.array_equal(ours.predictions, ref.predictions)
    if halt_early:
        assert ref.steps.min() < 4 and ref.steps.max() == 4   # the fixture's Q head halts some rows early


def test_loads_hrm_checkpoints(fixture, tmp_path):
    from hrm.models.checkpoint import save_weights
    from hrm.reference.hrm import ReferenceRun
    head = ReferenceRun(fixture).model()
    head.model.inner.H_init.data = head.model.inner.H_init.data.bfloat16().float()   # as stored by a bf16 run
    save_weights(head, fixture.config(), tmp_path / "ckpt")
    arch, weights, _ = load_hrm_weights(tmp_path / "ckpt")
    assert arch == Arch.from_dict(asdict(fixture.config()))
    model = NumpyHRM(arch, weights)
    batch = fixture.batch(2)
    ours = evaluate(model, batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy())
    ref = run_act(TorchStep(head.model.inner), batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy(), 4)
    assert rel_error(ours.logits, ref.logits) < TOLERANCE


def test_missing_weight_is_named(fixture):
    params = {k: v.numpy() for k, v in fixture.params().items() if "lm_head" not in k}
    with pytest.raises(KeyError, match="model.inner.lm_head.weight"):
        NumpyHRM(Arch.from_dict(fixture.meta["config"]), params)
    with pytest.raises(ValueError, match="float32 or float64"):
        numpy_model(fixture, np.float16)


def test_the_reference_imports_no_torch():
    code = "import sys, hrm.ports.numpy, hrm.act_driver; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
