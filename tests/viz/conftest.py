"""Fixtures of the visualiser's tests: datasets, predictions, a running server, and headless Chromium."""
from __future__ import annotations

from pathlib import Path

import pytest

from viz_fixtures import CHROMIUM, CHROMIUM_ARGS, skip_or_fail, write_arc_dataset, write_sudoku_dataset, \
    write_sudoku_predictions


@pytest.fixture
def sudoku_dataset(tmp_path) -> Path:
    return write_sudoku_dataset(tmp_path / "sudoku")


@pytest.fixture
def sudoku_predictions(sudoku_dataset, tmp_path) -> Path:
    return write_sudoku_predictions(sudoku_dataset, tmp_path / "eval")


@pytest.fixture
def arc_dataset(tmp_path) -> Path:
    return write_arc_dataset(tmp_path / "arc")


@pytest.fixture
def serve():
    """serve(load, model=None) -> a running VizServer on a free loopback port; stopped after the test."""
    from hrm.viz.server import VizServer

    servers = []

    def start(load, model=None):
        server = VizServer(0, load, model)
        server.start_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        skip_or_fail(f"{CHROMIUM} not found: the browser tests need Debian's chromium "
                     f"(run scripts/install-browser.sh, or set HRM_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the browser tests need the playwright package (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir).
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page; page.errors collects uncaught page errors, which a test should see none of."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()
