"""`hrm demo` end to end on a shrunken dataset: it generates data, trains, evaluates and reports.

The real demo (50,000 puzzles, ten minutes) is measured by hand and in benchmarks/RESULTS.md; this checks
the pipeline and what it prints, not the accuracy it reaches.
"""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from hrm.device import pick_dtype
from hrm.training import demo


@pytest.fixture
def small_demo(monkeypatch):
    monkeypatch.setattr(demo, "DEMO_DATA", dict(demo.DEMO_DATA, n_train=300, n_test=48, num_aug=1))


class StepClock:
    """The demo's clock (its deadline and its speed fit) advanced by a fixed 0.5 s on every reading, so the
    number of steps a budget buys depends on the code, not on how busy the machine is."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 0.5
        return self.now

    def strftime(self, fmt):
        import time
        return time.strftime(fmt)


@pytest.fixture(autouse=True)
def step_clock(monkeypatch):
    monkeypatch.setattr(demo, "time", StepClock())


def run_demo(output, capsys, *overrides, minutes="0.05"):
    # A few seconds of eager training: compiling would take longer than the budget.
    argv = ["--minutes", minutes, "--threads", "2", "--output", str(output), "compile=false",
            "logging.log_interval=5", "logging.progress=false", *overrides]
    assert demo.main(argv) == 0
    return capsys.readouterr().out


def test_demo_trains_evaluates_and_reports(small_demo, tmp_path, capsys):
    out = run_demo(tmp_path / "demo", capsys, "lr_warmup_steps=2", "logging.log_interval=2", minutes="0.1")

    # configs/demo.yaml's dtype auto: hrm.device's choice for this CPU
    dtype = str(pick_dtype(torch.device("cpu"))[0]).removeprefix("torch.")
    assert f"dtype={dtype}" in out.splitlines()[0]
    assert "held-out exact accuracy (48 6x6 puzzles" in out
    assert "copy the input (trivial baseline)" in out and "model, 1 ACT step (no thinking)" in out
    assert "model, 8 ACT steps" in out
    assert "hrm solve" in out

    (results_file,) = (tmp_path / "demo").glob("run-*/demo_results.json")
    results = json.loads(results_file.read_text())
    assert results["num_test"] == 48 and results["steps_trained"] > 0
    assert len(results["exact_accuracy_per_step"]) == 8
    assert all(0.0 <= a <= 1.0 for a in results["exact_accuracy_per_step"])
    assert results["copy_input"] == 0.0                         # every puzzle has blanks to fill
    assert f"dtype={dtype}" in results["device"]

    # The cosine's horizon was fitted to the time budget: about the steps the run made.
    config = yaml.safe_load((results_file.parent / "all_config.yaml").read_text())
    assert results["steps_trained"] / 2 <= config["lr_schedule_steps"] <= 2 * results["steps_trained"]


def test_demo_reuses_its_data_and_refuses_a_foreign_folder(small_demo, tmp_path, capsys):
    output = tmp_path / "demo"
    run_demo(output, capsys)
    assert "data: reusing" in run_demo(output, capsys)

    foreign = tmp_path / "foreign"
    (foreign / "data").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not made by this demo's generator"):
        demo.main(["--minutes", "0.05", "--output", str(foreign)])


def test_demo_rejects_an_unknown_override(small_demo, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--output", str(tmp_path / "demo"), "arch.L_cycle=3"])
    assert exit_info.value.code == 2
    assert "arch.L_cycles" in capsys.readouterr().err           # the nearest valid key is suggested


def test_an_architecture_named_by_its_family_gets_its_demo_block():
    assert demo.demo_sized("arch=trm") == "arch=trm_demo"
    assert demo.demo_sized("arch=transformer") == "arch=transformer_demo"
    assert demo.demo_sized("arch=hrm_27m") == "arch=hrm_27m"            # an exact block name is kept
    assert demo.demo_sized("arch.L_cycles=3") == "arch.L_cycles=3"
    assert demo.demo_sized("arch=nonsense") == "arch=nonsense"          # the config loader names the error
