"""The page in headless Chromium: grids hold the data, the timeline steps, filters, ARC colours,
untrusted names shown as text, and errors shown instead of a blank page."""
from __future__ import annotations


import numpy as np
from safetensors.numpy import load_file

from viz_fixtures import ARC_GRIDS, ARC_NAMES, HTML_NAME, maze_arrays, screenshot, write_maze_dataset
from hrm.viz.data import VizData
from hrm.viz.tasks import ARC_COLOURS


def board(page, board_id: str) -> list[dict]:
    """Every cell of a board as the page drew it: flat position, token, text and classes."""
    return page.eval_on_selector_all(
        f"#{board_id} .cell",
        """cells => cells.map(c => ({pos: Number(c.dataset.pos), token: c.dataset.token === undefined ? null : Number(c.dataset.token),
                                      text: c.textContent, classes: [...c.classList], colour: getComputedStyle(c).backgroundColor}))""")


def tokens_of(cells: list[dict]) -> np.ndarray:
    return np.array([c["token"] for c in cells])


def open_example(page, server, index: int, split: str = "test") -> None:
    page.goto(f"{server.url}#split={split}&index={index}")
    page.wait_for_selector(f"body[data-example='{split}:{index}']", state="attached")


def sudoku_text(tokens: np.ndarray) -> list[str]:
    """What a Sudoku cell should show: the digit (token - 1), blank for tokens 0 and 1."""
    return [str(t - 1) if t >= 2 else "" for t in tokens]


def test_sudoku_grids_hold_the_data(page, serve, sudoku_dataset, sudoku_predictions):
    server = serve(lambda: VizData(sudoku_dataset, sudoku_predictions))
    inputs = np.load(sudoku_dataset / "test" / "all__inputs.npy")
    labels = np.load(sudoku_dataset / "test" / "all__labels.npy")
    saved = load_file(str(sudoku_predictions))

    page.goto(server.url)
    page.wait_for_selector("body[data-example='test:0']", state="attached")
    items = page.eval_on_selector_all("#entries li", "items => items.map(i => [Number(i.dataset.index), i.textContent])")
    assert [index for index, _ in items] == list(range(len(inputs)))
    for index, text in items:       # solved / failed marks follow the predictions' `exact`
        assert text.endswith("✓" if saved["exact"][index] else "✗")

    for index in (0, 4):
        page.click(f"#entries li[data-index='{index}']")
        page.wait_for_selector(f"body[data-example='test:{index}']", state="attached")
        shown_input, shown_label = board(page, "board-input"), board(page, "board-prediction")
        assert [c["pos"] for c in shown_input] == list(range(81))
        np.testing.assert_array_equal(tokens_of(shown_input), inputs[index])
        assert [c["text"] for c in shown_input] == sudoku_text(inputs[index])
        assert all(("given" in c["classes"]) == (inputs[index][c["pos"]] >= 2) for c in shown_input)
        target = board(page, "board-label")
        np.testing.assert_array_equal(tokens_of(target), labels[index])
        assert [c["text"] for c in target] == sudoku_text(labels[index])
        # The prediction board opens on the last step, with the final answer's errors marked.
        prediction = board(page, "board-prediction")
        np.testing.assert_array_equal(tokens_of(prediction), saved["predictions"][index])
        wrong = saved["predictions"][index] != saved["labels"][index]
        assert [("error" in c["classes"]) for c in prediction] == wrong.tolist()
        assert wrong.any() == (not saved["exact"][index])
    screenshot(page, "browse-sudoku")
    assert page.errors == []


def test_step_through_the_timeline(page, serve, sudoku_dataset, sudoku_predictions):
    server = serve(lambda: VizData(sudoku_dataset, sudoku_predictions))
    saved = load_file(str(sudoku_predictions))
    steps, q_halt = saved["step_predictions"], saved["step_q_halt_logits"]
    index, K = 1, steps.shape[1]
    open_example(page, server, index)
    timeline = page.locator("#browse-timeline")
    assert timeline.get_attribute("data-step") == str(K)

    page.click("#browse-timeline button[title='first step']")
    for k in range(1, K + 1):
        page.wait_for_selector(f"#browse-timeline[data-step='{k}']", state="attached")
        cells = board(page, "board-prediction")
        np.testing.assert_array_equal(tokens_of(cells), steps[index, k - 1])
        changed = [("changed" in c["classes"]) for c in cells]
        expected = (steps[index, k - 1] != steps[index, k - 2]) if k > 1 else np.zeros(81, bool)
        assert changed == expected.tolist(), f"step {k}: changed cells"
        errors = [("error" in c["classes"]) for c in cells]
        assert errors == (steps[index, k - 1] != saved["labels"][index]).tolist(), f"step {k}: error cells"
        info = page.locator("#browse-timeline .step-info").text_content()
        assert f"step {k} / {K}" in info and f"q_halt {q_halt[index, k - 1]:.2f}" in info
        if k == 2:
            screenshot(page, "browse-timeline-step2")
        if k < K:
            page.keyboard.press("ArrowRight")

    # Animate from the first step: the player walks to the last step by itself.
    page.click("#browse-timeline button[title='first step']")
    page.wait_for_selector("#browse-timeline[data-step='1']", state="attached")
    page.select_option("#browse-timeline select", "150")
    page.click("#browse-timeline button[title^='animate']")
    page.wait_for_selector(f"#browse-timeline[data-step='{K}']", state="attached", timeout=10_000)
    # One bar per step; the green ones are where q_halt > q_continue.
    halts = page.eval_on_selector_all("#browse-timeline .qbar", "bars => bars.map(b => b.classList.contains('halt'))")
    assert halts == (q_halt[index] > saved["step_q_continue_logits"][index]).tolist()
    assert page.errors == []


def test_filter_solved_and_failed(page, serve, sudoku_dataset, sudoku_predictions):
    server = serve(lambda: VizData(sudoku_dataset, sudoku_predictions))
    exact = load_file(str(sudoku_predictions))["exact"]
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']", state="attached")
    for choice, rows in (("failed", np.flatnonzero(~exact)), ("solved", np.flatnonzero(exact))):
        page.select_option("#filter", choice)
        page.wait_for_function("([n, first]) => document.querySelectorAll('#entries li').length === n && "
                               "document.body.dataset.example === 'test:' + first", arg=[len(rows), int(rows[0])])
        shown = page.eval_on_selector_all("#entries li", "items => items.map(i => Number(i.dataset.index))")
        assert shown == rows.tolist()
    screenshot(page, "browse-filter-solved")


def test_arc_colours_and_a_name_holding_html(page, serve, arc_dataset):
    server = serve(lambda: VizData(arc_dataset))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']", state="attached")
    names = page.eval_on_selector_all("#entries li .name", "spans => spans.map(s => s.textContent)")
    assert names == ARC_NAMES[1:]                   # shown as text, character for character

    index = ARC_NAMES.index(HTML_NAME) - 1          # example i holds puzzle identifier i + 1
    page.click(f"#entries li[data-index='{index}']")
    page.wait_for_selector(f"body[data-example='test:{index}']", state="attached")
    assert page.locator("#puzzle-title").text_content() == HTML_NAME
    assert page.locator("img").count() == 0 and page.locator("#entries b, #puzzle-title b").count() == 0
    assert page.evaluate("window.__xss") is None

    grid_in, grid_out = ARC_GRIDS[index]
    for board_id, grid in (("board-input", grid_in), ("board-label", grid_out)):
        cells = board(page, board_id)
        h, w = grid.shape
        shown = {(c["pos"] // 30, c["pos"] % 30): c for c in cells}
        assert len(cells) == (h + 1) * (w + 1)       # the grid and its EOS border
        for r in range(h):
            for c in range(w):
                colour = ARC_COLOURS[grid[r, c]]
                rgb = f"rgb({int(colour[1:3], 16)}, {int(colour[3:5], 16)}, {int(colour[5:7], 16)})"
                assert shown[r, c]["token"] == grid[r, c] + 2 and shown[r, c]["colour"] == rgb
    screenshot(page, "browse-arc-html-name")
    assert page.errors == []


def test_maze_cells_take_the_maze_colours(page, serve, tmp_path):
    server = serve(lambda: VizData(write_maze_dataset(tmp_path / "maze")))
    open_example(page, server, 1)
    inputs, labels = maze_arrays(1)
    style = VizData(tmp_path / "maze").style
    for board_id, tokens in (("board-input", inputs), ("board-label", labels)):
        cells = board(page, board_id)
        np.testing.assert_array_equal(tokens_of(cells), tokens)
        for cell in cells[:60] + [cells[2 * 30 + 2], cells[27 * 30 + 27]]:
            look = style.tokens[cell["token"]]
            assert cell["colour"] == "rgb({}, {}, {})".format(*(int(look.colour[i:i + 2], 16) for i in (1, 3, 5)))
            assert cell["text"] == look.text
    assert board(page, "board-input")[2 * 30 + 2]["text"] == "S" and board(page, "board-input")[27 * 30 + 27]["text"] == "G"
    screenshot(page, "browse-maze")


def test_malformed_dataset_shows_an_error(page, serve, sudoku_dataset):
    (sudoku_dataset / "test" / "dataset.json").write_text('{"pad_id": 0, "vocab_size": ')
    server = serve(lambda: VizData(sudoku_dataset))
    page.goto(server.url)
    error = page.wait_for_selector(".error-box")
    text = error.text_content()
    assert str(sudoku_dataset / "test" / "dataset.json") in text and "malformed JSON" in text
    assert page.locator("#loading").is_hidden()
    screenshot(page, "error-malformed-dataset")


def test_truncated_predictions_show_an_error(page, serve, sudoku_dataset, sudoku_predictions):
    data = sudoku_predictions.read_bytes()
    sudoku_predictions.write_bytes(data[: len(data) // 2])
    server = serve(lambda: VizData(sudoku_dataset, sudoku_predictions))
    page.goto(server.url)
    text = page.wait_for_selector(".error-box").text_content()
    assert str(sudoku_predictions) in text


def test_bad_request_shows_an_error_in_the_page(page, serve, sudoku_dataset):
    server = serve(lambda: VizData(sudoku_dataset))
    page.goto(f"{server.url}#split=test&index=999")
    text = page.wait_for_selector(".error-box").text_content()
    assert "example 999 is out of range" in text
