"""`hrm export onnx|mlir|mlx CHECKPOINT` and `hrm verify CHECKPOINT [key=value ...]`."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from hrm.export.backends import ALL, unavailable

VERIFY_HELP = """options (key=value):
  data_path=DIR      puzzles from this dataset's test split (default: random token sequences)
  backends=a,b,...   which backends (default: all; known: {known})
  puzzles=N          how many puzzles (default 200)
  batch_size=N       puzzles per call (default 64)
  threads=N          CPU threads per backend (default: each backend's own)
  halt_early=BOOL    stop each row where its Q head says halt (default false: the eval protocol)
  json=PATH          also write the table as JSON
""".format(known=", ".join(ALL))


def _default_out(checkpoint: Path) -> Path:
    return (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "export"


def _smoke_inputs(config, batch_size: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = rng.integers(1, config.vocab_size, size=(batch_size, config.seq_len), dtype=np.int32)
    return inputs, np.zeros(batch_size, dtype=np.int32)


def _check_against_torch(name: str, step, head, config) -> str:
    """Run the export for one ACT step next to PyTorch: proof that it runs, and how close it is."""
    from hrm.export.act import run_act
    from hrm.export.torch_step import TorchStep
    from hrm.export.verify import errors

    inputs, ids = _smoke_inputs(config)
    ours = run_act(step, inputs, ids, config.halt_max_steps)
    ref = run_act(TorchStep(head.model.inner), inputs, ids, config.halt_max_steps)
    _, rel = errors(ours.logits, ref.logits)
    return f"ran {name} on 2 random puzzles x {config.halt_max_steps} steps: logits max rel error vs PyTorch {rel:.1e}"


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hrm export", description="Export a checkpoint to ONNX, MLIR (and an "
                                     "IREE module) or MLX; each export is run once next to PyTorch.")
    parser.add_argument("target", choices=("onnx", "mlir", "mlx"))
    parser.add_argument("checkpoint", type=Path, help="hrm checkpoint directory, or an original step_N file")
    parser.add_argument("--out", type=Path, default=None, help="output file (onnx, mlir) or directory (mlx); "
                        "default: CHECKPOINT/export/")
    parser.add_argument("--whole-puzzle", action="store_true", help="onnx: the whole ACT loop in one graph "
                        "(inputs, puzzle_identifiers, halt_early) instead of one step")
    parser.add_argument("--dialect", choices=("linalg-on-tensors", "torch"), default="linalg-on-tensors",
                        help="mlir: the output dialect (default linalg-on-tensors)")
    parser.add_argument("--bytecode", action="store_true", help="mlir: write MLIR bytecode (.mlirbc), ~2x smaller")
    parser.add_argument("--no-compile", action="store_true", help="mlir: skip the IREE compilation (.vmfb)")
    parser.add_argument("--seq-len", type=int, default=None, help="original checkpoints with RoPE: the sequence length")
    args = parser.parse_args(argv)

    if args.target == "mlx":
        reason = unavailable("mlx")
        if reason:
            parser.exit(2, f"hrm export mlx: {reason}\n")
        from hrm.ports.mlx.convert import convert
        out = args.out or _default_out(args.checkpoint) / "mlx"
        try:
            convert(args.checkpoint, out)
        except (OSError, ValueError) as e:     # CheckpointError is a ValueError
            parser.exit(2, f"hrm export mlx: {e}\n")
        print(f"wrote {out}/weights.safetensors and config.json (MLX names); load with "
              "hrm.ports.mlx.convert.load_mlx_model")
        return 0

    import torch

    from hrm.models.checkpoint import CheckpointError, load_checkpoint
    if args.target == "onnx":
        reason = unavailable("onnx")
    else:
        reason = ("module torch_mlir is not installed (pip install torch-mlir)" if _missing("torch_mlir")
                  else None if args.no_compile else unavailable("iree"))
    if reason:
        parser.exit(2, f"hrm export {args.target}: {reason}\n")
    try:
        head, config, _ = load_checkpoint(args.checkpoint, dtype=torch.float32,
                                          arch_overrides={"seq_len": args.seq_len} if args.seq_len else None)
    except CheckpointError as e:
        parser.exit(2, f"hrm export: {e}\n")
    inner = head.model.inner
    n_params = sum(p.numel() for p in head.parameters())
    print(f"model: {config.name}, {n_params:,} parameters, hidden {config.hidden_size}, "
          f"seq_len {config.seq_len}, halt_max_steps {config.halt_max_steps}")

    if args.target == "onnx":
        from hrm.export.onnx_export import OnnxStep, OnnxWholePuzzle, export_onnx
        kind = "whole_puzzle" if args.whole_puzzle else "step"
        out = args.out or _default_out(args.checkpoint) / ("model_whole.onnx" if args.whole_puzzle else "model.onnx")
        export_onnx(inner, out, kind=kind, source=str(args.checkpoint))
        print(f"wrote {out} ({kind} graph, opset 18, dynamic batch) and {out}.json")
        if kind == "step":
            print(_check_against_torch("it with onnxruntime", OnnxStep(out), head, config))
        else:
            from hrm.export.act import run_act
            from hrm.export.torch_step import TorchStep
            from hrm.export.verify import errors
            inputs, ids = _smoke_inputs(config)
            ours = OnnxWholePuzzle(out).run(inputs, ids)
            ref = run_act(TorchStep(inner), inputs, ids, config.halt_max_steps)
            print(f"ran it on 2 random puzzles: logits max rel error vs PyTorch {errors(ours.logits, ref.logits)[1]:.1e}")
        return 0

    from hrm.export.mlir_export import IreeStep, compile_iree, export_mlir
    suffix = ".mlirbc" if args.bytecode else ".mlir"
    out = args.out or _default_out(args.checkpoint) / f"model.{args.dialect}{suffix}"
    export_mlir(inner, out, dialect=args.dialect, source=str(args.checkpoint))
    print(f"wrote {out} ({args.dialect}, function 'step', dynamic batch) and {out}.json")
    if not args.no_compile:
        vmfb = compile_iree(out)
        print(f"compiled {vmfb} with IREE (llvm-cpu, this CPU)")
        print(_check_against_torch("it with the IREE runtime", IreeStep(vmfb), head, config))
    return 0


def _missing(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is None


def _parse_options(items: list[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    known = {"data_path", "backends", "puzzles", "batch_size", "threads", "halt_early", "json"}
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            parser.error(f"expected key=value with key in {sorted(known)}, got {item!r}")
        options[key] = value
    return options


def _sample(data_path: Path | None, config, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    if data_path is None:
        inputs, ids = _smoke_inputs(config, n)
        return inputs, ids, f"{n} random token sequences (pass data_path=... for real puzzles)"
    from hrm.data import PuzzleDataset
    dataset = PuzzleDataset(data_path, split="test", global_batch_size=min(n, 256), test_set_mode=True)
    inputs, ids = [], []
    for _, batch, effective in dataset:
        inputs.append(batch["inputs"][:effective].numpy())
        ids.append(batch["puzzle_identifiers"][:effective].numpy())
        if sum(len(i) for i in inputs) >= n:
            break
    inputs, ids = np.concatenate(inputs)[:n], np.concatenate(ids)[:n]
    if inputs.shape[1] != config.seq_len:
        raise ValueError(f"{data_path}: puzzles have {inputs.shape[1]} tokens, the model takes {config.seq_len}")
    return inputs.astype(np.int32), ids.astype(np.int32), f"{len(inputs)} puzzles of {data_path} (test split)"


def verify_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hrm verify", description="Run every backend next to PyTorch and print "
                                     "the parity table.", epilog=VERIFY_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("options", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    options = _parse_options(args.options, parser)
    backends = options.get("backends", ",".join(ALL)).split(",")
    for name in backends:
        if name not in ALL:
            parser.error(f"unknown backend {name!r}; known: {', '.join(ALL)}")

    import torch

    from hrm.export.verify import format_table, verify
    from hrm.models.checkpoint import CheckpointError, load_checkpoint
    try:
        head, config, _ = load_checkpoint(args.checkpoint, dtype=torch.float32)
        inputs, ids, what = _sample(Path(options["data_path"]) if "data_path" in options else None, config,
                                    int(options.get("puzzles", 200)))
    except (CheckpointError, ValueError, OSError) as e:
        parser.exit(2, f"hrm verify: {e}\n")
    halt_early = options.get("halt_early", "false").lower() in ("1", "true", "yes")
    threads = int(options["threads"]) if "threads" in options else None
    print(f"hrm verify {args.checkpoint}: {what}, {'early halting' if halt_early else 'eval protocol'} "
          f"({config.halt_max_steps} steps max), float32")
    with tempfile.TemporaryDirectory(prefix="hrm-verify-") as workdir:
        rows = verify(head, config, backends, inputs, ids, workdir, batch_size=int(options.get("batch_size", 64)),
                      threads=threads, halt_early=halt_early, source=str(args.checkpoint))
    print(format_table(rows))
    if "json" in options:
        from dataclasses import asdict
        Path(options["json"]).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    failed = [r.backend for r in rows if r.status == "ok" and r.backend != "torch" and not r.passed]
    errored = [r.backend for r in rows if r.status.startswith("error")]
    if failed or errored:
        print(f"FAIL: {', '.join(failed + errored)}", file=sys.stderr)
        return 1
    return 0
