"""Make the README's pictures of the visualiser from a trained run (e.g. `hrm demo --output runs/demo`).

    python scripts/viz_readme_images.py runs/demo [--out docs/images] [--index I]

  1. `hrm eval ... save_steps=true` on the run's test split (the first --examples puzzles);
  2. picks a puzzle the model solves only after changing its mind (unless --index is given);
  3. `hrm viz --png` draws its trajectory            -> OUT/viz-trajectory.png
  4. serves `hrm viz DATA PREDICTIONS --model RUN` and screenshots, in Debian's headless Chromium,
     the Browse tab on that puzzle                    -> OUT/viz-browse.png
     and the Solve tab after solving it in the browser -> OUT/viz-solve.png
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "viz"))


def interesting_row(predictions: Path) -> int:
    """A solved puzzle whose answer changed the most over the steps (the model 'thinking')."""
    from safetensors.numpy import load_file

    arrays = load_file(str(predictions))
    steps = arrays["step_predictions"]
    changes = (steps[:, 1:] != steps[:, :-1]).sum(axis=(1, 2))
    solved_late = arrays["exact"] & ~(steps[:, 0] == arrays["labels"]).all(1)
    candidates = np.flatnonzero(solved_late) if solved_late.any() else np.arange(len(steps))
    return int(candidates[np.argmax(changes[candidates])])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory, or a folder of runs (the newest)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--index", type=int, help="the test puzzle to show (default: chosen as above)")
    parser.add_argument("--examples", type=int, default=200, help="test puzzles to evaluate (default 200)")
    args = parser.parse_args()

    from hrm.viz.model import export_browser_model, load_model

    model = load_model(args.run)
    if model.data_path is None:
        parser.error(f"{args.run}: no dataset recorded with the run")
    work = Path(tempfile.mkdtemp(prefix="viz-readme-"))
    hrm = [sys.executable, "-m", "hrm.cli"]
    subprocess.run(hrm + ["eval", f"checkpoint={model.path}", "save_steps=true", f"max_examples={args.examples}",
                          f"out={work / 'eval'}", "progress=false"], check=True)
    predictions = work / "eval" / "predictions.safetensors"
    index = args.index if args.index is not None else interesting_row(predictions)
    args.out.mkdir(parents=True, exist_ok=True)
    subprocess.run(hrm + ["viz", str(model.data_path), str(predictions), "--png", str(args.out / "viz-trajectory.png"),
                          "--index", str(index)], check=True)

    from playwright.sync_api import sync_playwright

    from hrm.viz.data import VizData
    from hrm.viz.server import ServedModel, VizServer
    from viz_fixtures import CHROMIUM, CHROMIUM_ARGS

    onnx_path, metadata = export_browser_model(model, work / "export")
    server = VizServer(0, lambda: VizData(model.data_path, predictions), ServedModel(onnx_path, metadata))
    server.start_in_thread()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(f"{server.url}#split=test&index={index}")
        page.wait_for_selector(f"body[data-example='test:{index}']", state="attached")
        page.click("#browse-timeline button[title='first step']")
        page.click("#browse-timeline button[title^='next step']")
        page.mouse.move(0, 0)
        page.screenshot(path=str(args.out / "viz-browse.png"))
        page.click("#tab-solve")
        page.wait_for_selector("#solve-help:not(:empty)")
        page.click("#example-button")
        page.click("#solve-button")
        page.wait_for_selector("body[data-solved='true']", state="attached", timeout=120_000)
        page.mouse.move(0, 0)
        page.screenshot(path=str(args.out / "viz-solve.png"))
        browser.close()
    server.shutdown()
    print(f"wrote {args.out}/viz-trajectory.png, viz-browse.png and viz-solve.png (test puzzle {index})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
