"""Where a training step's time goes, by kind of kernel: the real trainer's step under torch.profiler.

    python benchmarks/profile_step.py [--preset demo] [--steps 10] [key=value ...]
    python benchmarks/profile_step.py --preset demo compile=true
    python benchmarks/profile_step.py --preset 27m dtype=bfloat16 compile=true --steps 3

It builds the preset's dataset and trainer as `hrm bench train` does, runs warm-up steps, then profiles
`--steps` steps on the CPU and sums the operators' own time into kinds:

    matmul         aten::mm, addmm, bmm, linear (MKL / oneDNN)
    attention      the fused attention kernels (scaled_dot_product_*, forward and backward)
    fused          the compiled graphs' own C++ kernels (inductor's elementwise and reduction loops)
    other          everything else (copies, fills, allocations, the eager operators of an eager run)

and prints ms per step and the share of each, the optimisers' steps apart (their operators are counted in
the kinds above), and the largest operators, grouped by input shape. It also counts the matmuls' FLOPs from
their input shapes and gives their rate in the step against a square matmul's (`hrm bench`'s peak), and the
time they would take at that peak: the floor of a step whose other kernels cost nothing.
NOTE: profiling adds a little time to every operator; compare kinds within a run, and take speed itself
from `hrm bench train`. Run it alone (a 2-thread torch job slows down up to 10x while another holds a core).
"""
import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

from hrm.bench import PRESETS

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "mkldnn::", "aten::_mkl")
ATTENTION = ("aten::_scaled_dot_product", "aten::scaled_dot_product")
OPTIMIZER = "Optimizer.step"
GEMMS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def matmul_flops(name: str, shapes: list) -> int:
    """2·M·K·N (times the batch for bmm) from a recorded GEMM's input shapes; 0 for anything else."""
    first = 1 if name.startswith(("aten::addmm", "aten::baddbmm")) else 0
    if not name.startswith(GEMMS) or len(shapes) < first + 2:
        return 0
    a, b = shapes[first], shapes[first + 1]
    if len(a) < 2 or len(b) < 2:
        return 0
    batch = a[0] if len(a) == 3 else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def kind(name: str) -> str:
    if name.startswith(MATMUL):
        return "matmul"
    if name.startswith(ATTENTION):
        return "attention"
    if "cpp_fused" in name or name.startswith("## Call CompiledFxGraph"):
        return "fused"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--top", type=int, default=12, help="operators listed")
    parser.add_argument("overrides", nargs="*", help="key=value training overrides (dtype=, compile=, autocast=)")
    args = parser.parse_intermixed_args()

    import torch._inductor.config as inductor_config
    from torch.profiler import ProfilerActivity, profile

    from hrm.bench import bench_config, matmul_peak_gflops
    from hrm.training.trainer import Trainer

    inductor_config.cpp.enable_kernel_profile = True     # each compiled C++ kernel as its own profiler event
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="hrm-profile-") as tmp:
        trainer = Trainer(bench_config(args.preset, Path(tmp), args.overrides))
        try:
            batches = iter(trainer.train_data)

            def step():
                _, batch, _ = next(batches)
                trainer.train_step(batch)

            for _ in range(args.warmup):
                step()
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                for _ in range(args.steps):
                    step()
            summary = trainer.device_summary()
            matmul_dtype = trainer.autocast_dtype or trainer.dtype
            peak = matmul_peak_gflops(matmul_dtype, trainer.device)
        finally:
            trainer.close()

    events = prof.key_averages(group_by_input_shape=True)
    per_kind: dict[str, float] = defaultdict(float)
    optimizer_ms = 0.0
    gemm_flops = 0
    for e in events:
        gemm_flops += matmul_flops(e.key, e.input_shapes) * e.count // args.steps
        if e.key.startswith(OPTIMIZER):
            optimizer_ms += e.cpu_time_total / 1e3 / args.steps        # its operators included
        per_kind[kind(e.key)] += e.self_cpu_time_total / 1e3 / args.steps
    total = sum(per_kind.values())
    print(f"{args.preset} {' '.join(args.overrides)}: {summary}, {torch.get_num_threads()} threads, "
          f"{args.steps} profiled steps")
    print("kind | ms/step | share\n--- | ---: | ---:")
    for name in ("matmul", "attention", "fused", "other"):
        print(f"{name} | {per_kind[name]:.1f} | {per_kind[name] / total:.0%}")
    print(f"total | {total:.1f} | (the optimisers' steps, their operators in the kinds above: {optimizer_ms:.1f})")
    rate = gemm_flops / (per_kind["matmul"] / 1e3) / 1e9 if per_kind["matmul"] else 0.0
    print(f"matmuls: {gemm_flops / 1e9:.2f} GFLOP/step at {rate:.0f} GFLOP/s in the step; a {peak:.0f} GFLOP/s "
          f"square matmul ({matmul_dtype}) would take {gemm_flops / peak / 1e6:.1f} ms")
    print()
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
