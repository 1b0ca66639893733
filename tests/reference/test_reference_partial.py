"""`hrm check-reference` on fixtures other than the complete one: fixtures holding only some record groups,
malformed fixtures (one-line errors, exit status 2) and fixtures of architectures without a replay."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from hrm.cli import main as hrm_main
from hrm.reference.hrm import GROUPS, main
from reference_helpers import fixture_path

SOURCE = "hrm_act_v1_small"


def write_fixture(tmp_path: Path, drop=lambda name: False, edit_meta=None, edit_records=None,
                  name: str = "partial") -> Path:
    """A copy of the committed fixture without the records `drop` selects, in both the safetensors and
    the sidecar's record index (as a recording that never made them would be), then edited."""
    meta = json.loads(fixture_path(f"{SOURCE}.json").read_text())
    records = load_file(str(fixture_path(f"{SOURCE}.safetensors")))
    records = {k: v for k, v in records.items() if not drop(k)}
    meta["records"] = [entry for entry in meta["records"] if not drop(entry["name"])]
    if edit_records:
        edit_records(records, meta)
    if edit_meta:
        edit_meta(meta)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(meta))
    save_file({k: v.contiguous() for k, v in records.items()}, str(path.with_suffix(".safetensors")))
    return path


def check(path: Path, capsys) -> tuple[int, str, str]:
    status = main([str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def report_groups(out: str) -> dict[str, str]:
    """group -> its verdict in the report's table (PASS / FAIL), or 'absent' for an absent line."""
    groups = {}
    for line in out.splitlines():
        if line.startswith("absent: "):
            groups[line.removeprefix("absent: ").split(" — ")[0]] = "absent"
        elif line[:18].rstrip() in GROUPS:          # a table row: name, records, failed, abs, rel, verdict
            groups[line[:18].rstrip()] = line[18:].split()[4]
    return groups


# --- partial fixtures ------------------------------------------------------------------------------

def is_exploration(name: str) -> bool:
    return name.startswith("train.")


def test_fixture_without_exploration_variants_or_grads_checks_what_it_holds(tmp_path, capsys):
    path = write_fixture(tmp_path, drop=lambda k: is_exploration(k) or k.startswith(("variant_", "grad.")))
    status, out, err = check(path, capsys)
    assert status == 0 and err == "", err
    assert out.splitlines()[-1] == "PASS"
    groups = report_groups(out)
    assert groups == {"init": "PASS", "eval": "PASS", "train_noexplore": "PASS",
                      "grad": "absent", "train": "absent", "train (torch RNG)": "absent",
                      "variant_learned": "absent", "variant_pe80": "absent"}, out
    assert "absent: train (torch RNG) — the fixture holds no records train.call* (outputs)" in out
    assert "absent: grad — the fixture holds no records grad.*" in out


def test_fixture_without_exploration_draws_checks_the_torch_rng_run_and_the_grads(tmp_path, capsys):
    path = write_fixture(tmp_path, drop=lambda k: k.startswith("train.") and k.endswith(("explore_rand",
                                                                                          "explore_randint")))
    status, out, err = check(path, capsys)
    assert status == 0 and err == "", err
    groups = report_groups(out)
    assert groups["train"] == "absent" and groups["train (torch RNG)"] == "PASS" and groups["grad"] == "PASS", out
    assert "absent: train — the fixture holds no exploration draws" in out and "for call 1, 2, 3, 4, 5" in out
    grad_line = next(line for line in out.splitlines() if line.startswith("grad "))
    assert grad_line.split()[1] == "21", grad_line          # every call-1 gradient, from the torch RNG run


def test_fixture_with_only_call1_gradients_still_checks_them(tmp_path, capsys):
    path = write_fixture(tmp_path, drop=lambda k: k.startswith(("train.", "train_noexplore.", "eval.", "variant_")))
    status, out, err = check(path, capsys)
    assert status == 0 and err == "", err
    groups = report_groups(out)
    assert {k for k, v in groups.items() if v != "absent"} == {"init", "grad"}, out
    assert next(line for line in out.splitlines() if line.startswith("grad ")).split()[1] == "21"


def test_fixture_with_only_params_passes_on_the_init(tmp_path, capsys):
    path = write_fixture(tmp_path, drop=lambda k: not k.startswith(("param.", "batch")))
    status, out, err = check(path, capsys)
    assert status == 0, out + err
    assert [g for g, v in report_groups(out).items() if v != "absent"] == ["init"]
    assert sum(line.startswith("absent: ") for line in out.splitlines()) == len(GROUPS) - 1


def test_partial_fixture_with_a_wrong_record_fails(tmp_path, capsys):
    """Passing on what it holds means failing when what it holds is wrong."""
    def corrupt(records, meta):
        records["eval.step2.logits"] = records["eval.step2.logits"] + 1e-2
    path = write_fixture(tmp_path, drop=lambda k: is_exploration(k) or k.startswith("variant_"), edit_records=corrupt)
    status, out, err = check(path, capsys)
    assert status == 1 and out.splitlines()[-1] == "FAIL", out
    assert report_groups(out)["eval"] == "FAIL" and "FAIL eval.step2.logits" in out
    assert "absent: train — " in out


# --- malformed fixtures: one line on stderr naming the file and the key, exit status 2 ---------------

def assert_one_line_error(path_or_status, capsys, *expected: str) -> str:
    status, out, err = path_or_status if isinstance(path_or_status, tuple) else check(path_or_status, capsys)
    assert status == 2, out + err
    assert out == "", out                                   # no half report
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hrm check-reference: ")
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_sidecar_not_json(tmp_path, capsys):
    path = write_fixture(tmp_path)
    path.write_text('{"config": {"batch_size": 4,')
    assert_one_line_error(path, capsys, str(path), "not JSON")


def test_sidecar_json_but_not_an_object(tmp_path, capsys):
    path = write_fixture(tmp_path)
    path.write_text("[1, 2]")
    assert_one_line_error(path, capsys, str(path), "not an object")


@pytest.mark.parametrize("key", ["config", "records", "seeds"])
def test_sidecar_missing_a_top_level_key(tmp_path, capsys, key):
    path = write_fixture(tmp_path, edit_meta=lambda meta: meta.pop(key))
    assert_one_line_error(path, capsys, str(path), f"no '{key}' key")


@pytest.mark.parametrize("key", ["hidden_size", "batch_size", "halt_max_steps"])
def test_sidecar_missing_a_config_key(tmp_path, capsys, key):
    path = write_fixture(tmp_path, edit_meta=lambda meta: meta["config"].pop(key))
    assert_one_line_error(path, capsys, str(path), f"'config.{key}'")


def test_sidecar_missing_the_init_seed(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_meta=lambda meta: meta["seeds"].pop("model_init"))
    assert_one_line_error(path, capsys, str(path), "'seeds.model_init'")


def test_record_index_entry_without_a_shape(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_meta=lambda meta: meta["records"][3].pop("shape"))
    assert_one_line_error(path, capsys, str(path), "records[3]", "'shape'")


def test_config_that_makes_no_model(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_meta=lambda meta: meta["config"].update(num_heads=5))
    assert_one_line_error(path, capsys, str(path), "'config'", "num_heads=5")


def test_safetensors_missing(tmp_path, capsys):
    path = write_fixture(tmp_path)
    path.with_suffix(".safetensors").unlink()
    assert_one_line_error(path, capsys, str(path.with_suffix(".safetensors")), "no such file")


def test_safetensors_truncated(tmp_path, capsys):
    path = write_fixture(tmp_path)
    records = path.with_suffix(".safetensors")
    data = records.read_bytes()
    records.write_bytes(data[: len(data) // 2])
    assert_one_line_error(path, capsys, str(records), "truncated")


def test_record_in_the_index_but_not_in_the_file(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_records=lambda records, meta: records.pop("eval.step1.logits"))
    assert_one_line_error(path, capsys, str(path.with_suffix(".safetensors")), "'eval.step1.logits'",
                          "in the sidecar's record index but not in the file")


def test_record_in_the_file_but_not_in_the_index(tmp_path, capsys):
    def unindex(records, meta):
        meta["records"] = [e for e in meta["records"] if e["name"] != "eval.step1.logits"]
    path = write_fixture(tmp_path, edit_records=unindex)
    assert_one_line_error(path, capsys, "'eval.step1.logits'", "not in the sidecar's record index")


def test_record_shape_disagreeing_with_the_index(tmp_path, capsys):
    def reshape(records, meta):
        records["eval.step1.q_halt_logits"] = records["eval.step1.q_halt_logits"][:3]
    path = write_fixture(tmp_path, edit_records=reshape)
    assert_one_line_error(path, capsys, str(path.with_suffix(".safetensors")), "'eval.step1.q_halt_logits'",
                          "shape [3]", "index says [4]")


def shrink(name: str, keep: slice | tuple):
    """Cut a record down in both the file and the index, so only the config can tell it does not fit."""
    def edit(records, meta):
        records[name] = records[name][keep].clone()
        next(e for e in meta["records"] if e["name"] == name)["shape"] = list(records[name].shape)
    return edit


def test_batch_shape_not_fitting_the_config(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_records=shrink("batch3.inputs", (slice(None), slice(0, 15))))
    assert_one_line_error(path, capsys, "'batch3.inputs'", "shape [4, 15]", "seq_len 16", "[4, 16]")


def test_exploration_draws_not_fitting_the_batch(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_records=shrink("train.call2.explore_rand", slice(0, 2)))
    assert_one_line_error(path, capsys, "'train.call2.explore_rand'", "[2]", "batch_size 4")


def test_weights_not_fitting_the_config(tmp_path, capsys):
    path = write_fixture(tmp_path, edit_records=shrink("param.model.inner.lm_head.weight", (slice(None), slice(0, 32))))
    line = assert_one_line_error(path, capsys, str(path), "model.inner.lm_head.weight", "(12, 32)")
    assert "does not fit the model" in line


def test_a_batch_the_procedures_need_is_missing(tmp_path, capsys):
    path = write_fixture(tmp_path, drop=lambda k: k.startswith("batch4."))
    assert_one_line_error(path, capsys, "'batch4.inputs'", "need batch4")


def test_fixture_without_weights(tmp_path, capsys):
    path = write_fixture(tmp_path, drop=lambda k: k.startswith("param."))
    assert_one_line_error(path, capsys, "no param.* records")


def test_the_cli_entry_returns_the_error_status(tmp_path, capsys):
    path = write_fixture(tmp_path)
    path.with_suffix(".safetensors").unlink()
    assert_one_line_error((hrm_main(["check-reference", str(path)]),) + tuple(capsys.readouterr()), capsys,
                          "no such file")


# --- architectures: the fixture names its model ------------------------------------------------------

def test_a_fixture_of_an_architecture_without_a_replay_says_so(tmp_path, capsys):
    """The official repository's ablations (trm_singlez, trm_hier6) are not here: a one-line error."""
    meta = json.loads(fixture_path("trm_small.json").read_text())
    files = meta["original_files_sha256"]
    files["models/recursive_reasoning/trm_singlez.py"] = files.pop("models/recursive_reasoning/trm.py")
    (tmp_path / "singlez.json").write_text(json.dumps(meta))              # no safetensors beside it
    line = assert_one_line_error(tmp_path / "singlez.json", capsys, "singlez.json", "architecture 'trm_singlez'",
                                 "models/recursive_reasoning/trm_singlez.py", "not available yet")
    assert "hrm_act_v1, trm" in line


def test_an_explicit_config_name_decides_the_architecture(tmp_path, capsys):
    """A fixture whose config names its model (the original's `module@Class`) is judged by that name."""
    path = write_fixture(tmp_path, edit_meta=lambda meta: meta["config"].update(
        name="recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1"))
    assert_one_line_error(path, capsys, "architecture 'trm_hier6'", "config.name")
    # Named TRM, the HRM recording is rebuilt as a TRM, whose weights it does not hold.
    path = write_fixture(tmp_path, name="as_trm", drop=lambda k: k.startswith("variant_"), edit_meta=lambda meta: meta["config"].update(
        name="recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"))
    assert_one_line_error(path, capsys, "does not fit the model", "unexpected keys: model.inner.H_level")


def test_a_copied_trm_fixture_without_its_records_is_a_one_line_error(tmp_path, capsys):
    shutil.copy(fixture_path("trm_small.json"), tmp_path / "trm.json")      # no safetensors beside it
    assert_one_line_error(tmp_path / "trm.json", capsys, "trm.safetensors", "no such file")


def test_the_complete_fixture_reports_no_absent_group(capsys):
    status, out, _ = check(fixture_path(f"{SOURCE}.json"), capsys)
    assert status == 0 and "absent:" not in out
    assert report_groups(out) == {group: "PASS" for group in GROUPS}
