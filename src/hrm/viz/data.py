"""What the visualiser shows: a dataset split (formats §1) and, optionally, the predictions of a model on it.

    VizData(dataset, predictions)   either may be None, not both
      .info()                       task, drawing style, splits, what the predictions hold
      .entries(split, ...)          one page of the puzzle list, filtered to solved / failed / a name
      .example(split, index)        one example: input, label, and the model's answer at every ACT step

Predictions are read from `predictions.safetensors` or `predictions.npz` + `predictions.json` (format in
`hrm eval`; rows in test-split order, so row i is example i of the split). Everything a file says is
checked, and a problem raises VizError naming the file and the tensor or field.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrm.data.format import DatasetFormatError, load_identifiers, load_metadata, load_set_arrays
from hrm.data.manifest import read_manifest
from hrm.puzzles import detect, family_name
from hrm.puzzles.sudoku import parse_box
from hrm.viz.tasks import IGNORE_LABEL, TaskStyle, task_style, view_box

FILTERS = ("all", "solved", "failed")
MAX_PAGE = 1000


class VizError(ValueError):
    """A dataset or predictions file the visualiser cannot show; the message says which file and why."""


# ----------------------------------------------------------------------------------------------------
# Predictions

# name -> (number of dimensions, dtype kind: i integer, f float, b bool)
REQUIRED = {"inputs": (2, "iu"), "labels": (2, "iu"), "puzzle_identifiers": (1, "iu"), "predictions": (2, "iu"),
            "q_halt_logits": (1, "f"), "q_continue_logits": (1, "f"), "exact": (1, "b")}
STEPS = {"step_predictions": (3, "iu"), "step_q_halt_logits": (2, "f"), "step_q_continue_logits": (2, "f")}


@dataclass
class Predictions:
    path: Path
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]

    @property
    def rows(self) -> int:
        return int(self.arrays["inputs"].shape[0])

    @property
    def num_steps(self) -> int:
        """K, the number of recorded ACT steps; 0 when only the final step was saved."""
        steps = self.arrays.get("step_predictions")
        return 0 if steps is None else int(steps.shape[1])

    @property
    def split(self) -> str:
        return str(self.metadata.get("split") or "test")


def load_predictions(path: str | Path) -> Predictions:
    """Read with hrm.evaluation's reader (format and metadata checks), then check every shape."""
    from hrm.evaluation.predictions import PredictionsError, read_predictions

    path = Path(path)
    try:
        arrays, metadata = read_predictions(path)
    except PredictionsError as error:
        raise VizError(str(error)) from None
    if path.is_dir():
        path = next(p for p in (path / "predictions.safetensors", path / "predictions.npz") if p.is_file())
    _check_prediction_arrays(path, arrays)
    return Predictions(path, arrays, metadata)


def _check_prediction_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def check(name: str, ndim: int, kinds: str) -> None:
        array = arrays[name]
        if array.ndim != ndim or array.dtype.kind not in kinds:
            raise VizError(f"{path}: tensor '{name}' is {array.dtype} with shape {tuple(array.shape)}; "
                           f"expected {ndim} dimension(s) of kind {kinds!r}")

    missing = [name for name in REQUIRED if name not in arrays]
    if missing:
        raise VizError(f"{path}: missing tensor(s) {', '.join(missing)}")
    for name, (ndim, kinds) in REQUIRED.items():
        check(name, ndim, kinds)
    n, seq_len = arrays["inputs"].shape
    for name in REQUIRED:
        expected = (n, seq_len) if arrays[name].ndim == 2 else (n,)
        if arrays[name].shape != expected:
            raise VizError(f"{path}: tensor '{name}' has shape {tuple(arrays[name].shape)}, expected {expected}")
    present = [name for name in STEPS if name in arrays]
    if present and len(present) != len(STEPS):
        raise VizError(f"{path}: per-step tensors are incomplete: has {', '.join(present)}, "
                       f"needs all of {', '.join(STEPS)}")
    if present:
        for name, (ndim, kinds) in STEPS.items():
            check(name, ndim, kinds)
        k = arrays["step_predictions"].shape[1]
        for name, expected in (("step_predictions", (n, k, seq_len)), ("step_q_halt_logits", (n, k)),
                               ("step_q_continue_logits", (n, k))):
            if arrays[name].shape != expected:
                raise VizError(f"{path}: tensor '{name}' has shape {tuple(arrays[name].shape)}, expected {expected}")


# ----------------------------------------------------------------------------------------------------
# A split of a dataset

@dataclass
class Split:
    name: str
    inputs: np.ndarray              # (examples, S), memory-mapped
    labels: np.ndarray              # (examples, S), memory-mapped; `ignore_label_id` marks ignored positions
    identifiers: np.ndarray         # (examples,) puzzle identifier of each example
    puzzles: np.ndarray | None      # (examples,) puzzle index of each example; None without a dataset
    ignore_label_id: int | None = None

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    def labels_of(self, index: int) -> np.ndarray:
        """One example's labels, ignored positions as -100 (NOTE: per row: an ARC train split is gigabytes)."""
        labels = np.asarray(self.labels[index]).astype(np.int64)
        if self.ignore_label_id is not None:
            labels[labels == self.ignore_label_id] = IGNORE_LABEL
        return labels


def _load_split(root: Path, split: str) -> tuple[Split, Any]:
    metadata = load_metadata(root, split)
    if len(metadata.sets) != 1:
        raise VizError(f"{root / split / 'dataset.json'}: has sets {metadata.sets}; the visualiser reads one set per split")
    arrays = load_set_arrays(root, split, metadata.sets[0])
    inputs, labels = arrays["inputs"], arrays["labels"]
    where = root / split
    if inputs.ndim != 2 or inputs.shape[1] != metadata.seq_len or labels.shape != inputs.shape:
        raise VizError(f"{where}: inputs {tuple(inputs.shape)} and labels {tuple(labels.shape)} do not match "
                       f"seq_len {metadata.seq_len}")
    indices = arrays["puzzle_indices"].astype(np.int64)
    ids = arrays["puzzle_identifiers"].astype(np.int64)
    if (indices.ndim != 1 or len(indices) != len(ids) + 1 or indices[0] != 0 or indices[-1] != len(inputs)
            or (np.diff(indices) < 0).any()):
        raise VizError(f"{where}: puzzle_indices must rise from 0 to the {len(inputs)} examples, "
                       f"one more entry than puzzle_identifiers ({len(ids)})")
    puzzles = np.searchsorted(indices, np.arange(len(inputs)), side="right") - 1
    return Split(split, inputs, labels, ids[puzzles], puzzles, metadata.ignore_label_id), metadata


class VizData:
    def __init__(self, dataset: str | Path | None = None, predictions: str | Path | None = None,
                 task: str | None = None):
        if dataset is None and predictions is None:
            raise VizError("nothing to show: give a dataset folder, a predictions file, or both")
        self.dataset = Path(dataset) if dataset is not None else None
        self.predictions = load_predictions(predictions) if predictions is not None else None
        self.splits: dict[str, Split] = {}
        self.names: list[str] = []
        builder, box = None, None
        try:
            if self.dataset is not None:
                if not self.dataset.is_dir():
                    raise VizError(f"{self.dataset}: dataset folder not found")
                manifest = read_manifest(self.dataset)
                builder = manifest.get("builder") if manifest else None
                box = parse_box((manifest or {}).get("arguments", {}).get("box"))
                self.names = load_identifiers(self.dataset)
                for split in ("train", "test"):
                    if (self.dataset / split / "dataset.json").exists():
                        self.splits[split], meta = _load_split(self.dataset, split)
                        seq_len, vocab = meta.seq_len, meta.vocab_size
                if not self.splits:
                    raise VizError(f"{self.dataset}: no train/ or test/ split with a dataset.json")
        except DatasetFormatError as error:
            raise VizError(str(error)) from None

        if self.predictions is not None:
            pred = self.predictions
            arrays = pred.arrays
            if self.dataset is None:
                self.splits[pred.split] = Split(pred.split, arrays["inputs"], arrays["labels"].astype(np.int32),
                                                arrays["puzzle_identifiers"].astype(np.int64), None)
                seq_len = int(arrays["inputs"].shape[1])
                vocab = int(max(arrays["inputs"].max(initial=0), arrays["predictions"].max(initial=0),
                                arrays["labels"].max(initial=0))) + 1
                self.names = self._names_beside(pred)
            else:
                self._check_predictions_match(pred)
        self.family = detect(seq_len, vocab, task, builder,
                             self.predictions.metadata.get("task") if self.predictions else None)
        self.task = family_name(self.family)
        try:
            self.style: TaskStyle = task_style(self.task, seq_len, vocab, box)
        except ValueError as error:
            raise VizError(f"{self.dataset or self.predictions.path}: {error}") from None
        self.seq_len, self.vocab_size = seq_len, vocab

    @staticmethod
    def _names_beside(pred: Predictions) -> list[str]:
        """Puzzle names from the dataset the predictions were made on, if it is still there."""
        data_path = pred.metadata.get("data_path")
        if isinstance(data_path, str) and (Path(data_path) / "identifiers.json").is_file():
            try:
                return load_identifiers(data_path)
            except DatasetFormatError:
                return []
        return []

    def _check_predictions_match(self, pred: Predictions) -> None:
        split = self.splits.get(pred.split)
        if split is None:
            raise VizError(f"{pred.path}: predictions are for split '{pred.split}', which {self.dataset} does not have")
        if pred.arrays["inputs"].shape[1] != split.inputs.shape[1]:
            raise VizError(f"{pred.path}: sequences of length {pred.arrays['inputs'].shape[1]}, but {self.dataset} "
                           f"has seq_len {split.inputs.shape[1]}")
        if pred.rows > split.size:
            raise VizError(f"{pred.path}: {pred.rows} rows, but split '{pred.split}' of {self.dataset} has "
                           f"only {split.size} examples")
        chunk = 1 << 16                                 # rows at a time: the split is memory-mapped
        for start in range(0, pred.rows, chunk):
            stop = min(start + chunk, pred.rows)
            differs = (np.asarray(split.inputs[start:stop]) != pred.arrays["inputs"][start:stop]).any(1)
            if differs.any():
                row = start + int(np.argmax(differs))
                raise VizError(f"{pred.path}: row {row} has different inputs from example {row} of "
                               f"{self.dataset}/{pred.split}: the predictions were made on another dataset")

    # ------------------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        pred = self.predictions
        return {
            "task": self.task,
            "style": self.style.to_json(),
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
            "dataset": str(self.dataset) if self.dataset else None,
            "splits": {name: split.size for name, split in self.splits.items()},
            "default_split": pred.split if pred else ("test" if "test" in self.splits else next(iter(self.splits))),
            "predictions": None if pred is None else {
                "path": str(pred.path), "split": pred.split, "rows": pred.rows, "num_steps": pred.num_steps,
                "solved": int(pred.arrays["exact"].sum()),
                "metadata": {k: v for k, v in pred.metadata.items() if isinstance(v, (str, int, float, bool))},
            },
        }

    def _split(self, split: str) -> Split:
        if split not in self.splits:
            raise VizError(f"no split named {split!r}; available: {', '.join(self.splits)}")
        return self.splits[split]

    def _predicted_rows(self, split: str) -> int:
        pred = self.predictions
        return pred.rows if pred is not None and pred.split == split else 0

    def name(self, identifier: int) -> str:
        return self.names[identifier] if 0 <= identifier < len(self.names) else f"#{identifier}"

    def entries(self, split: str, filter: str = "all", query: str = "", offset: int = 0,
                limit: int = 200) -> dict[str, Any]:
        """One page of the puzzle list. Filters other than 'all' keep only the rows with predictions."""
        data = self._split(split)
        if filter not in FILTERS:
            raise VizError(f"unknown filter {filter!r}; choose one of {', '.join(FILTERS)}")
        limit = max(1, min(int(limit), MAX_PAGE))
        rows = self._predicted_rows(split)
        exact = self.predictions.arrays["exact"] if rows else np.zeros(0, dtype=bool)
        if filter == "all":
            selected = np.arange(data.size)
        else:
            selected = np.flatnonzero(exact if filter == "solved" else ~exact)
        if query:
            matching = [i for i, name in enumerate(self.names) if query.lower() in name.lower()]
            selected = selected[np.isin(data.identifiers[selected], matching)]
        page = selected[offset:offset + limit]
        entries = []
        for index in page.tolist():
            identifier = int(data.identifiers[index])
            status = None if index >= rows else ("solved" if exact[index] else "failed")
            entries.append({"index": index, "name": self.name(identifier), "identifier": identifier, "status": status})
        return {"split": split, "filter": filter, "total": int(len(selected)), "offset": offset, "entries": entries}

    def example(self, split: str, index: int) -> dict[str, Any]:
        data = self._split(split)
        if not 0 <= index < data.size:
            raise VizError(f"example {index} is out of range: split '{split}' has {data.size} examples")
        inputs = np.asarray(data.inputs[index]).astype(np.int64)
        labels = data.labels_of(index)
        identifier = int(data.identifiers[index])
        result: dict[str, Any] = {
            "split": split, "index": index, "identifier": identifier, "name": self.name(identifier),
            "puzzle": None if data.puzzles is None else int(data.puzzles[index]),
            "inputs": inputs.tolist(), "labels": labels.tolist(),
            "view": view_box(self.style, inputs, np.where(labels == IGNORE_LABEL, 0, labels)),
            "prediction": None,
        }
        if index < self._predicted_rows(split):
            arrays = self.predictions.arrays
            prediction = {"final": arrays["predictions"][index].astype(np.int64).tolist(),
                          "exact": bool(arrays["exact"][index]),
                          "q_halt": float(arrays["q_halt_logits"][index]),
                          "q_continue": float(arrays["q_continue_logits"][index]),
                          "steps": None, "step_q_halt": None, "step_q_continue": None}
            if self.predictions.num_steps:
                prediction |= {"steps": arrays["step_predictions"][index].astype(np.int64).tolist(),
                               "step_q_halt": arrays["step_q_halt_logits"][index].astype(float).tolist(),
                               "step_q_continue": arrays["step_q_continue_logits"][index].astype(float).tolist()}
            result["prediction"] = prediction
        return result
