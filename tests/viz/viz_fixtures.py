"""Helpers of the visualiser's tests: small datasets and predictions written in the real on-disk formats,
and the browser set-up. (A module of its own, not conftest.py, so that test modules import it by a unique name.)"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hrm.data.format import DatasetWriter
from hrm.evaluation.predictions import write_predictions

# A puzzle name that is also HTML: the page must show it as text.
HTML_NAME = '<img src=x onerror="window.__xss = 1">task<b>bold</b>'


def solved_sudoku(rng: np.random.Generator, box_rows: int = 3, box_cols: int = 3) -> np.ndarray:
    """A random valid N x N Sudoku solution (digits 1..N) from the shifted-pattern construction."""
    n = box_rows * box_cols
    rows = np.array([band * box_rows + r for band in rng.permutation(box_cols) for r in rng.permutation(box_rows)])
    cols = np.array([stack * box_cols + c for stack in rng.permutation(box_rows) for c in rng.permutation(box_cols)])
    digits = rng.permutation(n) + 1
    pattern = lambda r, c: (box_cols * (r % box_rows) + r // box_rows + c) % n
    return digits[pattern(rows[:, None], cols[None, :])]


def sudoku_arrays(count: int, seed: int, box_rows: int = 3, box_cols: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) as the Sudoku builder encodes them: blank 1, digit d -> d + 1."""
    rng = np.random.default_rng(seed)
    inputs, labels = [], []
    for _ in range(count):
        solution = solved_sudoku(rng, box_rows, box_cols).reshape(-1)
        puzzle = np.where(rng.random(solution.size) < 0.5, 0, solution)
        inputs.append(puzzle + 1)
        labels.append(solution + 1)
    return np.array(inputs, dtype=np.uint8), np.array(labels, dtype=np.uint8)


def write_sudoku_dataset(root: Path, n_train: int = 2, n_test: int = 6, seed: int = 0, box=(3, 3)) -> Path:
    n = box[0] * box[1]
    arguments = {"box": f"{box[0]}x{box[1]}"}          # as `hrm data sudoku --box` records it
    with DatasetWriter(root, builder="sudoku", arguments=arguments, seed=seed) as writer:
        for split, count in (("train", n_train), ("test", n_test)):
            inputs, labels = sudoku_arrays(count, seed + (split == "test"), *box)
            split_writer = writer.split(split, seq_len=n * n)
            for i in range(count):
                split_writer.add_group(inputs[i:i + 1], labels[i:i + 1], [1], [0])
        writer.commit(identifiers=["<blank>"], pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=n + 2)
    return root


def step_trajectory(inputs: np.ndarray, labels: np.ndarray, steps: int, wrong_rows: set[int], seed: int = 0):
    """Per-step predictions that fill in more correct cells each step; rows in wrong_rows keep 2 errors."""
    rng = np.random.default_rng(seed)
    n, s = labels.shape
    order = rng.permuted(np.tile(np.arange(s), (n, 1)), axis=1)
    step_predictions = np.empty((n, steps, s), dtype=np.int32)
    for k in range(steps):
        known = np.zeros((n, s), dtype=bool)
        np.put_along_axis(known, order[:, : int(s * (k + 1) / steps)], True, axis=1)
        wrong = np.where(labels == labels.max(), 2, labels + 1)   # a different digit
        step_predictions[:, k] = np.where(known | (inputs > 1), labels, wrong)
    for row in wrong_rows:
        cells = order[row, :2]
        step_predictions[row, -1, cells] = np.where(labels[row, cells] == labels.max(), 2, labels[row, cells] + 1)
    q_halt = np.linspace(-4, 3, steps, dtype=np.float32)[None].repeat(n, 0) + np.arange(n, dtype=np.float32)[:, None] * 0.1
    q_continue = np.zeros((n, steps), dtype=np.float32)
    return step_predictions, q_halt, q_continue


def write_sudoku_predictions(dataset: Path, out_dir: Path, steps: int = 4, wrong_rows=(1, 4),
                             file_format: str = "safetensors") -> Path:
    inputs = np.load(dataset / "test" / "all__inputs.npy").astype(np.int32)
    labels = np.load(dataset / "test" / "all__labels.npy").astype(np.int32)
    step_predictions, q_halt, q_continue = step_trajectory(inputs, labels, steps, set(wrong_rows))
    final = step_predictions[:, -1]
    arrays = {"inputs": inputs, "labels": labels, "puzzle_identifiers": np.zeros(len(inputs), np.int32),
              "predictions": final, "q_halt_logits": q_halt[:, -1], "q_continue_logits": q_continue[:, -1],
              "exact": (final == labels).all(1), "step_predictions": step_predictions,
              "step_q_halt_logits": q_halt, "step_q_continue_logits": q_continue}
    metadata = {"task": "sudoku", "data_path": str(dataset), "split": "test", "checkpoint": "test-checkpoint",
                "halt_max_steps": steps, "dataset_hash": "0" * 64}
    return write_predictions(out_dir, arrays, metadata, file_format=file_format)


def arc_sequence(grid: np.ndarray) -> np.ndarray:
    """The ARC builder's encoding at the top-left of a 30 x 30 canvas: colour c -> c + 2, EOS 1 around it."""
    canvas = np.zeros((30, 30), dtype=np.uint8)
    h, w = grid.shape
    canvas[:h, :w] = grid + 2
    if h < 30:
        canvas[h, :w] = 1
    if w < 30:
        canvas[:h, w] = 1
    return canvas.reshape(-1)


ARC_GRIDS = [  # (input, output) pairs of a small "recolour" task, and names (one of them HTML)
    (np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]]), np.array([[0, 2, 0], [2, 2, 2], [0, 2, 0]])),
    (np.array([[3, 0, 0, 4], [0, 5, 6, 0]]), np.array([[7, 0, 0, 8], [0, 9, 1, 0]])),
    (np.array([[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]), np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])),
]
ARC_NAMES = ["<blank>", "00d62c1b", HTML_NAME, "3c9b0459_t3_0718293456"]


def write_arc_dataset(root: Path) -> Path:
    with DatasetWriter(root, builder="arc", arguments={"test": True}, seed=0) as writer:
        for split in ("train", "test"):
            split_writer = writer.split(split, seq_len=900)
            for identifier, (grid_in, grid_out) in enumerate(ARC_GRIDS, start=1):
                split_writer.add_group(arc_sequence(grid_in)[None], arc_sequence(grid_out)[None], [1], [identifier])
        writer.commit(identifiers=ARC_NAMES, pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=12)
    return root


# ----------------------------------------------------------------------------------------------------
# The server and the browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "viz"
CHROMIUM = Path(os.environ.get("HRM_CHROMIUM", "/usr/bin/chromium"))
# Debian's chromium, driven by Playwright; never Playwright's own browser download.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def skip_or_fail(message: str) -> None:
    """Skip locally; under CI (CI=true) a missing browser is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def screenshot(page, name: str) -> Path:
    """Save a screenshot as a test artefact (test-artifacts/viz/NAME.png, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def maze_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 30 x 30 maze in the maze builder's encoding (# 1, space 2, S 3, G 4, path o 5): walls on the
    border and at random, an L-shaped path from S to G in the label."""
    rng = np.random.default_rng(seed)
    grid = np.where(rng.random((30, 30)) < 0.25, 1, 2)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = 1
    grid[2, 2:28] = 2
    grid[2:28, 27] = 2
    grid[2, 2], grid[27, 27] = 3, 4
    label = grid.copy()
    label[2, 3:28] = 5
    label[3:27, 27] = 5
    return grid.reshape(-1).astype(np.uint8), label.reshape(-1).astype(np.uint8)


def write_maze_dataset(root: Path) -> Path:
    with DatasetWriter(root, builder="maze", arguments={"test": True}, seed=0) as writer:
        for split in ("train", "test"):
            split_writer = writer.split(split, seq_len=900)
            for seed in range(2):
                inputs, labels = maze_arrays(seed)
                split_writer.add_group(inputs[None], labels[None], [1], [0])
        writer.commit(identifiers=["<blank>"], pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=6)
    return root



def raw_request(port: int, data: bytes, timeout: float = 10, half_close: bool = True) -> tuple[int | None, bytes]:
    """Send these exact bytes to 127.0.0.1:port and read the answer to its end: (status, whole answer).
    Raw, because http.client refuses to send the malformed requests the safety tests need. half_close
    tells the server that nothing more is coming (so an unfinished request is not waited for)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        answer = b""
        try:
            connection.sendall(data)
            if half_close:
                connection.shutdown(socket.SHUT_WR)
            while chunk := connection.recv(65536):
                answer += chunk
        except TimeoutError:
            raise                                 # a server that does not answer is a failure
        except OSError:
            pass                                  # reset or closed after answering: keep what was read
    first = answer.split(b"\r\n", 1)[0].split()
    status = int(first[1]) if len(first) >= 2 and first[0].startswith(b"HTTP/") and first[1].isdigit() else None
    return status, answer


def http_get(target: str | bytes, host: str = "127.0.0.1") -> bytes:
    """A GET request for exactly this request target, as bytes."""
    target = target.encode("utf-8", "surrogateescape") if isinstance(target, str) else target
    return b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n"


def open_solve_tab(page, serve, dataset: Path, onnx_path: Path, metadata: dict) -> None:
    """Serve `dataset` with the exported model, load the page and open its Solve tab, ready to solve."""
    from hrm.viz.data import VizData
    from hrm.viz.server import ServedModel

    server = serve(lambda: VizData(dataset), ServedModel(onnx_path, metadata))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']", state="attached")
    page.click("#tab-solve")
    page.wait_for_selector("#solve-help:not(:empty)")
