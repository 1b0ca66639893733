"""ONNX export with the dynamo exporter, and onnxruntime as an ACT backend.

Two graphs, float32, dynamic batch size, opset 18 (every operator used runs on onnxruntime's CPU and
onnxruntime-web's WebAssembly backends):

    step            *carry, inputs, puzzle_identifiers -> *new_carry, logits, q_halt, q_continue (the carry
                    the model declares: z_H, z_L for HRM; its names are in the metadata)
                    (the host drives the ACT loop: hrm.act_driver; the browser visualiser does the same)
    whole_puzzle    inputs, puzzle_identifiers, halt_early -> final and per-step outputs; the loop is a
                    `torch.while_loop`, exported as an ONNX Loop, so the graph holds one copy of the step
                    and halts early when asked to

NOTE: `torch.onnx.export(..., dynamo=True)`; the legacy TorchScript exporter silently mis-exports
data-dependent loops. The export's metadata (hrm.export.metadata) is stored in the model's
metadata_props under "hrm" and beside it as `<file>.json`.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hrm.act_driver import ACTResult, StepOutputs
from hrm.export.metadata import carry_init, describe, halt_rule, read_metadata, write_sidecar

OPSET = 18
# Protobuf files cannot exceed 2 GiB; beyond this the weights go to an external-data file beside the model.
EXTERNAL_DATA_BYTES = 1 << 30


def export_onnx(inner, path: str | Path, kind: str = "step", source: str | None = None,
                opset: int = OPSET, program=None) -> Path:
    """Export `inner` (any registered architecture's inner model) as the `kind` graph to `path`, atomically, with its metadata.

    `program` (the torch.export.ExportedProgram of the same module) may be passed to reuse a trace.
    """
    import torch

    from hrm.export.torch_step import OneStep, WholePuzzle, export_program

    if kind not in ("step", "whole_puzzle"):
        raise ValueError(f"kind must be 'step' or 'whole_puzzle', got {kind!r}")
    path = Path(path)
    module = OneStep(inner) if kind == "step" else WholePuzzle(inner)
    program = program if program is not None else export_program(module)
    onnx_program = torch.onnx.export(program, dynamo=True, opset_version=opset, optimize=True,
                                     input_names=module.input_names, output_names=module.output_names,
                                     verbose=False)
    metadata = describe(module.step.inner if kind == "whole_puzzle" else module.inner, kind, "onnx", source)
    _strip_trace_metadata(onnx_program.model)
    onnx_program.model.metadata_props["hrm"] = json.dumps(metadata)
    onnx_program.model.producer_name = "hrm"

    weight_bytes = sum(p.numel() * p.element_size() for p in module.state_dict().values())
    external = weight_bytes > EXTERNAL_DATA_BYTES
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        staged = Path(tmp) / path.name
        try:
            onnx_program.save(staged, external_data=external)
        except OSError as e:
            if e.filename is None:
                e.filename = str(path)       # a failed write names no file: name the export
            raise
        if external:   # the weights file is named after the model and referenced relative to it
            os.replace(Path(tmp) / (path.name + ".data"), path.parent / (path.name + ".data"))
        os.replace(staged, path)
    write_sidecar(path, metadata)
    return path


def _strip_trace_metadata(model) -> None:
    """Drop the exporter's per-node provenance (Python stack traces, FX names): ~9 kB a node, 5x the
    weights of the small fixture model, and useless to a browser that downloads the file."""
    import onnx_ir as ir

    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        node.metadata_props.clear()
        node.doc_string = None
        for value in node.outputs:
            value.metadata_props.clear()


def _session(path: str | Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _metadata(session, path) -> dict[str, Any]:
    props = session.get_modelmeta().custom_metadata_map
    if "hrm" not in props:
        raise ValueError(f"{path}: not an hrm ONNX export (no 'hrm' metadata entry)")
    return read_metadata(props["hrm"], str(path))


class OnnxStep:
    """An exported one-step graph run by onnxruntime: an `hrm.act_driver.StepFunction`."""

    name = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        self.session = _session(self.path, threads)
        self.metadata = _metadata(self.session, self.path)
        if self.metadata["kind"] != "step":
            raise ValueError(f"{path}: a {self.metadata['kind']} graph, not a one-step graph")
        self.carry_init = carry_init(self.metadata)
        self.carry_positions = self.metadata["carry_shape"][1]
        self.halt_max_steps = self.metadata["halt_max_steps"]
        self.halt_rule = halt_rule(self.metadata)
        self.inputs = [(i["name"], i["role"]) for i in self.metadata["io"]["inputs"]]

    def __call__(self, carry, inputs, puzzle_identifiers) -> StepOutputs:
        values = {name: np.asarray(value, np.float32) for name, value in carry.items()}
        values |= {"inputs": np.asarray(inputs, np.int32), "puzzle_identifiers": np.asarray(puzzle_identifiers, np.int32)}
        outputs = self.session.run(None, {name: values[role] for name, role in self.inputs})
        n = len(self.carry_init)
        return StepOutputs(dict(zip(self.carry_init, outputs[:n])), *outputs[n:])


class OnnxWholePuzzle:
    """An exported whole-puzzle graph run by onnxruntime; `run` returns what `run_act` returns."""

    name = "onnx-whole"

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        self.session = _session(self.path, threads)
        self.metadata = _metadata(self.session, self.path)
        if self.metadata["kind"] != "whole_puzzle":
            raise ValueError(f"{path}: a {self.metadata['kind']} graph, not a whole-puzzle graph")
        self.halt_max_steps = self.metadata["halt_max_steps"]
        self.halt_rule = halt_rule(self.metadata)

    def run(self, inputs: np.ndarray, puzzle_identifiers: np.ndarray, halt_early: bool = False) -> ACTResult:
        import time
        start = time.perf_counter()
        logits, q_halt, q_continue, steps, preds, step_qh, step_qc = self.session.run(None, {
            "inputs": np.asarray(inputs, np.int32), "puzzle_identifiers": np.asarray(puzzle_identifiers, np.int32),
            "halt_early": np.asarray(halt_early, dtype=np.bool_)})
        return ACTResult.from_steps(logits, q_halt, q_continue, steps, preds, step_qh, step_qc,
                                    self.halt_rule, seconds=time.perf_counter() - start)
