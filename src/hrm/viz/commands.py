"""`hrm viz`: browse puzzles, predictions and ACT steps in the browser, solve in the browser, or draw a PNG.

    hrm viz DATASET [PREDICTIONS]              serve the visualiser on http://127.0.0.1:8765/
    hrm viz PREDICTIONS                        the predictions alone (they hold inputs and labels)
    hrm viz [DATASET] model=RUN_DIR            also solve Sudoku in the browser with that model (ONNX)
    hrm viz DATASET PREDICTIONS png=OUT index=I         one example's trajectory, from the predictions
    hrm viz [DATASET] model=RUN_DIR png=OUT (index=I | puzzle=TEXT)   ... computed with PyTorch

(`--model RUN_DIR`, `--png OUT` and the other --option spellings work too.)
"""
from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from hrm.cli_args import Command, Option
from hrm.viz.data import VizData, VizError
from hrm.viz.server import LOOPBACK_HOSTS
from hrm.viz.tasks import TASKS

DEFAULT_PORT = 8765


def spec() -> Command:
    return Command("hrm viz", __doc__, [
        Option("paths", many=True, positional=True, default=[], metavar="DATASET|PREDICTIONS",
               help="a dataset folder (hrm data's format) and/or a predictions file from hrm eval "
                    "(predictions.safetensors, predictions.npz, or the folder holding it)"),
        Option("port", int, DEFAULT_PORT, help="port on localhost (0 = any free port)"),
        Option("host", default="127.0.0.1", choices=tuple(LOOPBACK_HOSTS),
               help="the address to listen on. Loopback only: the server is reachable from this machine alone; "
                    "to view it from another, forward the port (ssh -L 8765:127.0.0.1:8765)"),
        Option("task", choices=tuple(TASKS), help="puzzle family, when the dataset does not say (its manifest's builder)"),
        Option("model", metavar="RUN_DIR|CHECKPOINT",
               help="a trained model: exported to ONNX and served, so the page can solve Sudoku in the browser"),
        Option("onnx", metavar="MODEL_ONNX", help="serve an existing browser export (model.onnx, model.json beside it)"),
        Option("export_dir", metavar="DIR", help="where model= writes model.onnx and model.json (default: a temporary folder)"),
        Option("open", bool, False, help="open the page in this machine's web browser"),
        Option("verbose", bool, False, help="log every request"),
        Option("png", metavar="OUT", help="static picture: draw one example's reasoning trajectory to this PNG and exit"),
        Option("index", int, 0, help="png: the example to draw (row of the split)"),
        Option("split", help="png: the dataset split to draw from (default: the predictions', else test)"),
        Option("puzzle", help="png with model=: draw this Sudoku instead (digits, '.' or 0 for blanks)"),
        Option("columns", int, 8, help="png: step panels per row"),
    ])


def _classify(paths: list[str]) -> tuple[Path | None, Path | None]:
    """(dataset folder, predictions file) from up to two paths, in either order."""
    dataset = predictions = None
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise VizError(f"{path}: no such file or folder")
        is_predictions = path.is_file() or (
            not (path / "identifiers.json").exists()
            and any((path / name).is_file() for name in ("predictions.safetensors", "predictions.npz")))
        if is_predictions:
            if predictions is not None:
                raise VizError(f"two predictions files given: {predictions} and {path}")
            predictions = path
        else:
            if dataset is not None:
                raise VizError(f"two dataset folders given: {dataset} and {path}")
            dataset = path
    return dataset, predictions


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)
    if len(args.paths) > 2:
        print("hrm viz: give at most a dataset folder and a predictions file", file=sys.stderr)
        return 2
    try:
        dataset, predictions = _classify(args.paths)
        model = None
        if args.model:
            from hrm.viz.model import load_model
            model = load_model(args.model)
            if dataset is None and predictions is None and model.data_path is not None:
                dataset = model.data_path          # the run's own dataset, recorded in its config
        if args.png:
            return _draw_png(args, dataset, predictions, model)
        return _serve(args, dataset, predictions, model)
    except (VizError, ValueError) as error:
        print(f"hrm viz: {error}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------------------------------

def _draw_png(args, dataset: Path | None, predictions: Path | None, model) -> int:
    from hrm.viz.png import Trajectory, draw_trajectory

    data = VizData(dataset, predictions, args.task) if (dataset or predictions) else None
    if args.puzzle is not None:
        if model is None:
            raise VizError("--puzzle needs --model: the trajectory is computed by running the model")
        from hrm.puzzles import SUDOKU
        if model.family is not SUDOKU:
            raise VizError(f"--puzzle takes a Sudoku, but the model is for {model.task}")
        from hrm.viz.model import torch_trajectory
        inputs = _parse_sudoku(args.puzzle, model.box)
        trajectory = torch_trajectory(model, inputs, title=f"{model.path}")
        style = SUDOKU.style(model.config.seq_len, model.config.vocab_size, model.box)
    else:
        if data is None:
            raise VizError("--png needs a predictions file, or a dataset (or a run with a recorded dataset) and --model")
        split = args.split or data.info()["default_split"]
        example = data.example(split, args.index)
        # Identifier 0 is the shared "<blank>" one (every Sudoku and maze puzzle): no name worth showing.
        name = example["name"] if example["identifier"] != 0 else f"{data.task} puzzle"
        title = f"{name} · example #{args.index} of the {split} split"
        inputs, labels = np.array(example["inputs"]), np.array(example["labels"])
        prediction = example["prediction"]
        if prediction is not None:
            steps = prediction["steps"] or [prediction["final"]]
            q_halt = prediction["step_q_halt"] or [prediction["q_halt"]]
            q_continue = prediction["step_q_continue"] or [prediction["q_continue"]]
            rule = data.predictions.metadata.get("halt_rule") or Trajectory.halt_rule
            trajectory = Trajectory(inputs, labels, np.array(steps), np.array(q_halt, dtype=float),
                                    np.array(q_continue, dtype=float), title, rule)
            if not prediction["steps"]:
                print("hrm viz: the predictions hold the final step only (evaluate with save_steps for every step)",
                      file=sys.stderr)
        elif model is not None:
            from hrm.viz.model import torch_trajectory
            trajectory = torch_trajectory(model, inputs, labels, int(example["identifier"]), f"{title} · {model.path}")
        else:
            raise VizError(f"example {args.index} of split '{split}' has no predictions; give a predictions file or --model")
        style = data.style
    out = draw_trajectory(style, trajectory, args.png, columns=args.columns)
    print(f"wrote {out} ({len(trajectory.steps)} steps)")
    return 0


def _parse_sudoku(text: str, box: tuple[int, int]) -> np.ndarray:
    """A Sudoku typed on the command line -> tokens; spaces and | + - separators are ignored."""
    from hrm.data.sudoku import SudokuInputError, encode_board, parse_board
    from hrm.data.sudoku_solver import Box

    cells = "".join(ch for ch in text if not ch.isspace() and ch not in "|+-")
    try:
        return encode_board(parse_board(cells, Box(*box), where="--puzzle")).astype(np.int32)
    except SudokuInputError as error:
        raise VizError(str(error)) from None


def _serve(args, dataset: Path | None, predictions: Path | None, model) -> int:
    if model is not None and not args.export_dir:
        # The on-the-fly export lives as long as the server.
        with tempfile.TemporaryDirectory(prefix="hrm-viz-") as export_dir:
            return _serve_with(args, dataset, predictions, model, Path(export_dir))
    return _serve_with(args, dataset, predictions, model, Path(args.export_dir) if args.export_dir else None)


def _serve_with(args, dataset: Path | None, predictions: Path | None, model, export_dir: Path | None) -> int:
    from hrm.viz.server import ServedModel, VizServer

    served = None
    if model is not None:
        from hrm.viz.model import export_browser_model
        print(f"exporting {model.path} to ONNX in {export_dir} ...", file=sys.stderr)
        onnx_path, metadata = export_browser_model(model, export_dir)
        served = ServedModel(onnx_path, metadata)
    elif args.onnx:
        served = _existing_export(Path(args.onnx))

    def load() -> VizData | None:
        return VizData(dataset, predictions, args.task) if (dataset or predictions) else None

    if dataset is None and predictions is None and served is None:
        raise VizError("nothing to show: give a dataset folder, a predictions file, or --model")
    try:
        server = VizServer(args.port, load, served, host=args.host, quiet=not args.verbose)
    except OSError as error:
        raise VizError(f"cannot listen on {args.host}:{args.port} ({error.strerror}); "
                       f"choose another port with --port (0 picks a free one)") from None
    if server.load_error:
        print(f"hrm viz: {server.load_error}\n(the page shows this error too)", file=sys.stderr)
    print(f"hrm viz: serving on {server.url}  (Ctrl-C to stop)", flush=True)
    if args.open:
        import webbrowser
        webbrowser.open(server.url)
    def stop(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        # A TERM also stops cleanly (and removes the temporary export). SIGINT is set explicitly because a
        # process started in the background by a non-interactive shell inherits it ignored.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _existing_export(onnx_path: Path):
    import json

    from hrm.viz.server import ServedModel

    meta_path = onnx_path.with_suffix(".json")
    if not onnx_path.is_file():
        raise VizError(f"{onnx_path}: no such ONNX file")
    if not meta_path.is_file():
        raise VizError(f"{meta_path}: missing; the browser needs the metadata written beside the export "
                       f"(hrm viz --model RUN_DIR --export-dir DIR writes both)")
    try:
        metadata = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise VizError(f"{meta_path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    from hrm.viz.model import BROWSER_MODEL_FORMAT
    if not isinstance(metadata, dict) or metadata.get("format") != BROWSER_MODEL_FORMAT:
        raise VizError(f"{meta_path}: not a browser model description (format {BROWSER_MODEL_FORMAT!r})")
    return ServedModel(onnx_path, metadata)
