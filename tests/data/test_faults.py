"""Builds under faults: a full disk part-way, SIGKILL at any point, stale partial folders, bad output paths.

What must hold: the output name holds a complete dataset that `hrm data check` accepts, or nothing; a
failure is one line naming the path; and the next run cleans up what a killed one left and succeeds.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hrm.data import format as fmt
from hrm.data.commands import main
from hrm.files import make_partial_dir, stale_partials

SRC = str(Path(__file__).resolve().parents[2] / "src")
SUDOKU = ["sudoku", "--generate", "40", "--box", "2x2", "--test-size", "4", "--num-aug", "3"]


def _partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.partial-*"))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: os.kill(pid, 0) now fails (unless the PID is reused at once, which is rare)
    return child.pid


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fail_on_call(target, name: str, call: int, monkeypatch) -> None:
    """Make target.name raise ENOSPC on its `call`-th call (1-based); earlier calls run as usual."""
    original, calls = getattr(target, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) >= call:
            _enospc()
        return original(*args, **kwargs)
    monkeypatch.setattr(target, name, wrapper)


@pytest.mark.parametrize("where", ["second block", "index array", "metadata json", "manifest"])
def test_full_disk_leaves_nothing_and_says_so_in_one_line(tmp_path, capsys, monkeypatch, where):
    if where == "second block":
        _fail_on_call(fmt._StreamedNpy, "append", 2, monkeypatch)
    elif where == "index array":
        _fail_on_call(fmt.np, "save", 1, monkeypatch)
    elif where == "metadata json":
        _fail_on_call(fmt, "write_json", 1, monkeypatch)
    else:
        import hrm.data.manifest
        _fail_on_call(hrm.data.manifest, "write_manifest", 1, monkeypatch)
    out = tmp_path / "s"
    assert main([*SUDOKU, "--output-dir", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"hrm data sudoku: error: no space left on device: {out}\n"
    assert not out.exists() and _partials(out) == [] and list(tmp_path.iterdir()) == []


def test_output_under_a_regular_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main([*SUDOKU, "--output-dir", str(tmp_path / "file" / "sub" / "out")]) == 1
    assert capsys.readouterr().err == f"hrm data sudoku: error: not a directory: {tmp_path / 'file'}\n"


def test_stale_partials_of_dead_writers_are_removed_live_ones_kept(tmp_path, capsys):
    out = tmp_path / "s"
    dead = tmp_path / f".s.partial-{_dead_pid()}-abc"
    live = tmp_path / f".s.partial-{os.getpid()}-def"
    other = tmp_path / f".s2.partial-{_dead_pid()}-ghi"          # another target's: not ours to touch
    for folder in (dead, live, other):
        (folder / "train").mkdir(parents=True)
    assert stale_partials(out) == [dead]
    assert main([*SUDOKU, "--output-dir", str(out)]) == 0
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert main(["check", str(out)]) == 0
    new = make_partial_dir(out)       # the folder a build writes in names its writer
    assert new.name.startswith(f".s.partial-{os.getpid()}-") and stale_partials(out) == []


# ---------------------------------------------------------------------------------------------------
# SIGKILL: a real `hrm data sudoku` process, killed at injected points (patched in before the CLI runs)
# or after a delay; then the output is checked with `hrm data check` and the build is run again.

_KILL_AT = """
import os, signal, sys
point, n = sys.argv[1], int(sys.argv[2])
import hrm.data.format as fmt, hrm.data.manifest as manifest
def kill_on(target, name, call):
    original, calls = getattr(target, name), []
    def wrapper(*a, **k):
        calls.append(1)
        if len(calls) == call and point.startswith("before"):
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*a, **k)
        if len(calls) == call and point.startswith("after"):
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(target, name, wrapper)
if point.endswith("group"):
    kill_on(fmt.SplitWriter, "add_group", n)
elif point.endswith("manifest"):
    kill_on(manifest, "write_manifest", n)
elif point.endswith("rename"):
    kill_on(fmt.os, "rename", n)
from hrm.data.commands import main
sys.exit(main(sys.argv[3:]))
"""


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")


def _check_killed_then_rebuild(out: Path, killed_rc: int) -> None:
    if out.exists():  # killed after the rename: the dataset must be whole
        assert main(["check", str(out)]) == 0
        import shutil
        shutil.rmtree(out)  # so the rebuild below has somewhere to go
    elif killed_rc == -signal.SIGKILL:
        assert stale_partials(out) != [] or _partials(out) == []
    assert main([*SUDOKU, "--output-dir", str(out)]) == 0, "the next run must succeed"
    assert _partials(out) == [], "the next run must remove the killed run's partial folder"
    assert main(["check", str(out)]) == 0


@pytest.mark.parametrize("point,n", [("before group", 1), ("after group", 20), ("before manifest", 1),
                                     ("before rename", 1), ("after rename", 1)])
def test_sigkill_at_injected_points(tmp_path, point, n):
    out = tmp_path / "s"
    proc = subprocess.run([sys.executable, "-c", _KILL_AT, point, str(n), *SUDOKU, "--output-dir", str(out)],
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert out.exists() == (point == "after rename")
    if point != "after rename":
        assert len(_partials(out)) == 1 and stale_partials(out) == _partials(out)
    _check_killed_then_rebuild(out, proc.returncode)


@pytest.mark.parametrize("delay", [0.2, 0.5, 0.8, 1.2])
def test_sigkill_after_a_delay(tmp_path, delay):
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "hrm.cli", "data", *SUDOKU, "--num-aug", "200",
                             "--output-dir", str(out)], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    rc = proc.wait(timeout=60)
    assert rc in (0, -signal.SIGKILL), proc.stderr.read()
    _check_killed_then_rebuild(out, rc)


def test_manifest_lists_what_the_build_wrote(tmp_path):
    # A guard on the fixtures above: the dataset they build and check is a real one.
    out = tmp_path / "s"
    assert main([*SUDOKU, "--output-dir", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert np.load(out / "train" / "all__inputs.npy").shape == (40 * 4, 16)
    assert manifest["files"]["train/all__inputs.npy"]["shape"] == [160, 16]
