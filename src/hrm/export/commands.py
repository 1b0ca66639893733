"""`hrm export onnx|mlir|mlx CHECKPOINT [key=value ...]` and `hrm verify CHECKPOINT [key=value ...]`.

    hrm export onnx runs/x out=model.onnx whole_puzzle=true      (--out model.onnx --whole-puzzle works too)
    hrm verify runs/x backends=numpy,onnx puzzles=64
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from hrm.cli_args import Command, Option
from hrm.export.backends import ALL, unavailable


def _default_out(checkpoint: Path) -> Path:
    return (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "export"


def _smoke_inputs(config, batch_size: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = rng.integers(1, config.vocab_size, size=(batch_size, config.seq_len), dtype=np.int32)
    return inputs, np.zeros(batch_size, dtype=np.int32)


def _check_against_torch(name: str, step, head, config) -> str:
    """Run the export for one ACT step next to PyTorch: proof that it runs, and how close it is."""
    from hrm.act_driver import run_act
    from hrm.export.torch_step import TorchStep
    from hrm.export.verify import errors

    inputs, ids = _smoke_inputs(config)
    rule = config.halting_policy.rule
    ours = run_act(step, inputs, ids, config.halt_max_steps, halt_rule=rule)
    ref = run_act(TorchStep(head.model.inner), inputs, ids, config.halt_max_steps, halt_rule=rule)
    _, rel = errors(ours.logits, ref.logits)
    return f"ran {name} on 2 random puzzles x {config.halt_max_steps} steps: logits max rel error vs PyTorch {rel:.1e}"


def export_dtype_note(checkpoint, target: str) -> str:
    """The dtype line of an export. NOTE: exports are float32 whatever the run trained in: the runtimes they
    target (onnxruntime's and IREE's CPU kernels, the browser's WebAssembly) have no bfloat16 matmuls; the
    line says so when the run trained in another dtype, since its answers can then differ slightly from
    `hrm eval`'s (`hrm verify` measures by how much)."""
    from hrm.models.checkpoint import trained_dtype

    trained = trained_dtype(checkpoint)
    if trained in (None, "float32"):
        return "dtype: float32" + (" (as trained)" if trained else "")
    return (f"dtype: float32, not {trained} as the run trained: {target} runtimes have no {trained} kernels on "
            f"the CPU; hrm verify shows how far the float32 export is from the {trained} model")


def export_spec() -> Command:
    def common(name: str, default_out: str) -> list[Option]:
        return [Option("checkpoint", Path, positional=True, required=True,
                       help="hrm checkpoint directory, or an original step_N file"),
                Option("out", Path, help=f"output {'directory' if name == 'mlx' else 'file'} "
                       f"(default: CHECKPOINT/export/{default_out})")]

    seq_len = Option("seq_len", int, help="original checkpoints with RoPE: the sequence length")
    onnx = Command("hrm export onnx", "ONNX (opset 18, dynamic batch), run once next to PyTorch with onnxruntime", [
        *common("onnx", "model.onnx, or model_whole.onnx"),
        Option("whole_puzzle", bool, False, help="the whole ACT loop in one graph (inputs, puzzle_identifiers, "
               "halt_early) instead of one step"),
        seq_len,
    ])
    mlir = Command("hrm export mlir", "MLIR of one ACT step, and an IREE module compiled for this CPU", [
        *common("mlir", "model.DIALECT.mlir"),
        Option("dialect", default="linalg-on-tensors", choices=("linalg-on-tensors", "torch"), help="the output dialect"),
        Option("bytecode", bool, False, help="write MLIR bytecode (.mlirbc), ~2x smaller"),
        Option("no_compile", bool, False, help="skip the IREE compilation (.vmfb)"),
        seq_len,
    ])
    mlx = Command("hrm export mlx", "MLX weights (safetensors with MLX names) and config.json", common("mlx", "mlx/"))
    return Command("hrm export", "Export a checkpoint to ONNX, MLIR (and an IREE module) or MLX; each export is run "
                   "once next to PyTorch.", commands={"onnx": onnx, "mlir": mlir, "mlx": mlx})


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def export_main(argv: list[str]) -> int:
    args = export_spec().parse_or_exit(argv)
    args.target = args.command
    seq_len = getattr(args, "seq_len", None)

    if args.target == "mlx":
        reason = unavailable("mlx")
        if reason:
            return _fail(f"hrm export mlx: {reason}")
        from hrm.ports.mlx.convert import convert
        out = args.out or _default_out(args.checkpoint) / "mlx"
        try:
            convert(args.checkpoint, out)
        except (OSError, ValueError) as e:     # CheckpointError is a ValueError
            return _fail(f"hrm export mlx: {e}")
        print(f"wrote {out}/weights.safetensors and config.json (MLX names); load with "
              "hrm.ports.mlx.convert.load_mlx_model")
        return 0

    from hrm.runs import RunError, open_run
    if args.target == "onnx":
        reason = unavailable("onnx")
    else:
        reason = ("module torch_mlir is not installed (pip install torch-mlir)" if _missing("torch_mlir")
                  else None if args.no_compile else unavailable("iree"))
    if reason:
        return _fail(f"hrm export {args.target}: {reason}")
    try:
        # float32 on the CPU: the exports' parity reference, whatever dtype the run trained in.
        run = open_run(args.checkpoint, device="cpu", dtype="float32",
                       arch_overrides={"seq_len": seq_len} if seq_len else None)
    except RunError as e:
        return _fail(f"hrm export: {e}")
    head, config = run.head, run.arch
    inner = head.model.inner
    n_params = sum(p.numel() for p in head.parameters())
    print(f"model: {config.name}, {n_params:,} parameters, hidden {config.hidden_size}, "
          f"seq_len {config.seq_len}, halt_max_steps {config.halt_max_steps}")
    print(export_dtype_note(args.checkpoint, args.target))

    if args.target == "onnx":
        from hrm.export.onnx_export import OnnxStep, OnnxWholePuzzle, export_onnx
        kind = "whole_puzzle" if args.whole_puzzle else "step"
        out = args.out or _default_out(args.checkpoint) / ("model_whole.onnx" if args.whole_puzzle else "model.onnx")
        export_onnx(inner, out, kind=kind, source=str(args.checkpoint))
        print(f"wrote {out} ({kind} graph, opset 18, dynamic batch) and {out}.json")
        if kind == "step":
            print(_check_against_torch("it with onnxruntime", OnnxStep(out), head, config))
        else:
            from hrm.act_driver import run_act
            from hrm.export.torch_step import TorchStep
            from hrm.export.verify import errors
            inputs, ids = _smoke_inputs(config)
            ours = OnnxWholePuzzle(out).run(inputs, ids)
            ref = run_act(TorchStep(inner), inputs, ids, config.halt_max_steps, halt_rule=config.halting_policy.rule)
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


def verify_spec() -> Command:
    return Command("hrm verify", "Run every backend next to PyTorch and print the parity table.", [
        Option("checkpoint", Path, positional=True, required=True, help="hrm checkpoint directory, or an original step_N file"),
        Option("data_path", Path, help="puzzles from this dataset's test split (default: random token sequences)"),
        Option("backends", many=True, default=list(ALL), help="which backends, comma-separated (all by default)"),
        Option("puzzles", int, 200, help="how many puzzles"),
        Option("batch_size", int, 64, help="puzzles per call"),
        Option("threads", int, help="CPU threads per backend (default: each backend's own)"),
        Option("halt_early", bool, False, help="stop each row where its Q head says halt (false: the eval protocol)"),
        Option("json", Path, help="also write the table as JSON"),
    ])


def verify_main(argv: list[str]) -> int:
    args = verify_spec().parse_or_exit(argv)
    backends = args.backends
    for name in backends:
        if name not in ALL:
            print(f"hrm verify: unknown backend {name!r}; known: {', '.join(ALL)}", file=sys.stderr)
            raise SystemExit(2)

    from hrm.export.verify import format_table, verify
    from hrm.runs import open_run
    try:
        run = open_run(args.checkpoint, device="cpu", dtype="float32", data_path=args.data_path)
        head, config = run.head, run.arch
        inputs, ids, what = _sample(args.data_path, config, args.puzzles)
    except (ValueError, OSError) as e:          # RunError is a ValueError
        return _fail(f"hrm verify: {e}")
    halt_early, threads = args.halt_early, args.threads
    print(f"hrm verify {args.checkpoint}: {what}, {'early halting' if halt_early else 'eval protocol'} "
          f"({config.halt_max_steps} steps max), float32")
    with tempfile.TemporaryDirectory(prefix="hrm-verify-") as workdir:
        rows = verify(head, config, backends, inputs, ids, workdir, batch_size=args.batch_size,
                      threads=threads, halt_early=halt_early, source=str(args.checkpoint))
    print(format_table(rows))
    if args.json is not None:
        from dataclasses import asdict
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    failed = [r.backend for r in rows if r.status == "ok" and r.backend != "torch" and not r.passed]
    errored = [r.backend for r in rows if r.status.startswith("error")]
    if failed or errored:
        print(f"FAIL: {', '.join(failed + errored)}", file=sys.stderr)
        return 1
    return 0
