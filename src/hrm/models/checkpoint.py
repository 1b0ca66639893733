"""Model weight files: hrm's own format, and the original's `torch.save`d state dicts.

hrm's format is a directory (or a `.safetensors` file with `config.json` beside it):
    model.safetensors   the ACTLossHead state dict, keys as the original's without `_orig_mod.`
    config.json         {"format": "hrm-weights", "version": 1, "arch": {"name": ..., ...its config...},
                         "dtype": "float32", ...}: the architecture by name, and the dtype the weights
                         were trained (computed) in, which evaluation uses by default
No pickle. The original's checkpoints (`checkpoints/<project>/<run>/step_<N>`, no extension) are read
with `torch.load(weights_only=True)`, with or without the `_orig_mod.` prefix that `torch.compile`
adds, and their architecture comes from `all_config.yaml` beside them.
"""
from __future__ import annotations

import json
import os
import re
import sys
import typing
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import torch

from hrm.files import atomic_write, atomic_write_text
from hrm.models import ACTLossHead, HRMConfig, arch_config, architecture, build_model

FORMAT = "hrm-weights"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
COMPILE_PREFIX = "_orig_mod."


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file and key."""


# ----------------------------------------------------------------------------------------------------
# Config <-> dict

def arch_to_dict(config) -> dict[str, Any]:
    return asdict(config)


def arch_from_dict(values: dict[str, Any], source: str = "config"):
    """The config of the architecture named by values["name"] (hrm.models' registry), with the originals'
    extras accepted (class-path names, loss.name, causal, forward_dtype). Each value must have its field's
    type (a number where a number belongs): the error names the key."""
    if not isinstance(values, dict):
        raise CheckpointError(f"{source}: 'arch' must be a mapping of architecture keys, got {type(values).__name__}")
    name = values.get("name", "hrm_act_v1")
    if not isinstance(name, str):
        raise CheckpointError(f"{source}: arch.name must be a string, got {name!r}")
    try:
        cls = architecture(name).config
    except ValueError as e:
        raise CheckpointError(f"{source}: arch.name: {e}") from None
    hints = typing.get_type_hints(cls)
    values = dict(values)
    for key, value in values.items():
        tp = hints.get(key)
        if tp is float and isinstance(value, str):        # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                values[key] = value = float(value)
            except ValueError:
                pass
        expected = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp)
        if expected is None:
            continue
        ok = (isinstance(value, bool) if tp is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if tp is float else
              isinstance(value, tp) and not isinstance(value, bool))
        if not ok:
            raise CheckpointError(f"{source}: arch.{key} must be {expected}, got {value!r}")
    if "loss" in values and not isinstance(values["loss"], (dict, type(None))):
        raise CheckpointError(f"{source}: arch.loss must be a mapping, got {values['loss']!r}")
    try:
        return arch_config(values)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


def read_json(path: Path, what: str = "JSON file") -> Any:
    """A JSON file's value, or a one-line CheckpointError naming the file (and line and column)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the {what}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not a UTF-8 text file (byte {e.start}); the {what} is damaged") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: JSON nested too deeply; the {what} is damaged") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A run's all_config.yaml as a plain mapping, or a one-line CheckpointError naming the file."""
    import yaml

    from hrm.config_values import yaml_problem

    try:
        value = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not a UTF-8 text file (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise CheckpointError(yaml_problem(path, e)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: must be a mapping of config keys, got {type(value).__name__}")
    return value


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ----------------------------------------------------------------------------------------------------
# Writing

def save_weights(head: ACTLossHead, config, directory: str | Path, extra: dict[str, Any] | None = None,
                 trained_dtype: str | None = None) -> Path:
    """Write `model.safetensors` and `config.json` into `directory`, each atomically.

    `trained_dtype` (default: the dtype `head` computes in) is recorded as "dtype": the dtype the weights
    were trained in, which `hrm eval`, `hrm solve` and the exporters use by default.
    """
    directory = Path(directory)
    state = {k: v.detach().to("cpu").contiguous() for k, v in strip_prefix(head.state_dict()).items()}
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_safetensors(state, tmp, {"format": FORMAT}))
    dtype = trained_dtype or dtype_name(head.model.inner.forward_dtype)
    meta = {"format": FORMAT, "version": VERSION, "arch": arch_to_dict(config), "dtype": dtype, **(extra or {})}
    atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return directory


def save_safetensors(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, with an I/O failure (a full disk) raised as the OSError it is, naming `path`."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(state, str(path), metadata=metadata)
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        if code:
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from e
        raise


# ----------------------------------------------------------------------------------------------------
# Reading

def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(COMPILE_PREFIX): v for k, v in state.items()}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file (corrupted or truncated?): {e}") from e


def read_original_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """An original checkpoint: a `torch.save`d state dict, read without unpickling arbitrary objects."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: cannot read as a torch state dict (corrupted, truncated or not a checkpoint): {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors (a model state dict), got {type(state).__name__}")
    return strip_prefix(state)


def check_state_fits(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: str) -> None:
    """A CheckpointError naming every missing, unexpected or mis-shaped key of `state` against `expected`
    (a state dict; its tensors may be on the meta device)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [f"{k}: file has {tuple(state[k].shape)}, model expects {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if misshaped:
        problems.append("mis-shaped tensors: " + "; ".join(misshaped))
    if problems:
        raise CheckpointError(f"{source} does not fit the model ({'; '.join(problems)})")


def load_state_into(head: ACTLossHead, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `head`, with an error that names every missing, unexpected or mis-shaped key."""
    expected = head.state_dict()
    check_state_fits(expected, state, source)
    with torch.no_grad():
        for k, v in expected.items():
            v.copy_(state[k])                 # copy_ casts, e.g. the original's bf16 H_init into float32


def find_all_config(path: Path) -> Path | None:
    """The run's all_config.yaml for the weights at `path`: beside them, or up to two folders above
    (RUN/checkpoints/step_<N>/, or the original's checkpoints/<project>/<run>/step_<N>)."""
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / "all_config.yaml").is_file():
            return candidate / "all_config.yaml"
    return None


def original_arch_config(path: Path, state: dict[str, torch.Tensor], overrides: dict[str, Any] | None = None):
    """The architecture of an original checkpoint: `all_config.yaml` beside it, sizes from the weights.

    vocab_size, num_puzzle_identifiers and puzzle_emb_ndim are read off the tensors. seq_len is read from
    the learned position table when there is one; with RoPE it comes from the dataset named by
    `data_path` in all_config.yaml, or from `overrides`.
    """
    overrides = dict(overrides or {})
    yaml_path = find_all_config(path)
    if yaml_path is None and "hidden_size" not in overrides:
        raise CheckpointError(f"{path}: no all_config.yaml beside the checkpoint; it holds the architecture")
    full = read_yaml_mapping(yaml_path) if yaml_path else {}
    if not isinstance(full.get("arch", {}), dict):
        raise CheckpointError(f"{yaml_path}: 'arch' must be a mapping of architecture keys")
    arch = dict(full.get("arch", {}))
    if "model.inner.embed_tokens.embedding_weight" not in state:
        raise CheckpointError(f"{path}: not an HRM state dict (no model.inner.embed_tokens.embedding_weight)")

    arch["vocab_size"] = state["model.inner.embed_tokens.embedding_weight"].shape[0]
    if "model.inner.puzzle_emb.weights" in state:
        arch["num_puzzle_identifiers"], arch["puzzle_emb_ndim"] = state["model.inner.puzzle_emb.weights"].shape
    else:
        arch["puzzle_emb_ndim"] = 0
        arch.setdefault("num_puzzle_identifiers", 1)
    batch = full.get("global_batch_size", 1)
    arch.setdefault("batch_size", max(1, batch) if isinstance(batch, int) and not isinstance(batch, bool) else 1)
    if "seq_len" not in arch and "seq_len" not in overrides:
        recorded = recorded_data_path(full)
        if "model.inner.embed_pos.embedding_weight" in state:
            hidden = arch.get("hidden_size", HRMConfig.hidden_size)
            # TRM's puzzle_emb_len (0: HRM's rule, ceil(puzzle_emb_ndim / hidden_size) positions).
            P = arch.get("puzzle_emb_len") or -(arch["puzzle_emb_ndim"] // -hidden)
            arch["seq_len"] = state["model.inner.embed_pos.embedding_weight"].shape[0] - P
        elif recorded:
            from hrm.data import load_metadata
            data_path = Path(recorded)
            if not data_path.is_absolute() and yaml_path is not None and not data_path.exists():
                data_path = yaml_path.parent / data_path
            try:
                arch["seq_len"] = load_metadata(data_path, "train").seq_len
            except (OSError, ValueError) as e:
                raise CheckpointError(f"{path}: seq_len is not stored with RoPE; give seq_len or a readable "
                                      f"data_path (tried {data_path}: {e})") from e
        else:
            raise CheckpointError(f"{path}: seq_len is not stored with RoPE; pass seq_len (e.g. 81 for Sudoku)")
    arch.update(overrides)
    return arch_from_dict(arch, source=str(yaml_path or path))


def recorded_data_path(run_config: dict[str, Any]) -> str | None:
    """The dataset a run's all_config.yaml names: hrm's and HRM's `data_path`, or TRM's `data_paths` list.

    NOTE: TRM trains on several datasets at once when `data_paths` lists more than one; no one of them is
    "the" dataset then, so None (the user names one with data_path=).
    """
    if run_config.get("data_path"):
        return str(run_config["data_path"])
    paths = run_config.get("data_paths")
    if isinstance(paths, list) and len(paths) == 1 and isinstance(paths[0], str):
        return paths[0]
    return None


def trained_dtype(path: str | Path) -> str | None:
    """The dtype a checkpoint's weights were trained in, if it says: hrm's config.json "dtype" (older hrm
    checkpoints: arch.forward_dtype unless "auto"), the original's all_config.yaml arch.forward_dtype.
    None when nothing says; a checkpoint that cannot be read is reported by load_checkpoint, not here."""
    import yaml

    try:
        path = resolve_weights(path)
        if is_hrm_checkpoint(path):
            meta = json.loads(((path if path.is_dir() else path.parent) / CONFIG_FILE).read_text())
            arch = meta.get("arch") if isinstance(meta.get("arch"), dict) else {}
            dtype = meta.get("dtype") or arch.get("forward_dtype")
        else:
            yaml_path = find_all_config(path)
            full = yaml.safe_load(yaml_path.read_text()) if yaml_path else {}
            dtype = (full.get("arch") or {}).get("forward_dtype") if isinstance(full, dict) else None
    except (OSError, ValueError, AttributeError, yaml.YAMLError):   # CheckpointError is a ValueError
        return None
    return dtype if isinstance(dtype, str) and dtype != "auto" else None


def resolve_weights(path: str | Path) -> Path:
    """What a user may name as a checkpoint, as the weights to read: a run directory or its checkpoints/
    folder (the latest step_<N> holding weights), a weights folder or .safetensors file, an original file."""
    path = Path(path)
    if path.is_dir() and not (path / WEIGHTS_FILE).is_file():
        for folder in (path / "checkpoints", path):
            steps = sorted((int(m.group(1)), p) for p in folder.glob("step_*")
                           if (m := re.fullmatch(r"step_(\d+)", p.name)) and (p / WEIGHTS_FILE).is_file())
            if steps:
                return steps[-1][1]
        raise CheckpointError(f"{path}: no checkpoint in it (no {WEIGHTS_FILE}, and no checkpoints/step_<N> holding one)")
    return path


def is_hrm_checkpoint(path: Path) -> bool:
    return (path.is_dir() and (path / WEIGHTS_FILE).is_file()) or path.suffix == ".safetensors"


def locate(path: str | Path) -> tuple[Path, Path | None]:
    """(the checkpoint resolved, its hrm-format weights file or None for an original state dict)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    path = resolve_weights(path)
    if is_hrm_checkpoint(path):
        return path, (path / WEIGHTS_FILE if path.is_dir() else path)
    return path, None


def read_state(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict without the `_orig_mod.` prefix, the file it came from) of any checkpoint a user may name,
    without building its model (so neither its architecture nor its dataset is needed)."""
    path, weights = locate(path)
    if weights is not None:
        return strip_prefix(read_safetensors(weights)), str(weights)
    return read_original_state_dict(path), str(path)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                    arch_overrides: dict[str, Any] | None = None) -> tuple[ACTLossHead, Any, dict[str, Any]]:
    """Load weights from hrm's format or the original's. Returns (head, arch config, info).

    `info` holds "format" ("hrm" or "original"), "path", and everything else in config.json (for
    example the dataset hash). The model computes in `dtype`; by default in the dtype it was trained in,
    where `device` can run it (hrm.device.choose; NOTE: the original's configs all say bfloat16, which is
    ~300x slower on CPUs without bf16 matmul, so there float32 is used).
    """
    path, weights = locate(path)
    if weights is not None:
        config_path = weights.parent / CONFIG_FILE
        if not config_path.is_file():
            raise CheckpointError(f"{weights}: {CONFIG_FILE} is missing beside the weights")
        meta = read_json(config_path, "weights config")
        if not isinstance(meta, dict):
            raise CheckpointError(f"{config_path}: must be a JSON object, got {type(meta).__name__}")
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{config_path}: not an hrm weights config (format={meta.get('format')!r})")
        if "arch" not in meta:
            raise CheckpointError(f"{config_path}: the key 'arch' (the architecture) is missing")
        if not isinstance(meta["arch"], dict):
            raise CheckpointError(f"{config_path}: 'arch' must be a mapping of architecture keys, got {meta['arch']!r}")
        arch = {**meta["arch"], **(arch_overrides or {})}
        config = arch_from_dict(arch, source=str(config_path))
        state = read_safetensors(weights)
        info = {k: v for k, v in meta.items() if k != "arch"} | {"format": "hrm", "path": str(path)}
        source = str(weights)
    else:
        state = read_original_state_dict(path)
        config = original_arch_config(path, state, arch_overrides)
        info = {"format": "original", "path": str(path)}
        source = str(path)

    if dtype is None:
        from hrm.device import pick_dtype
        dtype, _ = pick_dtype(torch.device(device), trained=trained_dtype(path))
    # The shapes are checked on a model without storage first: a config whose sizes were damaged
    # (vocab_size 2**40) is reported, not allocated.
    with torch.device("meta"):
        expected = build_model(config, forward_dtype=dtype, device="meta").state_dict()
    check_state_fits(expected, state, source)
    head = build_model(config, forward_dtype=dtype, device="cpu")
    load_state_into(head, state, source)
    return head.to(device), config, info


# ----------------------------------------------------------------------------------------------------
# `hrm convert ORIGINAL OUT_DIR`

def convert_spec():
    from hrm.cli_args import Command, Option
    return Command("hrm convert", "Convert an original HRM or TRM checkpoint (torch.save'd state dict + all_config.yaml) "
                   "to hrm's safetensors format.", [
                       Option("checkpoint", Path, positional=True, required=True,
                              help="original checkpoint file, e.g. checkpoints/.../step_26040"),
                       Option("output_dir", Path, positional=True, required=True,
                              help="directory to write model.safetensors and config.json to"),
                       Option("seq_len", int, help="sequence length, if not derivable (RoPE without data_path)")])


def convert_main(argv: list[str]) -> int:
    args = convert_spec().parse_or_exit(argv)

    overrides = {"seq_len": args.seq_len} if args.seq_len else None
    try:
        # float32 holds every stored tensor exactly (H_init/L_init may be bf16 in the file): a lossless copy,
        # whatever dtype this machine would compute in.
        head, config, _ = load_checkpoint(args.checkpoint, dtype=torch.float32, arch_overrides=overrides)
    except CheckpointError as e:
        print(f"hrm convert: {e}", file=sys.stderr)
        return 2
    save_weights(head, config, args.output_dir, extra={"converted_from": str(args.checkpoint)},
                 trained_dtype=trained_dtype(args.checkpoint) or "float32")
    n_params = sum(p.numel() for p in head.parameters())
    print(f"wrote {args.output_dir / WEIGHTS_FILE} and {CONFIG_FILE}: {n_params:,} parameters, "
          f"vocab {config.vocab_size}, seq_len {config.seq_len}, {config.num_puzzle_identifiers} puzzle ids")
    return 0


def load_live_parameters(named_params: list[tuple[str, torch.nn.Parameter]], live: dict[str, torch.Tensor],
                         expected: Iterable[str], source: str) -> None:
    """Copy a training checkpoint's live parameters (`live.<name>` in train_state.safetensors, saved beside
    averaged weights: semantics §15.4) into the model, cast to each parameter's device and dtype."""
    expected = set(expected)
    if set(live) != expected:
        missing, extra = sorted(expected - set(live)), sorted(set(live) - expected)
        raise CheckpointError(f"{source}: the live parameters do not fit the model (missing {missing}, unexpected {extra})")
    with torch.no_grad():
        for name, param in named_params:
            if name in live:
                if live[name].shape != param.shape:
                    raise CheckpointError(f"{source}: live.{name} has shape {tuple(live[name].shape)}, the parameter "
                                          f"{tuple(param.shape)}")
                param.copy_(live[name].to(param.device, param.dtype))
