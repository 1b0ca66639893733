"""Solving in the browser: the exported model, run by onnxruntime-web (WebAssembly) in headless Chromium,
gives PyTorch's answer at every ACT step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from viz_fixtures import open_solve_tab, screenshot, write_sudoku_dataset

pytestmark = pytest.mark.slow          # one ONNX export (~20-30 s on 2 cores) and a browser


@pytest.fixture(scope="module")
def sudoku_6x6_model(tmp_path_factory):
    """A tiny 6x6 Sudoku HRM (hidden 32, 1 + 1 layers), saved in hrm's format and exported for the browser."""
    from hrm.models import HRMConfig, build_model
    from hrm.models.checkpoint import save_weights
    from hrm.viz.model import export_browser_model, load_model

    torch.manual_seed(0)
    config = HRMConfig(seq_len=36, vocab_size=8, hidden_size=32, num_heads=2, H_layers=1, L_layers=1, expansion=2,
                       puzzle_emb_ndim=32, halt_max_steps=6)
    head = build_model(config)
    with torch.no_grad():
        # The Q head starts at zero weight (constant logits); random weights make q_halt vary per step,
        # so that the comparison covers it.
        head.model.inner.q_head.weight.normal_(0, 0.5)
    root = tmp_path_factory.mktemp("model")
    save_weights(head, config, root / "weights")
    model = load_model(root / "weights")
    onnx_path, metadata = export_browser_model(model, root / "export")
    return model, onnx_path, metadata


def test_solve_in_the_browser_matches_pytorch(page, serve, sudoku_6x6_model, tmp_path):
    from hrm.viz.model import torch_trajectory

    model, onnx_path, metadata = sudoku_6x6_model
    assert metadata["board_size"] == 6 and metadata["box"] == [2, 3] and metadata["halt_max_steps"] == 6
    dataset = write_sudoku_dataset(tmp_path / "sudoku6", box=(2, 3))
    open_solve_tab(page, serve, dataset, onnx_path, metadata)

    # A malformed puzzle is explained, with its position, before anything runs.
    page.fill("#sudoku-text", "12x...\n" + "......\n" * 5)
    assert "unexpected character “x” at line 1, column 3" in page.locator("#solve-status").text_content()
    page.fill("#sudoku-text", "7" + "." * 35)
    assert "digit 7 at line 1, column 1 is too large for a 6×6 Sudoku" in page.locator("#solve-status").text_content()

    # A typed puzzle, with the separators people use; then the puzzle shown in the Browse tab.
    typed = "1.. | ...\n..2 | ...\n----+----\n... | 3..\n.4. | ...\n----+----\n... | .5.\n... | ..6\n"
    expected_tokens = np.ones(36, dtype=np.int64)
    for position, digit in ((0, 1), (8, 2), (15, 3), (19, 4), (28, 5), (35, 6)):
        expected_tokens[position] = digit + 1
    inputs = np.load(dataset / "test" / "all__inputs.npy")
    for fill, puzzle in ((lambda: page.fill("#sudoku-text", typed), expected_tokens),
                         (lambda: page.click("#example-button"), inputs[0])):
        fill()
        page.click("#solve-button")
        page.wait_for_selector("body[data-solved='true']", state="attached", timeout=60_000)
        result = page.evaluate("window.hrmLastSolve")
        np.testing.assert_array_equal(result["puzzle"], puzzle)

        reference = torch_trajectory(model, np.asarray(puzzle))
        browser_steps = np.array(result["steps"])
        assert browser_steps.shape == (6, 36)
        np.testing.assert_array_equal(browser_steps, reference.steps)          # every step's answer
        np.testing.assert_allclose(result["qHalt"], reference.q_halt, rtol=0, atol=1e-4)
        np.testing.assert_allclose(result["qContinue"], reference.q_continue, rtol=0, atol=1e-4)
        assert np.ptp(reference.q_halt) > 0.1                                  # q_halt does vary per step

        # The page shows the final answer, and the timeline walks back through the steps.
        answer = page.eval_on_selector_all("#solve-board-answer .cell", "cs => cs.map(c => Number(c.dataset.token))")
        np.testing.assert_array_equal(answer, reference.steps[-1])
        page.click("#solve-timeline button[title='first step']")
        page.wait_for_selector("#solve-timeline[data-step='1']", state="attached")
        answer = page.eval_on_selector_all("#solve-board-answer .cell", "cs => cs.map(c => Number(c.dataset.token))")
        np.testing.assert_array_equal(answer, reference.steps[0])
    screenshot(page, "solve-in-browser")
    assert page.errors == []
