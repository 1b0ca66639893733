"""`hrm bench train`: training speed of the real trainer, with model FLOPs utilisation and each part of a step.

    hrm bench train preset=demo                       # the demo's HRM on 6x6 Sudoku, batch 64
    hrm bench train preset=trm compile=true           # the demo recipe with TRM (trm_mlp, transformer: likewise)
    hrm bench train preset=27m dtype=bfloat16         # the released architecture at Sudoku size, batch 32
    hrm bench train preset=demo dtype=float32 autocast=bfloat16   # float32 state, bf16 matmuls
    hrm bench train preset=27m steps=5 json=out.json  # (--preset 27m --steps 5 works too)

It builds a small dataset of the preset's shape in a temporary folder, runs the trainer (`hrm.training`,
the same step as `hrm train`) for warm-up plus measured steps, and reports tokens/s, seconds per step
(median), peak memory, and MFU: the model FLOPs of a step (`hrm.flops`, counted the way the recurrence
runs) per second, divided by the matmul peak measured here in the matmuls' dtype (the autocast one, if
any) and thread count.
The parts of a step (the trainer's StepTimer: batch to device, forward, backward, optimiser, averaging and
metrics, host waits) are reported per step, and the Q-target forward inside the forward is measured
alone afterwards (one no-grad inner forward on the last batch, compiled when the run is).
NOTE: run benchmarks alone. A 2-thread torch job slows down up to 10x while another process holds a core.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hrm.cli_args import Command, Option

PRESETS = {
    # The demo's config (hrm.training.demo) on its own kind of data: 6x6 Sudoku, sequence 36 + 1.
    "demo": dict(box="2x3", batch=64, overrides=None),
    # The same recipe with the other architectures of the arena (configs/arch/*.yaml).
    "trm": dict(box="2x3", batch=64, overrides=None, arch="trm_demo"),
    "trm_mlp": dict(box="2x3", batch=64, overrides=None, arch="trm_demo_mlp"),
    "transformer": dict(box="2x3", batch=64, overrides=None, arch="transformer_demo"),
    # The released architecture (hidden 512, 4+4 layers, 8 heads, 16 ACT steps) at Sudoku size: 81 + 1.
    "27m": dict(box="3x3", batch=32, overrides=[]),
}
REPEATS = 5                                  # calls timed for the Q-target forward (median)


def matmul_peak_gflops(dtype: torch.dtype, device: torch.device, size: int = 2048, seconds: float = 2.0) -> float:
    """Sustained GFLOP/s of a square matmul: the peak the MFU is measured against."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 3:
        a @ b
        runs += 1
    sync()
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # Linux reports KiB


def _dataset(preset: str, folder: Path) -> Path:
    from hrm.data.sudoku import build_generated_dataset

    box = PRESETS[preset]["box"]
    blanks = (14, 24) if box == "2x3" else (40, 55)
    return build_generated_dataset(folder / "data", n_train=400, n_test=64, box=box, min_blanks=blanks[0],
                                   max_blanks=blanks[1], num_aug=1, seed=0, log=lambda m: None)


def q_target_seconds(trainer) -> float | None:
    """Seconds of one Q-target forward (a no-grad inner forward on the trainer's carry and batch), as the
    trainer's forward runs it (compiled or not, under its autocast); None where the policy has no Q target."""
    from hrm.compiling import maybe_compiled
    from hrm.training.trainer import StepTimer

    model = trainer.head.model
    if not (model.policy.q_target and model.config.halt_max_steps > 1) or trainer.state.carry is None:
        return None
    inner, carry = model.inner, trainer.state.carry
    forward = maybe_compiled(inner, getattr(trainer.forward, "compiled", False), " (bench: Q-target forward)")
    sync = StepTimer(trainer.device).synchronize
    times = []
    with torch.no_grad(), trainer.autocast():
        for i in range(2 + REPEATS):                  # two warm-up calls (the first compiles)
            start = time.perf_counter()
            forward(carry.inner_carry, carry.current_data)
            sync()
            if i >= 2:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_config(preset: str, folder: Path, overrides: list[str] = ()):
    """The TrainConfig a bench of `preset` trains with: its dataset built under `folder`, the demo's preset (or
    the 27M one's architecture defaults), long enough never to end, logging every step, then `overrides`."""
    from hrm.training.config import load_config, preset_path
    from hrm.training.demo import DEMO_PRESET

    spec = PRESETS[preset]
    data_path = _dataset(preset, folder)
    # The demo's preset without its compile choice: compile= decides here (default: the trainer's).
    base = preset_path(DEMO_PRESET) if spec["overrides"] is None else None
    settings = (["compile=auto"] if base else spec["overrides"]) + [
        f"data_path={data_path}", f"checkpoint_path={folder / 'run'}", f"global_batch_size={spec['batch']}",
        "epochs=1000", "eval_interval=1000", "data.eval_max_examples=0", "logging.log_interval=1",
        "logging.progress=false", "checkpoint_every_eval=false", "lr_warmup_steps=10"]
    if spec.get("arch"):
        settings.insert(0, f"arch={spec['arch']}")
    return load_config(base, settings + list(overrides))


def bench_train(preset: str, steps: int, warmup: int, device: str | None, dtype: str | None, compile_: bool | None,
                threads: int | None, autocast: str | None = None) -> dict:
    from hrm.flops import train_step_flops
    from hrm.training.trainer import StepTimer, Trainer

    if threads:
        torch.set_num_threads(threads)
    spec = PRESETS[preset]
    with tempfile.TemporaryDirectory(prefix="hrm-bench-") as tmp:
        overrides = [f"device={device}"] if device else []
        overrides += [f"dtype={dtype}"] if dtype else []
        overrides += [f"compile={str(compile_).lower()}"] if compile_ is not None else []
        overrides += [f"autocast={autocast}"] if autocast else []
        config = bench_config(preset, Path(tmp), overrides)

        times: list[float] = []
        last = [time.perf_counter()]

        def callback(event):
            if event.kind == "log":
                now = time.perf_counter()
                times.append(now - last[0])
                last[0] = now
                if len(times) == warmup:
                    trainer.timer.seconds.clear()          # the parts of the measured steps only
                if len(times) >= warmup + steps:
                    return False
            return None

        trainer = Trainer(config, callback)
        trainer.timer = StepTimer(trainer.device)
        try:
            last[0] = time.perf_counter()
            trainer.run()
            q_target = q_target_seconds(trainer)
        finally:
            trainer.close()
        measured = times[warmup:]
        parts = {part: 1000 * total / len(measured) for part, total in trainer.timer.seconds.items()}
        cfg = trainer.config.arch
        seconds = statistics.median(measured)
        flops = train_step_flops(cfg, spec["batch"])
        # The matmuls' dtype: the half type under autocast, else the forward dtype.
        peak = matmul_peak_gflops(trainer.autocast_dtype or trainer.dtype, trainer.device)
        tokens = spec["batch"] * (cfg.seq_len + cfg.puzzle_emb_len)
        return {
            "benchmark": "train", "preset": preset, "device": str(trainer.device),
            "arch": cfg.name, "dtype": str(trainer.dtype).removeprefix("torch."),
            "autocast": str(trainer.autocast_dtype).removeprefix("torch.") if trainer.autocast_dtype else "none",
            "compiled": trainer.forward is not trainer.head,
            "threads": torch.get_num_threads(), "batch": spec["batch"], "seq_len": cfg.seq_len + cfg.puzzle_emb_len,
            "parameters": sum(p.numel() for p in trainer.params), "steps_measured": len(measured),
            "seconds_per_step": seconds, "seconds_per_step_min": min(measured),
            "seconds_per_step_mean": statistics.fmean(measured),
            "tokens_per_second": tokens / seconds, "gflop_per_step": flops / 1e9,
            "achieved_gflops": flops / seconds / 1e9, "matmul_peak_gflops": peak,
            "mfu": flops / seconds / 1e9 / peak, "peak_memory_mb": peak_memory_mb(trainer.device),
            "parts_ms": parts, "q_target_forward_ms": None if q_target is None else 1000 * q_target,
            "torch": torch.__version__, "cpu_count": os.cpu_count(),
        }


def format_table(rows: list[dict]) -> str:
    header = ("preset", "device", "dtype", "autocast", "compiled", "threads", "batch", "s/step", "tokens/s",
              "GFLOP/step", "GFLOP/s", "peak GFLOP/s", "MFU", "peak MB")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        lines.append(" | ".join(str(x) for x in (
            r["preset"], r["device"], r["dtype"], r["autocast"], "yes" if r["compiled"] else "no", r["threads"], r["batch"],
            f"{r['seconds_per_step']:.3f}", f"{r['tokens_per_second']:,.0f}", f"{r['gflop_per_step']:.1f}",
            f"{r['achieved_gflops']:.1f}", f"{r['matmul_peak_gflops']:.1f}", f"{100 * r['mfu']:.0f}%",
            f"{r['peak_memory_mb']:,.0f}")))
    return "\n".join(lines)


def format_parts(result: dict) -> str:
    """The parts of a measured step, ms per step and share of their sum."""
    parts = result["parts_ms"]
    total = sum(parts.values())
    lines = ["part | ms/step | share", "--- | --- | ---"]
    for part, ms in parts.items():
        lines.append(f"{part} | {ms:.1f} | {100 * ms / total:.0f}%")
        if part == "forward" and result["q_target_forward_ms"] is not None:
            q = result["q_target_forward_ms"]
            lines.append(f"  of which the Q-target forward (measured alone) | {q:.1f} | {100 * q / total:.0f}%")
    lines.append(f"sum of the parts | {total:.1f} | (median step: {1000 * result['seconds_per_step']:.1f} ms)")
    return "\n".join(lines)


def spec() -> Command:
    train = Command("hrm bench train", "training speed and MFU of a preset", [
        Option("preset", default="demo", choices=tuple(sorted(PRESETS)), help="the model and batch to measure"),
        Option("steps", int, 20, help="measured steps (median reported)"),
        Option("warmup", int, 3, help="steps run before measuring"),
        Option("device", help="cpu | cuda | mps (default: hrm.device's choice)"),
        Option("dtype", help="forward dtype (default: the preset's, i.e. hrm.device's choice: bf16 on a CPU with bf16 matrix instructions)"),
        Option("compile", bool, help="true | false (default: on CUDA only)"),
        Option("autocast", help="none | auto | bfloat16 | float16: matmuls in a half type, the state in float32"),
        Option("threads", int, help="torch threads"),
        Option("json", Path, help="also write the results as JSON here"),
    ])
    return Command("hrm bench", __doc__.split("\n\n")[0], commands={"train": train})


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)
    args.compile_ = args.compile

    result = bench_train(args.preset, args.steps, args.warmup, args.device, args.dtype, args.compile_, args.threads,
                         args.autocast)
    print(format_table([result]))
    print()
    print(format_parts(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
