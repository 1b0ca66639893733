"""`hrm report`: runs grouped by their config without the seed, mean ± sample std as numpy computes them,
different protocols refused (naming the key) unless mix_protocols=true, the CSV and PNG written, bad input
one line. The runs are written here as `hrm train` and `hrm eval` write them (all_config.yaml, metrics.jsonl,
results.json), with chosen figures; tests/training/test_seeds.py reports real trained runs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hrm.evaluation.compare import ReportError, compare, default_out, main, parameter_count
from hrm.training.config import TrainConfig, save_config

# Three seeds' held-out (exact, token, Q-halt) accuracies.
FIGURES = [(0.61, 0.90, 0.70), (0.55, 0.88, 0.74), (0.70, 0.93, 0.69)]


def fake_run(run_dir: Path, seed: int, figures=(0.5, 0.8, 0.9), step: int = 100, lr: float = 1e-3,
             partial_last_line: bool = False) -> Path:
    """A run directory as `hrm train` leaves it: its config and its metrics, two evaluations in them."""
    config = TrainConfig(seed=seed, lr=lr, checkpoint_path=str(run_dir), run_name=run_dir.name,
                         data_path=str(run_dir / "data"))
    save_config(config, run_dir / "all_config.yaml")
    exact, token, q = figures
    records = [{"step": step // 2, "eval/exact_accuracy": 0.01, "eval/accuracy": 0.2, "eval/count": 50},
               {"step": step, "train/loss": 0.3, "train/exact_accuracy": 0.9},
               {"step": step, "eval/exact_accuracy": exact, "eval/accuracy": token, "eval/q_halt_accuracy": q,
                "eval/count": 50}]
    text = "".join(json.dumps(r) + "\n" for r in records) + ('{"step": 101, "train/lo' if partial_last_line else "")
    (run_dir / "metrics.jsonl").write_text(text)
    return run_dir


def fake_eval(run_dir: Path, seed: int, exact: float, **protocol) -> Path:
    """An `hrm eval` output folder in its default place, RUN/eval/<name>/results.json."""
    fake_run(run_dir, seed)
    folder = run_dir / "eval" / "step_100-data-test"
    folder.mkdir(parents=True)
    results = {"protocol": {"backend": "torch", "halting": "fixed", "halt_max_steps": 16, "split": "test",
                            "examples": 50, "seed": seed, "checkpoint": f"run{seed}", "compiled": seed % 2 == 0,
                            **protocol},
               "metrics": {"exact_accuracy": exact, "accuracy": 0.9, "q_halt_accuracy": 0.8, "count": 50},
               "checkpoint": str(run_dir / "checkpoints" / "step_100"), "dataset_hash": "abc"}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_mean_and_sample_std_over_three_seeds_are_numpys(tmp_path):
    base = tmp_path / "base"
    for seed, figures in enumerate(FIGURES):
        fake_run(base / f"seed{seed}", seed, figures, partial_last_line=seed == 1)
    result = compare([base])
    (group,) = result.groups
    assert sorted(group.seeds) == [0, 1, 2]
    for column, key in enumerate(("exact_accuracy", "accuracy", "q_halt_accuracy")):
        values = np.array([f[column] for f in FIGURES])
        mean, std = group.mean_std(key)
        assert mean == pytest.approx(np.mean(values), abs=1e-12)
        assert std == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    exact = np.array([f[0] for f in FIGURES])
    row = next(line for line in result.table.splitlines() if line.startswith(f"| {base}"))
    assert f"{100 * exact.mean():.2f} ± {100 * exact.std(ddof=1):.2f}" in row
    assert "| 3 (0,1,2) |" in row and "| 100 |" in row             # the steps of the last evaluation
    assert "sample standard deviation (n − 1)" in result.table


def test_one_run_has_no_std_and_configs_that_differ_are_separate_groups(tmp_path):
    # Two ways to name seed folders (BASE/seed<N>, NAME-seed<N>); runs of one config join whatever their names.
    fake_run(tmp_path / "a" / "seed0", 0, (0.5, 0.8, 0.9))
    fake_run(tmp_path / "a-seed1", 1, (0.7, 0.8, 0.9))
    fake_run(tmp_path / "b" / "seed0", 0, (0.2, 0.5, 0.9), lr=3e-3)
    groups = compare([tmp_path / "a", tmp_path / "a-seed1", tmp_path / "b"]).groups
    assert [len(g.entries) for g in groups] == [2, 1]
    assert "lr=0.001" in groups[0].label and "lr=0.003" in groups[1].label
    assert groups[0].mean_std("exact_accuracy") == pytest.approx((0.6, np.std([0.5, 0.7], ddof=1)))
    assert groups[1].mean_std("exact_accuracy") == (0.2, None)
    assert "| 1 (0) | 20.00 ± n/a |" in compare([tmp_path / "b"]).table


def test_different_protocols_are_refused_naming_the_key_unless_asked(tmp_path):
    # "subset" stands for any protocol key this module does not know: it counts like the known ones.
    folders = [fake_eval(tmp_path / f"seed{s}", s, 0.5 + 0.1 * s, subset="first-50" if s < 2 else "all")
               for s in range(3)]
    with pytest.raises(ReportError) as refused:
        compare(folders)
    message = str(refused.value)
    # Only subset is named: the seed, checkpoint and compiled keys, which differ too, are identity, not protocol.
    assert message.split("protocols: ")[1].startswith("subset (first-50 vs all); pass mix_protocols=true")
    assert "\n" not in message
    mixed = compare(folders, mix_protocols=True).groups
    assert [sorted(g.seeds) for g in mixed] == [[0, 1], [2]]
    assert "subset=first-50" in mixed[0].label and "subset=all" in mixed[1].label
    # Only the seed, the checkpoint and `compiled` differ: one protocol, one group.
    (group,) = compare(folders[:2]).groups
    assert group.mean_std("exact_accuracy")[0] == pytest.approx(0.55)
    # The trainer's own evaluation and hrm eval's are different protocols too.
    with pytest.raises(ReportError, match="evaluated_by"):
        compare([tmp_path / "seed0", folders[0]])


def test_csv_and_png_are_written_beside_each_other(tmp_path):
    base = tmp_path / "base"
    for seed, figures in enumerate(FIGURES):
        fake_run(base / f"seed{seed}", seed, figures)
    result = compare([base], out=tmp_path / "out" / "table.csv")
    assert result.csv == tmp_path / "out" / "table.csv" and result.png == tmp_path / "out" / "table.png"
    (row,) = list(csv.DictReader(result.csv.open()))
    exact = np.array([f[0] for f in FIGURES])
    assert float(row["exact_accuracy_mean"]) == pytest.approx(exact.mean())
    assert float(row["exact_accuracy_std"]) == pytest.approx(exact.std(ddof=1))
    assert row["runs"] == "3" and row["seeds"] == "0 1 2" and row["parameters_mean"] == ""
    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in result.csv.parent.iterdir()) == ["table.csv", "table.png"]   # nothing partial
    assert compare([base], plot=False).png is None and (base / "comparison.csv").is_file()


def test_default_out_is_in_the_one_folder_or_the_one_that_holds_them(tmp_path):
    assert default_out([tmp_path / "x"]) == (tmp_path / "x" / "comparison.csv").resolve()
    assert default_out([tmp_path / "runs" / "a", tmp_path / "runs" / "b"]) == (tmp_path / "runs" / "comparison.csv").resolve()


def test_a_demo_run_reports_its_own_evaluation(tmp_path):
    run = fake_run(tmp_path / "demo", 0)
    (run / "demo_results.json").write_text(json.dumps({"steps_trained": 700, "num_test": 40,
                                                       "exact_accuracy_per_step": [0.1, 0.3, 0.45]}))
    (group,) = compare([run]).groups
    assert group.protocol["evaluated_by"] == "hrm demo" and group.protocol["halt_max_steps"] == 3
    assert group.mean_std("exact_accuracy") == (0.45, None) and group.mean_std("steps_trained") == (700, None)


def test_parameters_are_counted_as_the_trainer_counts_them(tmp_path):
    from hrm.models import HRMConfig, build_model
    from hrm.models.checkpoint import save_weights

    arch = HRMConfig(H_layers=1, L_layers=1, H_cycles=1, L_cycles=1, hidden_size=32, num_heads=2, expansion=2.0,
                     puzzle_emb_ndim=32, halt_max_steps=2, seq_len=4, vocab_size=8, num_puzzle_identifiers=3,
                     batch_size=2)
    head = build_model(arch)
    save_weights(head, arch, tmp_path / "weights")
    assert parameter_count(tmp_path / "weights") == sum(p.numel() for p in head.parameters())
    assert parameter_count(tmp_path) is None


def one_line_error(argv: list[str], capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hrm report: ") and not captured.out, err
    return err


def test_bad_input_is_one_line_naming_the_path(tmp_path, capsys):
    assert f"{tmp_path / 'missing'}: no such directory" in one_line_error([tmp_path / "missing"], capsys)
    (tmp_path / "empty").mkdir()
    assert f"{tmp_path / 'empty'}: no results in it" in one_line_error([tmp_path / "empty"], capsys)
    bare = tmp_path / "bare"
    fake_run(bare, 0)
    (bare / "metrics.jsonl").write_text('{"step": 1, "train/loss": 2.0}\n')
    assert f"{bare}: a run directory with no evaluation yet" in one_line_error([bare], capsys)
    damaged = fake_eval(tmp_path / "damaged", 0, 0.5)
    (damaged / "results.json").write_text('{"protocol": {')
    assert f"{damaged / 'results.json'}: malformed JSON" in one_line_error([damaged], capsys)
    (tmp_path / "yaml").mkdir()
    (tmp_path / "yaml" / "all_config.yaml").write_text("lr: [1,\n")
    assert f"{tmp_path / 'yaml' / 'all_config.yaml'}:" in one_line_error([tmp_path / "yaml"], capsys)
    good = fake_run(tmp_path / "good", 0)
    assert "out=" in one_line_error([good, "out=table.txt"], capsys)


def test_the_command_prints_the_table_and_what_it_wrote(tmp_path, capsys):
    for seed, figures in enumerate(FIGURES):
        fake_run(tmp_path / "base" / f"seed{seed}", seed, figures)
    assert main([str(tmp_path / "base")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| group | seeds | exact accuracy (%)")
    assert f"wrote {tmp_path / 'base' / 'comparison.csv'}, {tmp_path / 'base' / 'comparison.png'}" in out
