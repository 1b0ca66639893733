"""One way to open a run: a checkpoint path -> the model, its architecture, its run, its dataset, its puzzles.

    run = open_run("runs/sudoku-demo")              # device/dtype "auto": hrm.device's policy
    run.head, run.arch, run.info                    # the loss head (eval mode), its config, checkpoint info
    run.run_config, run.data_path, run.metadata     # all_config.yaml, the dataset, its split's metadata
    run.family, run.box                             # the puzzle family (hrm.puzzles), a Sudoku's box shape

What a user may name as a checkpoint: a run directory (its latest checkpoints/step_<N>), a folder of runs
(as `hrm demo` leaves: the newest run), a checkpoints/step_<N> folder, a folder or `.safetensors` file
of hrm weights (formats §3), or an original `step_<N>` file with its all_config.yaml (formats §4).
The dataset is the one given, else the one the run's all_config.yaml names, if it is here.

Used by hrm eval, hrm solve, hrm viz, hrm export, hrm verify, the MLX port and the demo. Every problem is
one RunError line. NOTE: torch is imported on first use, so the MLX port can locate hrm weights without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrm.puzzles import Family, detect, family_name

ALL_CONFIG = "all_config.yaml"


class RunError(ValueError):
    """A checkpoint, run or dataset that cannot be opened; the message says what and where."""


@dataclass
class OpenedRun:
    weights: Path                       # what was read: a weights folder or file, or an original step_<N>
    step_name: str                      # e.g. "step_26040", for output folder names
    run_dir: Path | None                # where all_config.yaml lives, if anywhere
    run_config: dict[str, Any]          # all_config.yaml, as plain YAML ({} without one)
    trained_dtype: str | None           # the dtype the weights were trained in, if the checkpoint says
    data_path: Path | None              # the dataset given, else the run's own if it is here
    metadata: Any = None                # hrm.data.DatasetMetadata of `split` (seq_len, vocab_size, ...)
    manifest: dict[str, Any] = field(default_factory=dict)   # the dataset's manifest.json (formats §1.3)
    family: Family | None = None        # None when the puzzles cannot be told (hrm.puzzles.detect)
    box: str | None = None              # a Sudoku dataset's box shape ("2x3"), as its builder recorded it
    head: Any = None                    # the ACTLossHead, eval mode (None with load=False)
    arch: Any = None                    # its architecture config
    info: dict[str, Any] = field(default_factory=dict)   # "format" (hrm | original), "path", "step", "dataset_hash"
    choice: Any = None                  # hrm.device.DeviceChoice: where and in which dtype the model runs
    weights_kind: str = "live"          # which weights the model holds: "live", or "averaged (EMA, rate r)"

    @property
    def task(self) -> str:
        return family_name(self.family)

    @property
    def is_original(self) -> bool:
        from hrm.models.checkpoint import is_hrm_checkpoint
        return not is_hrm_checkpoint(self.weights)

    def require_data(self) -> Path:
        """The dataset, or the one-line error that says how to give one."""
        if self.data_path is not None:
            return self.data_path
        from hrm.models.checkpoint import recorded_data_path
        recorded = recorded_data_path(self.run_config)
        raise RunError(f"{self.weights}: " + (f"its run's data_path {recorded} is not here" if recorded else
                                              "no data_path recorded with this checkpoint") + "; pass data_path=DATASET")


def open_run(path: str | Path, device: Any = "auto", dtype: Any = "auto", data_path: str | Path | None = None,
             arch_overrides: dict[str, Any] | None = None, split: str = "test", load: bool = True,
             live_weights: bool = False) -> OpenedRun:
    """Open the checkpoint at `path` (see the module docstring) and, with `load`, its model.

    By default the model holds model.safetensors (the averaged weights when the run averaged them, as it
    reports them); `live_weights` loads the parameters training went on from, which such a checkpoint keeps
    beside (semantics §15.4).

    `device`/`dtype`: "auto" or a name (hrm.device.choose's policy; NOTE: by default the dtype the run was
    trained in, where the device runs it natively), or a torch.device/torch.dtype as is. An original
    checkpoint's seq_len (not in its all_config.yaml) comes from the dataset. Raises RunError.
    """
    from hrm.models.checkpoint import CheckpointError, trained_dtype

    weights = _resolve(Path(path))
    run_dir, run_config = _run_config(weights)
    run = OpenedRun(weights, _step_name(weights), run_dir, run_config, trained_dtype(weights), None)
    run.data_path = _data_path(data_path, run)
    _read_dataset(run, split, explicit=data_path is not None)
    if not load:
        return run
    run.choice = _choose(device, dtype, run.trained_dtype)
    overrides = dict(arch_overrides or {})
    if run.is_original and "seq_len" not in overrides and run.metadata is not None:
        overrides["seq_len"] = run.metadata.seq_len
    from hrm.models.checkpoint import load_checkpoint
    try:
        run.head, run.arch, run.info = load_checkpoint(weights, device=run.choice.device, dtype=run.choice.dtype,
                                                       arch_overrides=overrides or None)
    except CheckpointError as e:
        raise RunError(str(e)) from None
    run.weights_kind = run.info.get("weights", "live")
    if live_weights and run.weights_kind != "live":
        _load_live(run)
    run.head.eval()
    if run.family is None and not run.manifest.get("builder"):
        run.family = detect(run.arch.seq_len, run.arch.vocab_size)     # no dataset to ask: the model's sizes
    return run


# ----------------------------------------------------------------------------------------------------
# The pieces, in the order open_run uses them

def _load_live(run: OpenedRun) -> None:
    """Replace the averaged parameters with the live ones kept in the training checkpoint."""
    from hrm.models.checkpoint import CheckpointError, load_live_parameters, read_safetensors

    state = (run.weights if run.weights.is_dir() else run.weights.parent) / "train_state.safetensors"
    where = str(state)
    try:
        live = {k.removeprefix("live."): v for k, v in read_safetensors(state).items() if k.startswith("live.")}
        if not live:
            raise CheckpointError(f"{where}: no live parameters in it")
        named = list(run.head.named_parameters())
        load_live_parameters(named, live, [n for n, _ in named], where)
    except (CheckpointError, OSError) as e:
        raise RunError(f"weights=live: {e}") from None
    run.weights_kind = "live"


def _resolve(path: Path) -> Path:
    from hrm.models.checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError, resolve_weights

    if not path.exists():
        raise RunError(f"{path}: no such checkpoint (give a run directory, a checkpoints/step_<N> folder, "
                       f"a folder with {WEIGHTS_FILE} and {CONFIG_FILE}, or an original step_<N> file)")
    try:
        return resolve_weights(_latest_run(path))
    except CheckpointError as e:
        raise RunError(str(e)) from None


def _latest_run(path: Path) -> Path:
    """A folder of runs (as `hrm demo --output runs/demo` leaves: data/ and run-<time>/) -> its newest run."""
    from hrm.models.checkpoint import WEIGHTS_FILE

    if not path.is_dir() or (path / "checkpoints").is_dir() or (path / WEIGHTS_FILE).is_file():
        return path
    runs = [p for p in path.iterdir() if p.is_dir() and (p / "checkpoints").is_dir()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else path


def _step_name(weights: Path) -> str:
    return weights.stem if weights.suffix == ".safetensors" else weights.name


def _run_config(weights: Path) -> tuple[Path | None, dict[str, Any]]:
    from hrm.models.checkpoint import CheckpointError, find_all_config, read_yaml_mapping

    yaml_path = find_all_config(weights)
    if yaml_path is None:
        return None, {}
    try:
        return yaml_path.parent, read_yaml_mapping(yaml_path)
    except CheckpointError as e:
        raise RunError(str(e)) from None


def _data_path(given: str | Path | None, run: OpenedRun) -> Path | None:
    if given is not None:
        path = Path(given)
        if not path.is_dir():
            raise RunError(f"{path}: dataset folder not found (pass data_path=DATASET)")
        return path
    from hrm.models.checkpoint import recorded_data_path
    recorded = recorded_data_path(run.run_config)
    if not recorded:
        return None
    path = Path(recorded)
    if not path.exists() and not path.is_absolute() and run.run_dir is not None:
        path = run.run_dir / path           # relative to the run, as a moved run folder would have it
    return path if path.is_dir() else None


def _read_dataset(run: OpenedRun, split: str, explicit: bool) -> None:
    """The split's metadata (the other split's if it has none), the manifest, the family and box."""
    if run.data_path is None:
        return
    from hrm.data import DatasetFormatError, load_metadata, read_manifest

    try:
        run.manifest = read_manifest(run.data_path) or {}
        splits = [split] + [s for s in ("test", "train") if s != split]
        present = [s for s in splits if (run.data_path / s / "dataset.json").is_file()] or [split]
        run.metadata = load_metadata(run.data_path, present[0])
    except DatasetFormatError as e:
        if explicit:
            raise RunError(str(e)) from None
        return                              # the run's own dataset, damaged: the model still opens
    box = (run.manifest.get("arguments") or {}).get("box")
    run.box = box if isinstance(box, str) else None
    run.family = detect(run.metadata.seq_len, run.metadata.vocab_size, run.manifest.get("builder"))


def _choose(device: Any, dtype: Any, trained: str | None):
    import torch

    from hrm.device import DeviceChoice, pick_device, pick_dtype

    try:
        if isinstance(device, torch.device):
            dev, dev_reason = device, f"{device} given"
        else:
            dev, dev_reason = pick_device(device)
        if isinstance(dtype, torch.dtype):
            dt, dt_reason = dtype, f"{str(dtype).removeprefix('torch.')} given"
        else:
            dt, dt_reason = pick_dtype(dev, dtype, trained)
    except (RuntimeError, ValueError) as e:
        raise RunError(str(e)) from None
    return DeviceChoice(dev, dt, f"{dev_reason}; {dt_reason}")
