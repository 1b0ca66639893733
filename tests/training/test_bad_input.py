"""Bad input to `hrm train`, and damaged runs given to `hrm train resume=`, `hrm eval`, `hrm solve` and
`hrm export onnx`: each is a one-line error that names the key or file, with exit status 2, never a traceback.

The commands run in this process (hrm.cli.main), so an uncaught exception fails the test as the traceback
a user would see; a few run as subprocesses too, as a user runs them.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from training_fixtures import make_dataset, tiny_config

from hrm.cli import main
from hrm.models.checkpoint import CheckpointError, load_checkpoint
from hrm.training.checkpointing import read_checkpoint

REPO = Path(__file__).resolve().parents[2]


def one_line_error(capsys, argv: list[str], *names: str, code: int = 2) -> str:
    """Run `hrm ARGV`; assert exit `code`, exactly one line on stderr, naming each of `names`."""
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:           # argparse's parser.exit
        rc = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == code, (rc, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("bad_input") / "data", n_train=32, n_test=8)


def base(data, tmp_path) -> list[str]:
    return [f"data_path={data}", f"checkpoint_path={tmp_path / 'run'}", "global_batch_size=16", "epochs=2",
            "eval_interval=1", "arch.hidden_size=32", "arch.num_heads=2", "arch.puzzle_emb_ndim=32",
            "device=cpu", "dtype=float32", "logging.progress=false"]


# ----------------------------------------------------------------------------------------------------
# hrm train: config values

BAD_VALUES = [
    ("epochs=0", "epochs"), ("epochs=-3", "epochs"), ("eval_interval=0", "eval_interval"),
    ("eval_interval=3", "eval_interval=3 must divide epochs=2"),
    ("global_batch_size=0", "global_batch_size"), ("global_batch_size=-8", "global_batch_size"),
    ("lr=-1", "lr"), ("lr=nan", "lr"), ("lr=inf", "lr"), ("puzzle_emb_lr=-0.1", "puzzle_emb_lr"),
    ("weight_decay=-1", "weight_decay"), ("puzzle_emb_weight_decay=-1", "puzzle_emb_weight_decay"),
    ("seed=-1", "seed"), (f"seed={2**32}", "seed"), (f"seed={2**63}", "seed"), ("seed=99999999999999999999999", "seed"),
    ("lr_warmup_steps=-1", "lr_warmup_steps"), ("beta1=1.5", "beta1"), ("lr_min_ratio=nan", "lr_min_ratio"),
    ("dtype=float8", "dtype"), ("arch.forward_dtype=float8", "dtype"), ("dtype=foo", "dtype"),
    ("device=tpu", "device=tpu"), ("device=cuda:x", "device=cuda:x"),
    ("arch.hidden_size=0", "hidden_size"), ("arch.num_heads=3", "num_heads"), ("arch.halt_max_steps=0", "halt_max_steps"),
    ("arch.halt_exploration_prob=2", "halt_exploration_prob"), ("data.eval_batch_size=0", "data.eval_batch_size"),
    ("data.eval_max_examples=-1", "data.eval_max_examples"), ("lr=abc", "lr"), ("seed=1.5", "seed"),
    ("L_cycles=2", "arch.L_cycles"), ("=3", "=3"),
]


@pytest.mark.parametrize("override,name", BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_a_bad_config_value_is_one_line(override, name, data, tmp_path, capsys):
    one_line_error(capsys, ["train", *base(data, tmp_path), override], "hrm train:", name)
    assert not (tmp_path / "run").exists()                  # refused before anything is written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_one_line(device, data, tmp_path, capsys):
    one_line_error(capsys, ["train", *base(data, tmp_path), f"device={device}"], f"device={device}", "CUDA is not available")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps_is_one_line(data, tmp_path, capsys):
    one_line_error(capsys, ["train", *base(data, tmp_path), "device=mps"], "device=mps", "MPS is not available")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_bad_device_variable_is_named(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HRM_DEVICE", "cuda")
    args = [a for a in base(data, tmp_path) if not a.startswith("device=")]
    one_line_error(capsys, ["train", *args], "HRM_DEVICE=cuda")


def test_bad_data_paths_are_one_line(data, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    for path, name in ((tmp_path / "nowhere", "nowhere"), (tmp_path / "empty", "dataset.json"), (tmp_path / "afile", "afile")):
        one_line_error(capsys, ["train", *base(data, tmp_path), f"data_path={path}"], str(path.name), name)


def test_a_run_folder_under_a_file_is_one_line(data, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    one_line_error(capsys, ["train", *base(data, tmp_path), f"checkpoint_path={tmp_path / 'afile' / 'run'}"],
                   "not a directory", "afile")


# ----------------------------------------------------------------------------------------------------
# hrm train: YAML files

YAML_FILES = {
    "not_utf8.yaml": (b"lr: 1e-3\n\xff\xfe: 3\n", "not_utf8.yaml:2", "UTF-8"),
    "a_list.yaml": (b"- 1\n- 2\n", "a_list.yaml", "mapping"),
    "a_scalar.yaml": (b"hello\n", "a_scalar.yaml", "mapping"),
    "malformed.yaml": (b"lr: [1,\n", "malformed.yaml:2", "malformed YAML"),
    "tab.yaml": (b"arch:\n\tL_cycles: 2\n", "tab.yaml:2", "malformed YAML"),
    "two_documents.yaml": (b"lr: 1\n---\nlr: 2\n", "two_documents.yaml:2", "malformed YAML"),
    "duplicate.yaml": (b"lr: 1\nepochs: 2\nlr: 2\n", "duplicate.yaml:3", "duplicate config key 'lr'"),
    "list_key.yaml": (b"? [1, 2]\n: 3\n", "list_key.yaml:1", "a config key must be a name"),
    "empty_value.yaml": (b"lr:\n", "empty_value.yaml:1", "lr"),
    "unknown.yaml": (b"arch:\n  L_cylces: 2\n", "unknown.yaml:2", "arch.L_cycles"),
    "bad_type.yaml": (b"epochs: many\n", "bad_type.yaml:1", "epochs"),
    "bad_value.yaml": (b"weight_decay: -1\n", "weight_decay"),
}


@pytest.mark.parametrize("name", list(YAML_FILES))
def test_a_bad_config_file_is_one_line(name, data, tmp_path, capsys):
    content, *names = YAML_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    one_line_error(capsys, ["train", "--config", str(path), *base(data, tmp_path)], *names)


def test_a_config_file_that_is_a_folder_or_missing_is_one_line(data, tmp_path, capsys):
    for path in (tmp_path, tmp_path / "missing.yaml"):
        one_line_error(capsys, ["train", "--config", str(path), *base(data, tmp_path)], str(path))


def test_errors_as_a_user_sees_them(data, tmp_path):
    """The same errors from a separate `python -m hrm.cli` process: exit 2, one line, no traceback."""
    (tmp_path / "list.yaml").write_text("- 1\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    for args, name in ((["epochs=0"], "epochs"), (["seed=-1"], "seed"), (["weight_decay=-1"], "weight_decay"),
                       (["--config", str(tmp_path / "list.yaml")], "list.yaml")):
        result = subprocess.run([sys.executable, "-m", "hrm.cli", "train", *base(data, tmp_path), *args], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and name in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------------------------------
# Damaged runs

@pytest.fixture(scope="module")
def trained_run(data, tmp_path_factory):
    from hrm.training import train

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train(tiny_config(data, run_dir, "epochs=1", "eval_interval=1"))
    return run_dir


def _json(path: Path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _reshape(path: Path, key: str, shape):
    tensors = load_file(str(path))
    tensors[key] = torch.zeros(shape, dtype=tensors[key].dtype)
    save_file(tensors, str(path))


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _lying_header(path: Path):
    """A safetensors header whose first tensor claims 2**40 elements."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first]["shape"] = [2**40]
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + n:])


def _python_rng(value):
    value["rng_extra"][0]["python"]["state"] = value["rng_extra"][0]["python"]["state"][:10]


# damage -> (file, how, what the error names). "ts": train_state.json, "st": train_state.safetensors,
# "cj": config.json, "ms": model.safetensors, "ac": the run's all_config.yaml.
TS, ST, CJ, MS = "train_state.json", "train_state.safetensors", "config.json", "model.safetensors"
DAMAGE = {
    "ts_not_json": (TS, lambda p: p.write_text("{not json"), [TS, "malformed JSON at line 1"]),
    "ts_empty": (TS, lambda p: p.write_text(""), [TS, "malformed JSON"]),
    "ts_not_utf8": (TS, lambda p: p.write_bytes(b"\xff\xfe"), [TS, "UTF-8"]),
    "ts_a_list": (TS, lambda p: p.write_text("[]"), [TS, "JSON object"]),
    "ts_no_step": (TS, lambda p: _json(p, lambda v: v.pop("step")), [TS, "'step' is missing"]),
    "ts_step_a_string": (TS, lambda p: _json(p, lambda v: v.update(step="x")), [TS, "'step' must be an integer"]),
    "ts_loader_an_int": (TS, lambda p: _json(p, lambda v: v.update(loader=5)), [TS, "'loader' must be a mapping"]),
    "ts_loader_key": (TS, lambda p: _json(p, lambda v: v["loader"].pop("set_index")), [TS, "loader.set_index"]),
    "ts_no_rng": (TS, lambda p: _json(p, lambda v: v.update(rng_extra=[])), [TS, "rng_extra"]),
    "ts_python_rng": (TS, lambda p: _json(p, _python_rng), ["step_", "Python's RNG state"]),
    "ts_numpy_rng": (TS, lambda p: _json(p, lambda v: v["rng_extra"][0]["numpy"].update(kind="XX")), ["numpy's RNG state"]),
    "ts_world_a_string": (TS, lambda p: _json(p, lambda v: v.update(world_size="1")), [TS, "world_size"]),
    "ts_other_world": (TS, lambda p: _json(p, lambda v: v.update(world_size=2)), [TS, "rng_extra"]),
    "st_truncated": (ST, _truncate, [ST, "truncated"]),
    "st_lying_header": (ST, _lying_header, [ST, "not a readable safetensors file"]),
    "st_missing": (ST, lambda p: p.unlink(), [ST]),
    "st_carry_rows": (ST, lambda p: _reshape(p, "carry.z_H", (3, 3)), [ST, "carry.z_H"]),
    "st_carry_width": (ST, lambda p: _reshape(p, "carry.z_H", (16, 6, 7)), [ST, "carry.z_H"]),
    "st_rng": (ST, lambda p: _reshape(p, "rng.0.torch_cpu", (7,)), [ST, "rng.0.torch_cpu"]),
    "st_numpy_keys": (ST, lambda p: _reshape(p, "rng.0.numpy_keys", (7,)), [ST, "rng.0.numpy_keys"]),
    "st_adam": (ST, lambda p: _reshape(p, "optim.adam.model.inner.lm_head.weight.exp_avg", (3, 3)), ["lm_head.weight", "exp_avg"]),
    "st_adam_step": (ST, lambda p: _reshape(p, "optim.adam.model.inner.lm_head.weight.step", (3, 3)), ["lm_head.weight", "step"]),
    "ms_truncated": (MS, _truncate, [MS, "truncated"]),
    "ms_empty": (MS, lambda p: p.write_bytes(b""), [MS]),
    "ms_lying_header": (MS, _lying_header, [MS]),
    "ms_wrong_shape": (MS, lambda p: _reshape(p, "model.inner.lm_head.weight", (3, 3)), [MS, "model.inner.lm_head.weight"]),
    "cj_no_arch": (CJ, lambda p: _json(p, lambda v: v.pop("arch")), [CJ, "'arch'"]),
    "cj_arch_a_list": (CJ, lambda p: _json(p, lambda v: v.update(arch=[1])), [CJ, "'arch'"]),
    "cj_a_list": (CJ, lambda p: p.write_text("[1]"), [CJ, "JSON object"]),
    "cj_not_json": (CJ, lambda p: p.write_text("{{"), [CJ, "malformed JSON"]),
    "cj_not_utf8": (CJ, lambda p: p.write_bytes(b"\xff\xfe"), [CJ, "UTF-8"]),
    "cj_size_a_string": (CJ, lambda p: _json(p, lambda v: v["arch"].update(hidden_size="big")), [CJ, "arch.hidden_size"]),
    "cj_size_negative": (CJ, lambda p: _json(p, lambda v: v["arch"].update(hidden_size=-4)), [CJ, "hidden_size"]),
    "cj_huge_vocab": (CJ, lambda p: _json(p, lambda v: v["arch"].update(vocab_size=2**40)), [MS, "embed_tokens"]),
    "cj_huge_width": (CJ, lambda p: _json(p, lambda v: v["arch"].update(hidden_size=2**20)), [MS, "does not fit"]),
    "cj_unknown_arch": (CJ, lambda p: _json(p, lambda v: v["arch"].update(name="nope")), [CJ, "nope"]),
    "cj_missing": (CJ, lambda p: p.unlink(), [CJ, "missing"]),
}
# The commands that read each file (train_state.* only matters to a resumed run; the run's all_config.yaml
# is what a resumed run reads instead of config.json).
COMMANDS = {TS: ["resume"], ST: ["resume"], MS: ["resume", "eval", "solve", "export"], CJ: ["eval", "solve", "export"]}
CASES = [(damage, command) for damage, (file, _, _) in DAMAGE.items() for command in COMMANDS[file]]


def _argv(command: str, run: Path) -> list[str]:
    return {"resume": ["train", f"resume={run}"], "eval": ["eval", f"checkpoint={run}", "device=cpu"],
            "solve": ["solve", str(run), "1234"], "export": ["export", "onnx", str(run), "--out", str(run / "onnx")]}[command]


@pytest.mark.parametrize("damage,command", CASES, ids=[f"{c}-{d}" for d, c in CASES])
def test_a_damaged_run_is_one_line(damage, command, trained_run, tmp_path, capsys):
    if command == "export":
        from hrm.export.commands import unavailable
        if unavailable("onnx"):
            pytest.skip("onnx is not installed")
    file, hurt, names = DAMAGE[damage]
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (step,) = (run / "checkpoints").iterdir()
    hurt(step / file)
    one_line_error(capsys, _argv(command, run), *names)


@pytest.mark.parametrize("content,name", [("a: [\n", "all_config.yaml:2"), ("- 1\n", "mapping"), (b"\xff\xfe", "UTF-8")])
def test_a_damaged_run_config_is_one_line_on_resume(content, name, trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    path = run / "all_config.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    one_line_error(capsys, ["train", f"resume={run}"], "all_config.yaml", name)


def test_random_damage_to_the_json_files_is_a_checkpoint_error_or_harmless(trained_run, tmp_path):
    """Seeded random mutations of config.json and train_state.json (bytes flipped, cut, values swapped for
    other JSON values): reading them either succeeds or raises CheckpointError, nothing else."""
    rng = random.Random(0)
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (step,) = (run / "checkpoints").iterdir()
    originals = {name: (step / name).read_bytes() for name in (CJ, TS)}
    others = [None, True, -1, 0, 2**70, 1.5, "x", [], {}, [1, "a"], {"a": 1}]

    def mutate(raw: bytes) -> bytes:
        kind = rng.randrange(3)
        if kind == 0:                                   # flip bytes
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        if kind == 1:                                   # cut
            return raw[: rng.randrange(len(raw))]
        value = json.loads(raw)                         # replace one value, at any depth
        node = value
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = rng.choice(keys)
            if isinstance(node[key], (dict, list)) and node[key] and rng.random() < 0.6:
                node = node[key]
                continue
            node[key] = rng.choice(others)
            break
        return json.dumps(value).encode()

    outcomes = {"ok": 0, "error": 0}
    for _ in range(60):
        name = rng.choice([CJ, TS])
        (step / name).write_bytes(mutate(originals[name]))
        try:
            if name == CJ:
                load_checkpoint(step, dtype=torch.float32)
            else:
                read_checkpoint(step)
            outcomes["ok"] += 1
        except CheckpointError as e:
            assert "\n" not in str(e) and str(step) in str(e), str(e)
            outcomes["error"] += 1
        (step / name).write_bytes(originals[name])
    assert outcomes["error"] > 20, outcomes
