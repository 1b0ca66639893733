"""`hrm train seeds=0,1,2`: one ordinary run per seed in BASE/seed<N>, a comparison at the end, and the same
command run again skips the finished seeds, resumes the unfinished one and restarts one that never checkpointed."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from training_fixtures import make_dataset

from hrm.training.commands import train_main

REPO = Path(__file__).resolve().parents[2]
# `hrm train` whose seed-1 run kills itself with SIGKILL at step 3, after its checkpoint at step 2.
KILLED_AT_SEED_1 = """
import os, signal, sys
import torch
torch.set_num_threads(1)
import hrm.training.trainer as trainer
real_train = trainer.train
def train(config, callback=None):
    def kill(event):
        if config.seed == 1 and event.kind == "log" and event.step == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_train(config, kill)
trainer.train = train
from hrm.training.commands import train_main
sys.exit(train_main(sys.argv[1:]))
"""

# Two iterations of one epoch (4 steps): an evaluation and a checkpoint at steps 2 and 4.
ARGS = ["global_batch_size=16", "epochs=2", "eval_interval=1", "lr=3e-3", "lr_warmup_steps=5", "arch.hidden_size=32",
        "arch.num_heads=2", "arch.expansion=2", "arch.H_layers=1", "arch.L_layers=1", "arch.H_cycles=1",
        "arch.L_cycles=2", "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=32", "arch.forward_dtype=float32",
        "device=cpu", "logging.progress=false", "logging.log_interval=1"]


def weights(run_dir: Path) -> dict:
    return load_file(str(run_dir / "checkpoints" / "step_4" / "model.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """A finished seeds=0,1,2 run (trained once for the module; tests that change it work on a copy)."""
    import torch
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("seeds")
    data = make_dataset(root / "data", n_train=64, n_test=16)
    base = root / "base"
    return data, base, train_main(["seeds=0,1,2", f"data_path={data}", f"checkpoint_path={base}", *ARGS])


def test_three_seeds_train_three_ordinary_runs_and_compare_them(seeds_run, tmp_path, capsys):
    data, base, code = seeds_run
    assert code == 0
    dirs = [base / f"seed{n}" for n in range(3)]
    for n, run_dir in enumerate(dirs):
        assert "seed: %d\n" % n in (run_dir / "all_config.yaml").read_text()
        assert any("eval/exact_accuracy" in json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    trained = [weights(d) for d in dirs]
    assert not same(trained[0], trained[1]) and not same(trained[1], trained[2]) and not same(trained[0], trained[2])
    assert (base / "comparison.csv").is_file() and (base / "comparison.png").read_bytes()[:4] == b"\x89PNG"

    # seed=N alone is today's run: the same weights as the seeds run's seed<N>.
    assert train_main(["seed=1", f"data_path={data}", f"checkpoint_path={tmp_path / 'alone'}", *ARGS]) == 0
    assert same(weights(tmp_path / "alone"), trained[1])


def test_the_same_command_again_skips_resumes_and_restarts(seeds_run, tmp_path, capsys):
    data, original, _ = seeds_run
    base = tmp_path / "base"
    shutil.copytree(original, base)
    before = {n: weights(original / f"seed{n}") for n in range(3)}
    stamp = (base / "seed0" / "checkpoints" / "step_4" / "model.safetensors").stat().st_mtime_ns
    shutil.rmtree(base / "seed1" / "checkpoints")                   # killed before its first checkpoint
    shutil.rmtree(base / "seed2" / "checkpoints" / "step_4")        # killed between its two checkpoints
    capsys.readouterr()

    assert train_main(["seeds=0,1,2", f"data_path={data}", f"checkpoint_path={base}", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "seed 0: finished earlier" in out
    assert "seed 1: " in out and "holds no checkpoint yet; starting it again" in out
    assert "seed 2: resuming" in out and "from step_2" in out
    assert (base / "seed0" / "checkpoints" / "step_4" / "model.safetensors").stat().st_mtime_ns == stamp
    for n in range(3):                       # the resumed and restarted runs end where the straight ones did
        assert same(weights(base / f"seed{n}"), before[n]), n
    steps = [json.loads(line)["step"] for line in (base / "seed1" / "metrics.jsonl").read_text().splitlines()
             if "eval/exact_accuracy" in line]
    assert steps == [2, 4]                   # the restarted run's metrics start afresh, nothing twice
    assert "| 3 (0,1,2) |" in out


def test_a_seeds_run_killed_part_way_continues_with_the_same_command(seeds_run, tmp_path):
    data, straight, _ = seeds_run
    base = tmp_path / "base"
    argv = ["seeds=0,1,2", f"data_path={data}", f"checkpoint_path={base}", *ARGS]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_SEED_1, *argv], env=env, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(p.name for p in (base / "seed1" / "checkpoints").iterdir()) == ["step_2"]
    assert not (base / "seed2").exists()

    again = subprocess.run([sys.executable, "-m", "hrm.cli", "train", *argv], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "seed 0: finished earlier" in again.stdout
    assert "seed 1: resuming" in again.stdout and "from step_2" in again.stdout
    assert "seed 2: training" in again.stdout and "| 3 (0,1,2) |" in again.stdout
    for n in range(3):                       # as if never interrupted
        assert same(weights(base / f"seed{n}"), weights(straight / f"seed{n}")), n


def test_a_run_launched_separately_joins_the_report(seeds_run, tmp_path, capsys):
    from hrm.evaluation.compare import compare

    data, original, _ = seeds_run
    base = tmp_path / "base"
    shutil.copytree(original, base)
    assert train_main(["seed=3", f"data_path={data}", f"checkpoint_path={base / 'seed3'}", *ARGS]) == 0
    (group,) = compare([base]).groups
    assert sorted(group.seeds) == [0, 1, 2, 3]


def test_a_seed_folder_of_another_config_is_refused(seeds_run, capsys):
    data, base, _ = seeds_run
    capsys.readouterr()
    assert train_main(["seeds=0,1", f"data_path={data}", f"checkpoint_path={base}", *ARGS, "lr=1e-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed0" in err and "lr=0.003" in err and "lr=0.001" in err


@pytest.mark.parametrize("argv,message", [
    (["seeds=0,1,0"], "names a seed more than once"),
    (["seeds=0,1", "seed=2"], "seed= and seeds= do not go together"),
    (["seeds=0,1", "resume=runs/x"], "run the same seeds= command again"),
    (["seeds=0,x"], "seeds: expected an integer, got 'x'"),
])
def test_bad_seeds_are_one_line(argv, message, capsys):
    try:
        code = train_main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_seeds_under_torchrun_is_refused_naming_the_way(monkeypatch, capsys):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert train_main(["seeds=0,1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "under torchrun launch one command per seed" in err


def test_help_says_what_a_second_run_does(capsys):
    with pytest.raises(SystemExit):
        train_main(["--help"])
    flat = " ".join(capsys.readouterr().out.split())
    assert "BASE/seed<N>" in flat and "is skipped" in flat and "resumes from its latest checkpoint" in flat
    assert "hrm train seed=1 checkpoint_path=runs/sudoku-seeds/seed1" in flat
