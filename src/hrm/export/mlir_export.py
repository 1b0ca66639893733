"""MLIR export with torch-mlir, IREE compilation for the CPU, and IREE as an ACT backend.

    export_mlir     one ACT step (the graph of hrm.export.torch_step.OneStep, dynamic batch) through
                    `torch_mlir.fx.export_and_import` to the `torch` dialect or to `linalg-on-tensors`;
                    the weights are embedded as dense resources. Text (.mlir) or bytecode (.mlirbc).
    compile_iree    an MLIR file to an IREE VM flatbuffer (.vmfb) for the llvm-cpu target
    IreeStep        a .vmfb run by the IREE runtime: an `hrm.act_driver.StepFunction`

The exported function is `step(*carry, inputs, puzzle_identifiers) -> (*carry, logits, q_halt,
q_continue)`, the same signature as the ONNX step graph; the metadata JSON sits beside each file.
NOTE: the released torch-mlir wheels ship `torch_mlir.fx` only (no `torch_mlir.compile`, the API the
fork's generate_mlir.py imported, semantics §14.2).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm.act_driver import StepOutputs
from hrm.export.metadata import carry_init, describe, halt_rule, read_sidecar, write_sidecar
from hrm.files import atomic_write, atomic_write_bytes

DIALECTS = ("torch", "linalg-on-tensors")
FUNCTION = "step"


def export_mlir(inner, path: str | Path, dialect: str = "linalg-on-tensors", source: str | None = None,
                program=None) -> Path:
    """Export one ACT step of `inner` to MLIR in `dialect`; bytecode when `path` ends in .mlirbc.

    `program` (a torch.export.ExportedProgram of OneStep) may be passed to reuse one trace for both dialects.
    """
    from torch_mlir import fx

    from hrm.export.torch_step import OneStep, export_program

    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    path = Path(path)
    module = OneStep(inner)
    program = program if program is not None else export_program(module)
    mlir_module = fx.export_and_import(program, output_type=dialect, func_name=FUNCTION)
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            if path.suffix == ".mlirbc":
                mlir_module.operation.write_bytecode(f)
            else:
                # NOTE: large_elements_limit unset: the weights must be in the file, not elided.
                mlir_module.operation.print(file=f, binary=True)
    atomic_write(path, write)
    metadata = describe(module.inner, "step", "mlir", source)
    metadata["mlir"] = {"dialect": dialect, "function": FUNCTION}
    write_sidecar(path, metadata)
    return path


def compile_iree(mlir_path: str | Path, vmfb_path: str | Path | None = None, target: str = "llvm-cpu",
                 cpu: str = "host") -> Path:
    """Compile an exported MLIR file with IREE; the metadata is carried over beside the .vmfb."""
    import iree.compiler as ireec

    mlir_path = Path(mlir_path)
    metadata = read_sidecar(mlir_path)
    vmfb_path = Path(vmfb_path) if vmfb_path else mlir_path.with_suffix(".vmfb")
    input_type = "torch" if metadata["mlir"]["dialect"] == "torch" else "auto"
    extra = [f"--iree-llvmcpu-target-cpu={cpu}"] if target == "llvm-cpu" else []
    try:
        flatbuffer = ireec.compile_file(str(mlir_path), target_backends=[target], input_type=input_type,
                                        extra_args=extra)
    except ireec.CompilerToolError as e:
        # The tool's message holds the whole diagnostic; keep its head, which names the failing op.
        raise RuntimeError(f"IREE could not compile {mlir_path}: {str(e)[:4000]}") from e
    atomic_write_bytes(vmfb_path, flatbuffer)
    metadata["iree"] = {"target": target, "cpu": cpu}
    write_sidecar(vmfb_path, metadata)
    return vmfb_path


class IreeStep:
    """A compiled one-step module run by the IREE runtime on the CPU."""

    name = "iree"

    def __init__(self, vmfb_path: str | Path, threads: int | None = None):
        import iree.runtime as ireert

        self.path = Path(vmfb_path)
        self.metadata = read_sidecar(self.path)
        # local-sync runs on the calling thread; local-task spreads work over a pool of threads.
        config = ireert.Config("local-sync" if threads == 1 else "local-task")
        self.context = ireert.SystemContext(config=config)
        self.context.add_vm_module(ireert.VmModule.mmap(self.context.instance, str(self.path)))
        self.function = self.context.modules.module[self.metadata["mlir"]["function"]]
        self.carry_init = carry_init(self.metadata)
        self.carry_positions = self.metadata["carry_shape"][1]
        self.halt_max_steps = self.metadata["halt_max_steps"]
        self.halt_rule = halt_rule(self.metadata)

    def __call__(self, carry, inputs, puzzle_identifiers) -> StepOutputs:
        # The function's arguments are the carry in its declared order (the metadata's), then the puzzle.
        outputs = self.function(*(np.ascontiguousarray(carry[name], np.float32) for name in self.carry_init),
                                np.ascontiguousarray(inputs, np.int32),
                                np.ascontiguousarray(puzzle_identifiers, np.int32))
        outputs = [np.asarray(o.to_host()) for o in outputs]
        n = len(self.carry_init)
        return StepOutputs(dict(zip(self.carry_init, outputs[:n])), *outputs[n:])
