"""Faults during training: SIGKILL inside a checkpoint write, a full disk, two writers on one run.

    * a trainer killed (SIGKILL) at several points of writing a checkpoint leaves no partial checkpoint
      under a final name; `hrm train resume=` removes the partial folder, continues from the last complete
      checkpoint and ends bit-identical to an uninterrupted run (test_resume.py's config and helpers);
    * ENOSPC inside a checkpoint's files: one line naming the checkpoint, nothing partial left;
    * a run directory is written by one process at a time; a killed holder's lock is taken over.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_resume import ARGS, hrm_train, run
from training_fixtures import make_dataset, tiny_config

from hrm.cli import main
from hrm.models.checkpoint import load_checkpoint
from hrm.training import checkpointing as ckpt
from hrm.training.run_lock import LOCK_FILE, RunLock, RunLockedError

# A trainer that SIGKILLs itself inside the write of the checkpoint at step sys.argv[2] (ARGS: checkpoints
# at 6, 12, 16 (end of iteration 1), 18, ...), at the point sys.argv[1] names:
#   model       halfway through writing model.safetensors
#   state       halfway through writing train_state.safetensors (model.safetensors and config.json done)
#   json        while writing train_state.json (every other file done)
#   rename      with the folder complete, just before it is renamed into place
#   prune       after the rename, while the oldest kept checkpoint is being deleted
KILLER = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)
import safetensors.torch
import hrm.files
from hrm.training import checkpointing, load_config, train

point, at = sys.argv[1], int(sys.argv[2])
armed = {"on": False}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

real_save = safetensors.torch.save_file
def save_file(tensors, path, metadata=None):
    real_save(tensors, path, metadata=metadata)
    name = os.path.basename(path)
    if armed["on"] and ((point == "model" and "model.safetensors" in name) or (point == "state" and "train_state" in name)):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        die()
safetensors.torch.save_file = save_file

real_text = checkpointing.atomic_write_text
def atomic_write_text(path, text):
    if armed["on"] and point == "json":
        hrm.files.atomic_write(path, lambda tmp: (open(tmp, "w").write(text[: len(text) // 2]), die()))
    return real_text(path, text)
checkpointing.atomic_write_text = atomic_write_text

real_commit = checkpointing.commit_partial_dir
def commit_partial_dir(partial, target):
    if armed["on"] and point == "rename":
        die()
    return real_commit(partial, target)
checkpointing.commit_partial_dir = commit_partial_dir

real_rmtree = hrm.files.shutil.rmtree
class Shutil:
    @staticmethod
    def rmtree(path, ignore_errors=False):
        if armed["on"] and point == "prune" and ".partial-" in str(path) and "-old-" in str(path):
            os.remove(os.path.join(path, "model.safetensors"))      # half deleted
            die()
        return real_rmtree(path, ignore_errors=ignore_errors)
hrm.files.shutil = Shutil

def callback(event):
    if event.kind == "log" and event.step == at:
        armed["on"] = True
train(load_config(None, sys.argv[3:]), callback)
"""
KILL_STEP = 18


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run (test_resume's config): its data and run directory."""
    root = tmp_path_factory.mktemp("straight")
    data = make_dataset(root / "data")
    hrm_train(f"data_path={data}", f"checkpoint_path={root / 'run'}", *ARGS)
    return data, root / "run"


def assert_complete(checkpoints_dir: Path) -> list[str]:
    """Every step_<N> under checkpoints/ is a whole checkpoint: its training state and weights read back."""
    names = sorted(p.name for p in checkpoints_dir.iterdir() if not p.name.startswith("."))
    for name in names:
        ckpt.read_checkpoint(checkpoints_dir / name)
        load_checkpoint(checkpoints_dir / name, dtype=torch.float32)
    return names


def assert_same_final_state(a: Path, b: Path) -> None:
    for name in ("model.safetensors", "train_state.safetensors"):
        x, y = load_file(str(a / name)), load_file(str(b / name))
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), f"{name}: {key} differs after resume"
    assert json.loads((a / "train_state.json").read_text()) == json.loads((b / "train_state.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("point", ["model", "state", "json", "rename", "prune"])
def test_sigkill_inside_a_checkpoint_write_leaves_the_last_complete_one(point, straight, tmp_path):
    data, straight_run = straight
    killed = tmp_path / "killed"
    result = run(["-c", KILLER, point, str(KILL_STEP), f"data_path={data}", f"checkpoint_path={killed}", *ARGS])
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]

    checkpoints = killed / "checkpoints"
    partial = sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("."))
    names = assert_complete(checkpoints)
    if point == "prune":          # step_18 is in place; step_12 was renamed away before it was deleted
        assert names == ["step_16", "step_18"], names
        assert len(partial) == 1 and partial[0].startswith(".step_12.partial-"), partial
        last = "step_18"
    else:                         # step_18 never reached its name
        assert names == ["step_12", "step_16"], names
        assert len(partial) == 1 and partial[0].startswith(".step_18.partial-"), partial
        last = "step_16"

    resumed = hrm_train(f"resume={killed}")
    assert f"from {last}" in resumed.stdout
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]      # the partial folder is gone
    assert_same_final_state(straight_run / "checkpoints" / "step_32", checkpoints / "step_32")


def test_a_full_disk_during_a_checkpoint_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """ENOSPC inside a checkpoint's files (after part of the data is written): exit 1, one line naming the
    checkpoint; the earlier checkpoint intact, nothing partial beside it."""
    import safetensors.torch

    data = make_dataset(tmp_path / "data", n_train=32, n_test=8)
    run_dir = tmp_path / "run"
    real = safetensors.torch.save_file
    calls = {"n": 0}

    def save_file(tensors, path, metadata=None):
        calls["n"] += 1
        if calls["n"] > 2:              # the second checkpoint (each writes two safetensors files)
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    argv = [f"data_path={data}", f"checkpoint_path={run_dir}", "global_batch_size=16", "epochs=2", "eval_interval=1",
            "arch.hidden_size=32", "arch.num_heads=2", "arch.puzzle_emb_ndim=32", "device=cpu", "dtype=float32",
            "logging.progress=false"]
    rc = main(["train", *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    # One step per epoch: checkpoints at steps 1 and 2; the second fails.
    assert "no space left on device" in lines[0] and lines[0].endswith("step_2"), lines[0]
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_1"]          # nothing partial, step_2 absent
    assert_complete(checkpoints)


def test_a_full_disk_inside_atomic_write_rolls_back(tmp_path, monkeypatch):
    """A failing write after the first block of train_state.json: the temporary file is removed, the
    checkpoint folder too, and the error names the checkpoint."""
    from hrm.training import train

    data = make_dataset(tmp_path / "data", n_train=32, n_test=8)

    def failing(path, text):
        def write(tmp):
            with open(tmp, "w") as f:
                f.write(text[:10])
                f.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return ckpt.atomic_write(path, write)

    monkeypatch.setattr(ckpt, "atomic_write_text", failing)
    with pytest.raises(OSError) as caught:
        train(tiny_config(data, tmp_path / "run", "epochs=1", "eval_interval=1"))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename.endswith("step_1"), caught.value
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


def test_the_next_writer_removes_partial_folders_of_dead_writers(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    checkpoints = tmp_path / "checkpoints"
    stale = [checkpoints / f".step_5.partial-{dead.pid}-abc", checkpoints / f".step_7.partial-{dead.pid}-old-x",
             checkpoints / f".step_3.tmp-{dead.pid}", checkpoints / f".step_3.stale-{dead.pid}"]
    live = checkpoints / f".step_9.partial-{os.getpid()}-xyz"
    for path in [*stale, live, checkpoints / "step_1"]:
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"partial")
    ckpt.remove_partial(checkpoints)
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted([live.name, "step_1"])


# ----------------------------------------------------------------------------------------------------
# One writer per run

HOLDER = """
import sys, time
from hrm.training.run_lock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def start(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.PIPE, text=True)


def test_a_run_lock_is_held_until_its_holder_dies(tmp_path):
    holder = start(HOLDER, str(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()                      # SIGKILL: no clean-up in the holder
        holder.wait()
    with RunLock(tmp_path) as lock:        # the kernel released it; the file still names the dead pid
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(RunLockedError):
            RunLock(tmp_path).acquire()    # a second lock in the same process is refused too
    RunLock(tmp_path).acquire().release()


# A trainer that stops at step 3 (after its checkpoint at step 2) and waits, holding its run.
WAITER = r"""
import sys, time
import torch
torch.set_num_threads(1)
from hrm.training import load_config, train
def callback(event):
    if event.kind == "log" and event.step == 3:
        print("waiting", flush=True)
        time.sleep(120)
train(load_config(None, sys.argv[1:]), callback)
"""


def test_a_second_trainer_on_a_live_run_is_refused_and_a_killed_one_is_taken_over(tmp_path, capsys):
    data = make_dataset(tmp_path / "data", n_train=64, n_test=8)
    run_dir = tmp_path / "run"
    args = [f"data_path={data}", f"checkpoint_path={run_dir}", "global_batch_size=8", "epochs=1", "eval_interval=1",
            "arch.hidden_size=32", "arch.num_heads=2", "arch.puzzle_emb_ndim=32", "device=cpu", "dtype=float32",
            "logging.progress=false", "logging.log_interval=1", "checkpoint_interval=2"]
    first = start(WAITER, *args)
    try:
        deadline = time.time() + 120
        while first.stdout.readline().strip() != "waiting":
            assert first.poll() is None and time.time() < deadline, "the first trainer did not start"
        for argv in (["train", f"resume={run_dir}"], ["train", *args]):
            rc = main(argv)
            err = capsys.readouterr().err
            lines = [line for line in err.splitlines() if line.strip()]
            assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
            assert f"pid {first.pid}" in lines[0] and str(run_dir) in lines[0], lines[0]
    finally:
        first.kill()
        first.wait()
    assert main(["train", f"resume={run_dir}"]) == 0                 # the dead trainer's lock is taken over
    out = capsys.readouterr().out
    assert "from step_2" in out, out
    done = re.search(r"done at step (\d+)/(\d+)", out)
    assert done and done.group(1) == done.group(2) and (run_dir / "checkpoints" / f"step_{done.group(1)}").is_dir(), out


def test_atomic_write_removes_the_temporary_file_a_killed_writer_left(tmp_path):
    """A writer killed inside atomic_write (here: of all_config.yaml) leaves its hidden temporary file; the next
    write of the same file removes it, and leaves the temporary files of live writers alone."""
    from hrm.files import atomic_write_text

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".all_config.yaml.partial-{dead.pid}-abcd.tmp.yaml"
    live = tmp_path / f".all_config.yaml.partial-{os.getpid()}-efgh.tmp.yaml"
    for path in (stale, live):
        path.write_text("lr: 1")
    atomic_write_text(tmp_path / "all_config.yaml", "lr: 2\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["all_config.yaml", live.name])
