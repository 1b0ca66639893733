"""The browser solver serves every architecture: the transformer baseline (one carry tensor, z_H, where HRM has
two) runs in onnxruntime-web and gives PyTorch's answer at every step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from viz_fixtures import open_solve_tab, write_sudoku_dataset

pytestmark = pytest.mark.slow          # one ONNX export and a browser


def test_the_baseline_solves_in_the_browser_as_in_pytorch(page, serve, tmp_path):
    from hrm.models import TransformerConfig, build_model
    from hrm.models.checkpoint import save_weights
    from hrm.viz.model import export_browser_model, load_model, torch_trajectory

    torch.manual_seed(0)
    # Two steps, so that the browser feeds the one-tensor carry back into the graph.
    config = TransformerConfig(seq_len=36, vocab_size=8, hidden_size=32, num_heads=2, L_layers=2, expansion=2,
                               puzzle_emb_ndim=32, halt_max_steps=2)
    head = build_model(config)
    with torch.no_grad():
        head.model.inner.q_head.weight.normal_(0, 0.5)
    save_weights(head, config, tmp_path / "weights")
    model = load_model(tmp_path / "weights")
    onnx_path, metadata = export_browser_model(model, tmp_path / "export")
    assert list(metadata["carry_init"]) == ["z_H"] and metadata["halt_rule"] == "q_halt > q_continue"

    dataset = write_sudoku_dataset(tmp_path / "sudoku6", box=(2, 3))
    open_solve_tab(page, serve, dataset, onnx_path, metadata)
    page.click("#example-button")
    page.click("#solve-button")
    page.wait_for_selector("body[data-solved='true']", state="attached", timeout=60_000)
    result = page.evaluate("window.hrmLastSolve")

    reference = torch_trajectory(model, np.asarray(result["puzzle"]))
    assert np.array(result["steps"]).shape == (2, 36)
    np.testing.assert_array_equal(np.array(result["steps"]), reference.steps)
    np.testing.assert_allclose(result["qHalt"], reference.q_halt, rtol=0, atol=1e-4)
    np.testing.assert_allclose(result["qContinue"], reference.q_continue, rtol=0, atol=1e-4)
