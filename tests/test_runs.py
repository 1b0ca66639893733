"""hrm.runs.open_run: every form of checkpoint a user may name opens to the same model, run and dataset;
a missing or damaged one is one line; and the puzzle family is told from the dataset or the model."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from hrm.models import HRMConfig, build_model
from hrm.models.checkpoint import save_weights
from hrm.puzzles import ARC, MAZE, SUDOKU, detect
from hrm.runs import RunError, open_run

TINY = dict(H_layers=1, L_layers=1, H_cycles=1, L_cycles=1, hidden_size=32, num_heads=2, expansion=2.0,
            halt_max_steps=2, puzzle_emb_ndim=32)


@pytest.fixture(scope="module")
def sudoku_data(tmp_path_factory) -> Path:
    from hrm.data.sudoku import build_generated_dataset

    root = tmp_path_factory.mktemp("data")
    return Path(build_generated_dataset(root / "s4", 12, 4, box=(2, 2), min_blanks=3, max_blanks=6, seed=0,
                                        log=lambda *_: None))


def tiny_head(data: Path):
    from hrm.data import load_metadata

    meta = load_metadata(data, "train")
    config = HRMConfig(seq_len=meta.seq_len, vocab_size=meta.vocab_size, num_puzzle_identifiers=meta.num_puzzle_identifiers,
                       batch_size=4, **TINY)
    torch.manual_seed(0)
    return build_model(config), config


@pytest.fixture(scope="module")
def hrm_run(sudoku_data, tmp_path_factory) -> Path:
    """What hrm train leaves: RUN/all_config.yaml and RUN/checkpoints/step_<N>/ (weights + config.json)."""
    from hrm.data import dataset_hash

    run = tmp_path_factory.mktemp("run")
    head, config = tiny_head(sudoku_data)
    for step in (3, 10):            # the latest is step_10 (numerically, not as text)
        save_weights(head, config, run / "checkpoints" / f"step_{step}",
                     extra={"step": step, "dataset_hash": dataset_hash(sudoku_data)}, trained_dtype="float32")
    (run / "all_config.yaml").write_text(yaml.safe_dump({"data_path": str(sudoku_data), "global_batch_size": 4}))
    return run


def write_original(folder: Path, hrm_run: Path, data_path: str) -> Path:
    """An original run: step_N (torch.save'd compiled state dict) beside all_config.yaml (formats §4)."""
    from safetensors.torch import load_file

    folder.mkdir(parents=True)
    state = load_file(str(hrm_run / "checkpoints" / "step_10" / "model.safetensors"))
    torch.save({"_orig_mod." + k: v for k, v in state.items()}, folder / "step_7")
    arch = {k: v for k, v in TINY.items()} | {"name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
                                               "pos_encodings": "rope", "forward_dtype": "bfloat16"}
    (folder / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch, "data_path": data_path, "global_batch_size": 4}))
    return folder / "step_7"


def test_a_run_directory_opens_its_latest_checkpoint_with_its_dataset_and_family(hrm_run, sudoku_data):
    run = open_run(hrm_run, device="cpu")
    assert run.weights == hrm_run / "checkpoints" / "step_10" and run.step_name == "step_10"
    assert run.run_dir == hrm_run and run.run_config["global_batch_size"] == 4
    assert run.data_path == sudoku_data and run.metadata.seq_len == 16 and run.metadata.vocab_size == 6
    assert run.family is SUDOKU and run.task == "sudoku" and run.box == "2x2"
    assert run.info["format"] == "hrm" and run.info["step"] == 10 and run.info["dataset_hash"]
    assert run.trained_dtype == "float32" and run.choice.dtype == torch.float32
    assert not run.head.training and run.arch.seq_len == 16


def test_a_checkpoint_folder_a_folder_of_runs_and_a_safetensors_file_open_the_same_weights(hrm_run, tmp_path):
    folder = open_run(hrm_run / "checkpoints" / "step_3", device="cpu", dtype="float32")
    assert folder.weights.name == "step_3" and folder.run_dir == hrm_run and folder.family is SUDOKU
    runs = tmp_path / "runs"
    shutil.copytree(hrm_run, runs / "run-1")
    assert open_run(runs, device="cpu").weights == runs / "run-1" / "checkpoints" / "step_10"
    file = open_run(hrm_run / "checkpoints" / "step_3" / "model.safetensors", device="cpu", load=False)
    assert file.step_name == "model" and file.head is None and file.family is SUDOKU


def test_an_original_step_file_opens_with_its_all_config_and_dataset(hrm_run, sudoku_data, tmp_path):
    original = write_original(tmp_path / "HRM" / "run", hrm_run, str(sudoku_data))
    run = open_run(original, device="cpu")
    assert run.info["format"] == "original" and run.is_original and run.step_name == "step_7"
    # seq_len is not in the original's all_config.yaml (RoPE): it comes from the dataset.
    assert run.arch.seq_len == 16 and run.data_path == sudoku_data and run.family is SUDOKU
    # The dtype the run trained in (the original's configs say bfloat16), where this CPU runs it natively.
    from hrm.device import pick_dtype
    assert run.trained_dtype == "bfloat16" and run.choice.dtype == pick_dtype(torch.device("cpu"), None, "bfloat16")[0]
    exact = open_run(original, device="cpu", dtype="float32").head.state_dict()
    ours = open_run(hrm_run, device="cpu", dtype="float32").head.state_dict()
    assert exact.keys() == ours.keys() and all(torch.equal(exact[k], ours[k]) for k in ours)


def test_a_dataset_given_wins_over_the_recorded_one(hrm_run, sudoku_data, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(sudoku_data, other)
    assert open_run(hrm_run, device="cpu", data_path=other, load=False).data_path == other


@pytest.mark.parametrize("make, message", [
    (lambda tmp, run: tmp / "nowhere", "no such checkpoint"),
    (lambda tmp, run: (tmp / "empty").mkdir() or tmp / "empty", "no checkpoint in it"),
    (lambda tmp, run: _damaged(tmp, run), "not a readable safetensors file"),
    (lambda tmp, run: _bad_yaml(tmp, run), "malformed YAML"),
])
def test_a_missing_or_damaged_checkpoint_is_one_line(make, message, hrm_run, tmp_path):
    with pytest.raises(RunError, match=message) as error:
        open_run(make(tmp_path, hrm_run), device="cpu")
    assert "\n" not in str(error.value)


def _damaged(tmp: Path, run: Path) -> Path:
    copy = tmp / "damaged"
    shutil.copytree(run / "checkpoints" / "step_10", copy)
    (copy / "model.safetensors").write_bytes(b"\x00" * 12)
    return copy


def _bad_yaml(tmp: Path, run: Path) -> Path:
    copy = tmp / "bad-yaml"
    shutil.copytree(run, copy)
    (copy / "all_config.yaml").write_text("data_path: [unclosed\n")
    return copy


def test_a_dataset_that_is_not_there_is_one_line(hrm_run, tmp_path):
    with pytest.raises(RunError, match="dataset folder not found"):
        open_run(hrm_run, data_path=tmp_path / "nothing", load=False)
    moved = tmp_path / "moved"
    shutil.copytree(hrm_run, moved)
    (moved / "all_config.yaml").write_text(yaml.safe_dump({"data_path": str(tmp_path / "gone")}))
    run = open_run(moved, device="cpu")
    assert run.data_path is None and run.family is SUDOKU          # told from the model's sizes
    with pytest.raises(RunError, match="is not here; pass data_path=DATASET"):
        run.require_data()


def test_the_family_is_told_from_the_manifest_then_the_sizes():
    assert detect(81, 11) is SUDOKU and detect(16, 6) is SUDOKU and detect(36, 8, "sudoku-generated") is SUDOKU
    assert detect(900, 6) is MAZE and detect(36, 6) is MAZE and detect(900, 12) is ARC
    assert detect(900, 12, None, "maze") is MAZE                  # the first name that is a family wins
    assert detect(50, 7) is None                                  # no family has these sizes
    assert detect(81, 11, "test-mapping") is None                 # a builder we do not know: no guessing


def test_an_unknown_dataset_opens_without_a_family(sudoku_data, hrm_run, tmp_path):
    import json

    data = tmp_path / "unknown"
    shutil.copytree(sudoku_data, data)
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps(manifest | {"builder": "test-mapping"}))
    run = open_run(hrm_run, device="cpu", data_path=data)
    assert run.family is None and run.task == "unknown"
    assert run.metadata.seq_len == 16
