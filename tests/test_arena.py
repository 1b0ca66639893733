"""`hrm arena` end to end on a tiny grid: two entrants at a tiny width, the demo's task shrunk, two seeds, a
few (simulated) seconds each. Checks the table against the entry JSONs, the plot, and that the arena resumes:
finished entries are not trained again, a deleted one is trained again alone.

The real arena (ten minutes per entry) is run by hand; this checks the pipeline, not the accuracies.
"""
from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from hrm.arena import run as arena
from hrm.arena.table import COLUMNS
from hrm.training import demo
from hrm.training.config import load_config, preset_path

TINY = ["compile=false", "arch.hidden_size=16", "arch.num_heads=2", "arch.puzzle_emb_ndim=16", "global_batch_size=16",
        "lr_warmup_steps=2", "logging.log_interval=5"]


class StepClock:
    """train_for's clock advanced 0.5 s at every reading (as tests/training/test_demo.py does), so the steps a
    budget buys depend on the code, not on how busy the machine is."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 0.5
        return self.now


@pytest.fixture
def tiny_task(monkeypatch):
    monkeypatch.setattr(demo, "DEMO_DATA", dict(demo.DEMO_DATA, n_train=200, n_test=40, num_aug=1))
    monkeypatch.setattr(demo, "time", StepClock())


@pytest.fixture
def trainings(monkeypatch):
    """Counts the entries trained (every entry trains through train_for)."""
    calls = []
    real = demo.train_for

    def counted(config, minutes, **kwargs):
        calls.append(config.checkpoint_path)
        return real(config, minutes, **kwargs)

    monkeypatch.setattr(demo, "train_for", counted)
    return calls


def run_arena(out, capsys, *extra):
    argv = ["tasks=sudoku6", "entrants=hrm,transformer", "seeds=0,1", "minutes=0.1", "threads=1", f"out={out}",
            "tts=samples=2,noise=0.5,select=vote", "curve_points=2", "curve_examples=16", *TINY, *extra]
    code = arena.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_rows(markdown: str) -> dict[str, dict[str, str]]:
    lines = [l for l in markdown.splitlines() if l.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[1:]]
    assert all(len(r) == len(COLUMNS) for r in rows)
    return {r[0]: dict(zip(header, r)) for r in rows}


def mean_pm_std(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}%"


def test_a_tiny_arena_tabulates_its_entries_and_resumes(tiny_task, trainings, tmp_path, capsys):
    out = tmp_path / "arena"
    code, printed, err = run_arena(out, capsys)
    assert code == 0, err
    assert len(trainings) == 4

    entries = {(e["entrant"], e["seed"]): e for e in
               (json.loads(p.read_text()) for p in sorted((out / "entries" / "sudoku6").glob("*.json")))}
    assert set(entries) == {(n, s) for n in ("hrm", "transformer") for s in (0, 1)}
    for entry in entries.values():
        assert entry["steps_trained"] > 0 and entry["seconds_per_step"] > 0
        assert entry["standard"]["puzzles"] == 40 and 0 <= entry["standard"]["exact_accuracy"] <= 1
        assert entry["tts"]["puzzles"] == 40 and "2 trajectories per puzzle" in entry["tts"]["protocol"]
        seconds = [p["seconds"] for p in entry["curve"]]
        assert len(seconds) >= 2 and seconds == sorted(seconds) and seconds[-1] >= 6.0    # to the end of the budget
        assert entry["hyper_parameters"]["hidden_size"] == 16 and entry["config"]["device"] == "cpu"
    # The baseline is matched to HRM's parameter count; it runs one ACT step where HRM runs 8.
    assert entries["hrm", 0]["parameters"] == entries["transformer", 0]["parameters"]
    assert entries["hrm", 0]["seed"] != entries["hrm", 1]["seed"]

    rows = table_rows((out / "arena.md").read_text())
    assert set(rows) == {"hrm", "transformer"}
    for name, row in rows.items():
        mine = [entries[name, s] for s in (0, 1)]
        assert row["parameters"] == f"{mine[0]['parameters']:,}" and row["seeds"] == "2"
        assert row["held-out exact"] == mean_pm_std([e["standard"]["exact_accuracy"] for e in mine])
        assert row["held-out exact, test-time setting"] == mean_pm_std([e["tts"]["exact_accuracy"] for e in mine])
    assert rows["hrm"]["fwd/puzzle"] == "8" and rows["hrm"]["fwd/puzzle, test-time setting"] == "16"
    assert rows["transformer"]["fwd/puzzle"] == "1" and rows["transformer"]["fwd/puzzle, test-time setting"] == "2"
    report = (out / "arena.md").read_text()
    assert "with 1 torch thread," in report and "Machine: " in report and "samples=2 noise=0.5 select=vote" in report
    assert (out / "arena.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Run again: everything is finished, nothing trains, no entry is rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "entries").rglob("*.json")}
    code, printed, _ = run_arena(out, capsys)
    assert code == 0 and len(trainings) == 4
    assert "4 of 4 entries already finished" in printed
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # A deleted entry is trained again, alone; with table_only=true nothing is trained and the table leaves it out.
    gone = out / "entries" / "sudoku6" / "transformer-seed1.json"
    gone.unlink()
    code, printed, _ = run_arena(out, capsys, "table_only=true")
    assert code == 0 and len(trainings) == 4 and "3 of 4 entries already finished, the rest left out" in printed
    assert table_rows((out / "arena.md").read_text())["transformer"]["seeds"] == "1"
    code, printed, _ = run_arena(out, capsys)
    assert code == 0 and len(trainings) == 5 and trainings[-1].endswith("transformer/seed1")
    assert gone.is_file()
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items() if p != gone)

    # Other settings in the same folder would mix incomparable numbers: one line, nothing trained.
    code, _, err = run_arena(out, capsys, "lr=1e-3")
    assert code == 2 and len(trainings) == 5
    assert len(err.strip().splitlines()) == 1 and "was made with overrides=" in err


@pytest.mark.parametrize("argv, message", [
    (["entrants=hrm,hrx"], "unknown entrant 'hrx'; did you mean 'hrm'?"),
    (["tasks=sudoku12"], "unknown task 'sudoku12'"),
    (["tts=samples=0"], "samples must be >= 1"),
    (["tts=depth=4"], "tts: 'depth=4' is not one of"),
    (["entrants=hrm,hrm"], "entrants named twice: hrm"),
    (["arch.hiden_size=8"], "did you mean 'arch.hidden_size'?"),
    (["minutes=0"], "must be positive"),
])
def test_bad_settings_are_one_line_before_anything_runs(argv, message, trainings, tmp_path, capsys):
    assert arena.main([f"out={tmp_path / 'arena'}", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert trainings == [] and not (tmp_path / "arena").exists()


def test_entrants_resolve_to_a_preset_and_an_architecture_block(tmp_path):
    from hrm.arena.entrants import resolve

    assert resolve("trm_mlp").arch == "trm_demo_mlp" and resolve("trm_mlp").preset.name == "demo.yaml"
    assert resolve("hrm_27m").arch == "hrm_27m"                       # any block: the demo's recipe with it
    assert resolve("cpu_tiny").arch is None                            # a run preset, as it is
    block = tmp_path / "wide.yaml"
    block.write_text("name: hrm_act_v1\nhidden_size: 128\n")
    assert resolve(str(block)).arch == str(block) and resolve(str(block)).label == "wide"
    config = resolve("trm_mlp").config(tmp_path / "d", tmp_path / "r", 3, [])
    assert config.arch.mlp_t and config.arch.pos_encodings == "none" and config.seed == 3 and config.device == "cpu"


def test_demo_recipe_entrants_train_in_float32_and_a_preset_keeps_its_dtype(tmp_path):
    from hrm.arena.entrants import resolve

    # The demo itself takes dtype auto; the arena's built-in entrants stay in float32 (its tables), unless asked.
    assert load_config(preset_path("demo")).dtype == "auto"
    assert resolve("hrm").config(tmp_path / "d", tmp_path / "r", 0, []).dtype == "float32"
    assert resolve("hrm").config(tmp_path / "d", tmp_path / "r", 0, ["dtype=auto"]).dtype == "auto"
    preset = tmp_path / "demo_bf16.yaml"
    preset.write_text(preset_path("demo").read_text().replace("dtype: auto", "dtype: bfloat16"))
    assert resolve(str(preset)).config(tmp_path / "d", tmp_path / "r", 0, []).dtype == "bfloat16"


def test_time_spent_in_the_hook_is_left_out_of_the_budget(tiny_task, tmp_path):
    """train_for's at_log (where the arena evaluates) may take any time: the steps the budget buys stay the same."""
    from hrm.arena.entrants import resolve

    data = demo.build_data(tmp_path / "data", log=lambda m: None)
    steps = {}
    for name, reads in (("quick", 0), ("slow", 20)):
        def at_log(event, trainer, seconds, reads=reads):
            for _ in range(reads):              # 20 readings of the clock: 10 s of evaluation
                demo.time.perf_counter()

        config = resolve("hrm").config(data, tmp_path / name, 0, TINY)
        steps[name] = demo.train_for(config, 0.04, log=lambda m: None, at_log=at_log).step
    assert steps["slow"] == steps["quick"] > 0


def test_the_9x9_task_is_rated_easy_held_out_and_reused(monkeypatch, tmp_path):
    """sudoku9 (shrunk): every puzzle has a unique solution that singles find (no branch point), 36-45 blanks;
    no held-out puzzle is a training puzzle up to digit relabelling; a second build reuses the folder, and a
    folder another builder made is refused."""
    from hrm.arena import tasks
    from hrm.data.sudoku import canonical_key
    from hrm.data.sudoku_solver import Box, solve_many

    monkeypatch.setattr(tasks, "SUDOKU9_DATA", dict(tasks.SUDOKU9_DATA, n_train=30, n_test=10, num_aug=1))
    path, said = tmp_path / "sudoku9", []
    tasks.build_sudoku9(path, said.append)
    box = Box()
    values = {split: np.load(path / split / "all__inputs.npy").astype(np.int8) - 1 for split in ("train", "test")}
    assert values["test"].shape == (10, 81) and values["train"].shape == (60, 81)      # 30 puzzles x 2 versions
    for split, puzzles in values.items():
        blanks = (puzzles == 0).sum(1)
        assert blanks.min() >= 36 and blanks.max() <= 45, split
        counts, _, branches = solve_many(puzzles, box)
        assert (counts == 1).all() and (branches == 0).all(), split
    held_out = {canonical_key(p, box) for p in values["test"]}
    assert not held_out & {canonical_key(p, box) for p in values["train"]}
    assert tasks.describe_data(path) == ("30 training puzzles x 2 versions, 10 held-out puzzles, none equivalent to "
                                         "a training puzzle under digit relabelling")

    again = []
    tasks.build_sudoku9(path, again.append)
    assert again == [f"data: reusing {path}"]
    monkeypatch.setattr(tasks, "SUDOKU9_DATA", dict(tasks.SUDOKU9_DATA, seed=1))
    with pytest.raises(FileExistsError, match="not made by the arena's generator with these arguments"):
        tasks.build_sudoku9(path, again.append)


def test_the_default_test_time_setting_is_the_vote_over_augmented_versions():
    # The best label-free setting measured on the demo models (README): tta=8 and the vote, no noise.
    assert arena.parse_tts(arena.DEFAULT_TTS) == {"tta": 8, "select": "vote"}
    assert arena.parse_tts(["none"]) is None
