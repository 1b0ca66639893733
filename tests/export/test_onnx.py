"""ONNX exports of the fixture model (via `hrm export onnx`) run in onnxruntime against the original's outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from reference_helpers import load_fixture, rel_error, require_module, save_fixture_weights

require_module("onnxruntime", reason="onnxruntime is not installed (pip install 'hrm[ports]')")
require_module("onnxscript", reason="onnxscript is not installed (pip install 'hrm[ports]')")

from hrm.act_driver import run_act  # noqa: E402
from hrm.export.onnx_export import OnnxStep, OnnxWholePuzzle  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return load_fixture()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, fixture):
    return save_fixture_weights(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def step_graph(checkpoint, tmp_path_factory):
    from hrm.cli import main
    out = tmp_path_factory.mktemp("onnx") / "step.onnx"
    assert main(["export", "onnx", str(checkpoint), "--out", str(out)]) == 0
    return out


def stacked_batches(fixture):
    inputs = np.concatenate([fixture.batch(n)["inputs"].numpy() for n in range(1, 6)])
    ids = np.concatenate([fixture.batch(n)["puzzle_identifiers"].numpy() for n in range(1, 6)])
    return inputs, ids


def test_one_step_graph_matches_the_original(fixture, step_graph):
    step = OnnxStep(step_graph)
    batch = fixture.batch(1)
    result = run_act(step, batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy(), step.halt_max_steps)
    for k in range(4):
        p = f"eval.step{k + 1}"
        assert rel_error(result.step_q_halt[:, k], fixture.records[f"{p}.q_halt_logits"]) < TOLERANCE
        assert rel_error(result.step_q_continue[:, k], fixture.records[f"{p}.q_continue_logits"]) < TOLERANCE
    assert rel_error(result.logits, fixture.records["eval.step4.logits"]) < TOLERANCE


@pytest.mark.parametrize("batch_size", [1, 3, 20])
def test_batch_size_is_dynamic(fixture, step_graph, batch_size):
    from hrm.export.torch_step import TorchStep
    from hrm.reference.hrm import ReferenceRun
    inputs, ids = stacked_batches(fixture)
    ours = run_act(OnnxStep(step_graph), inputs[:batch_size], ids[:batch_size], 4, halt_early=True)
    ref = run_act(TorchStep(ReferenceRun(fixture).model().model.inner), inputs[:batch_size], ids[:batch_size], 4, halt_early=True)
    assert np.array_equal(ours.steps, ref.steps)
    assert rel_error(ours.logits, ref.logits) < TOLERANCE


def test_graph_interface_is_named_and_documented(step_graph, fixture):
    import onnx
    model = onnx.load(step_graph)
    assert [i.name for i in model.graph.input] == ["z_H", "z_L", "inputs", "puzzle_identifiers"]
    assert [o.name for o in model.graph.output] == ["new_z_H", "new_z_L", "logits", "q_halt", "q_continue"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 18
    assert all(i.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT32) for i in model.graph.input)
    meta = json.loads(step_graph.with_name(step_graph.name + ".json").read_text())
    assert {e["role"] for e in meta["io"]["inputs"]} == {"z_H", "z_L", "inputs", "puzzle_identifiers"}
    assert {e["role"] for e in meta["io"]["outputs"]} == {"z_H", "z_L", "logits", "q_halt", "q_continue"}
    assert meta["carry_shape"] == [1, 17, 64] and meta["halt_max_steps"] == 4 and meta["halt_rule"] == "q_halt > q_continue"
    np.testing.assert_array_equal(np.float32(meta["carry_init"]["z_H"]), fixture.params()["model.inner.H_init"].numpy())
    assert json.loads({p.key: p.value for p in model.metadata_props}["hrm"]) == meta


def test_not_an_export_is_refused(tmp_path, step_graph):
    import onnx
    model = onnx.load(step_graph)
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="not an hrm ONNX export"):
        OnnxStep(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="not a whole-puzzle graph"):
        OnnxWholePuzzle(step_graph)


@pytest.mark.slow
def test_whole_puzzle_graph_with_and_without_early_halting(fixture, checkpoint, tmp_path):
    from hrm.cli import main
    from hrm.export.torch_step import TorchStep
    from hrm.reference.hrm import ReferenceRun
    out = tmp_path / "whole.onnx"
    assert main(["export", "onnx", str(checkpoint), "--out", str(out), "--whole-puzzle"]) == 0
    whole = OnnxWholePuzzle(out)
    torch_step = TorchStep(ReferenceRun(fixture).model().model.inner)
    inputs, ids = stacked_batches(fixture)
    for halt_early in (False, True):
        ours = whole.run(inputs, ids, halt_early=halt_early)
        ref = run_act(torch_step, inputs, ids, 4, halt_early=halt_early)
        assert np.array_equal(ours.steps, ref.steps)
        assert np.array_equal(ours.step_predictions, ref.step_predictions)
        assert rel_error(ours.logits, ref.logits) < TOLERANCE
        assert np.array_equal(np.isnan(ours.step_q_halt), np.isnan(ref.step_q_halt))
        assert np.nanmax(np.abs(ours.step_q_halt - ref.step_q_halt)) < TOLERANCE * np.nanmax(np.abs(ref.step_q_halt))
    assert ours.steps.min() < 4
    batch = fixture.batch(1)
    first = whole.run(batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy())
    assert rel_error(first.logits, fixture.records["eval.step4.logits"]) < TOLERANCE
