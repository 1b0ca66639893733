"""A full disk (ENOSPC) in the middle of a write: one line naming the path, exit status 1, nothing under the
final name and no temporary file left behind, for the evaluation outputs, a converted checkpoint and an
ONNX export. The fault is injected inside the write: the writer has already put part of the file on disk."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import eval_fixtures
from reference_helpers import require_module

from hrm.cli import main as hrm


@pytest.fixture(scope="session")
def sudoku_run(tmp_path_factory):
    return eval_fixtures.sudoku_run(tmp_path_factory)


def fails_after_the_first_block(write):
    """`write(..., path)` that puts 4 KiB of the file on disk, then runs out of space."""
    def full(*args, **kwargs):
        target = next(a for a in list(args) + list(kwargs.values()) if isinstance(a, (str, os.PathLike)))
        Path(target).write_bytes(b"\0" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return full


def one_line_naming(capsys, path: Path) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "no space left on device" in err.lower() and str(path) in err, err
    return err


def no_leftovers(folder: Path, final_names: list[str]) -> None:
    if not folder.exists():
        return
    names = [p.name for p in folder.iterdir()]
    assert not [n for n in names if n in final_names], names
    assert not [n for n in names if n.startswith(".")], names          # temporaries are hidden files


def test_eval_outputs_on_a_full_disk(sudoku_run, tmp_path, capsys, monkeypatch):
    import safetensors.numpy
    monkeypatch.setattr(safetensors.numpy, "save_file", fails_after_the_first_block(safetensors.numpy.save_file))
    out = tmp_path / "eval"
    code = hrm(["eval", f"checkpoint={sudoku_run.run_dir}", f"out={out}", "progress=false"])
    assert code == 1
    one_line_naming(capsys, out / "predictions.safetensors")
    no_leftovers(out, ["predictions.safetensors", "results.json"])


def test_convert_on_a_full_disk(sudoku_run, tmp_path, capsys, monkeypatch):
    import safetensors.torch
    monkeypatch.setattr(safetensors.torch, "save_file", fails_after_the_first_block(safetensors.torch.save_file))
    from test_eval import write_original_run
    original = write_original_run(tmp_path / "HRM-run", sudoku_run)
    out = tmp_path / "converted"
    code = hrm(["convert", str(original), str(out), "seq_len=16"])
    assert code == 1
    one_line_naming(capsys, out / "model.safetensors")
    no_leftovers(out, ["model.safetensors", "config.json"])


def test_onnx_export_on_a_full_disk(sudoku_run, tmp_path, capsys, monkeypatch):
    require_module("onnxscript")
    import torch.onnx
    monkeypatch.setattr(torch.onnx.ONNXProgram, "save",
                        lambda self, destination, **kw: fails_after_the_first_block(None)(destination))
    out = tmp_path / "export" / "model.onnx"
    code = hrm(["export", "onnx", str(sudoku_run.run_dir), f"out={out}"])
    assert code == 1
    one_line_naming(capsys, out)
    no_leftovers(out.parent, ["model.onnx", "model.onnx.json"])
