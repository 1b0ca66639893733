"""The browser solver serves every architecture: the transformer baseline (one carry tensor, z_H, where HRM has
two) and TRM (HRM's carry names, another halt rule: q_halt > 0) run in onnxruntime-web and give PyTorch's
answer at every step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from viz_fixtures import open_solve_tab, write_sudoku_dataset

pytestmark = pytest.mark.slow          # one ONNX export and a browser


def baseline():
    from hrm.models import TransformerConfig
    # Two steps, so that the browser feeds the one-tensor carry back into the graph.
    return TransformerConfig(seq_len=36, vocab_size=8, hidden_size=32, num_heads=2, L_layers=2, expansion=2,
                             puzzle_emb_ndim=32, halt_max_steps=2), ["z_H"], "q_halt > q_continue"


def trm():
    from hrm.models.trm import TRMConfig
    return TRMConfig(seq_len=36, vocab_size=8, hidden_size=32, num_heads=2, L_layers=1, H_cycles=2, L_cycles=2,
                     expansion=2, puzzle_emb_ndim=32, puzzle_emb_len=2, halt_max_steps=3), ["z_H", "z_L"], "q_halt > 0"


@pytest.mark.parametrize("make", [baseline, trm], ids=["transformer", "trm"])
def test_the_architecture_solves_in_the_browser_as_in_pytorch(page, serve, tmp_path, make):
    from hrm.models import build_model
    from hrm.models.checkpoint import save_weights
    from hrm.viz.model import export_browser_model, load_model, torch_trajectory

    torch.manual_seed(0)
    config, carry, rule = make()
    head = build_model(config)
    with torch.no_grad():
        head.model.inner.q_head.weight.normal_(0, 0.5)
    save_weights(head, config, tmp_path / "weights")
    model = load_model(tmp_path / "weights")
    onnx_path, metadata = export_browser_model(model, tmp_path / "export")
    assert list(metadata["carry_init"]) == carry and metadata["halt_rule"] == rule

    dataset = write_sudoku_dataset(tmp_path / "sudoku6", box=(2, 3))
    open_solve_tab(page, serve, dataset, onnx_path, metadata)
    page.click("#example-button")
    page.click("#solve-button")
    page.wait_for_selector("body[data-solved='true']", state="attached", timeout=60_000)
    result = page.evaluate("window.hrmLastSolve")

    reference = torch_trajectory(model, np.asarray(result["puzzle"]))
    assert np.array(result["steps"]).shape == (config.halt_max_steps, 36)
    np.testing.assert_array_equal(np.array(result["steps"]), reference.steps)
    np.testing.assert_allclose(result["qHalt"], reference.q_halt, rtol=0, atol=1e-4)
    np.testing.assert_allclose(result["qContinue"], reference.q_continue, rtol=0, atol=1e-4)
