"""The released 27M architecture (hidden 512, 4+4 layers, Sudoku shapes) exports to ONNX and to MLIR,
and both exports run (one ACT step at batch 1, next to PyTorch). Several minutes on 2 cores."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_helpers import rel_error, require_module

require_module("onnxruntime", reason="onnxruntime is not installed (pip install 'hrm[ports]')")
require_module("torch_mlir", reason="torch-mlir is not installed (pip install 'hrm[ports]')")
require_module("iree.compiler", reason="iree-base-compiler is not installed (pip install 'hrm[ports]')")


@pytest.mark.slow
def test_released_architecture_exports_to_onnx_and_mlir_and_runs(tmp_path):
    from hrm.act_driver import initial_carry
    from hrm.export.mlir_export import IreeStep, compile_iree, export_mlir
    from hrm.export.onnx_export import OnnxStep, export_onnx
    from hrm.export.torch_step import OneStep, TorchStep, export_program
    from hrm.models import HRMConfig, build_model

    torch.manual_seed(0)
    config = HRMConfig(seq_len=81, vocab_size=11, num_puzzle_identifiers=1)
    head = build_model(config, torch.float32).eval()
    assert sum(p.numel() for p in head.parameters()) == 27_275_266          # semantics §2.1
    inner = head.model.inner
    with torch.no_grad():     # a non-zero Q head, so that q_halt is checked too
        inner.q_head.weight.normal_(0, 0.05)
    program = export_program(OneStep(inner))   # one trace for both routes

    reference = TorchStep(inner)
    carry = initial_carry(reference, 1)
    inputs = np.random.default_rng(0).integers(1, 11, size=(1, 81), dtype=np.int32)
    ids = np.zeros(1, dtype=np.int32)
    expected = reference(carry, inputs, ids)

    onnx_path = export_onnx(inner, tmp_path / "hrm27m.onnx", program=program)
    mlir_path = export_mlir(inner, tmp_path / "hrm27m.mlirbc", program=program)
    vmfb = compile_iree(mlir_path)
    for step in (OnnxStep(onnx_path), IreeStep(vmfb)):
        out = step(carry, inputs, ids)
        assert rel_error(out.logits, expected.logits) < 1e-4, step.name
        assert rel_error(out.carry["z_H"], expected.carry["z_H"]) < 1e-4, step.name
        assert rel_error(out.q_halt, expected.q_halt) < 1e-4, step.name
