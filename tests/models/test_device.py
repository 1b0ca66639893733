from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from hrm import device


def test_cpu_by_default_here(monkeypatch):
    monkeypatch.delenv("HRM_DEVICE", raising=False)
    monkeypatch.delenv("HRM_DTYPE", raising=False)
    choice = device.choose()
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert choice.device.type == "cpu"
        expected = torch.bfloat16 if device.cpu_has_native_bf16() else torch.float32
        assert choice.dtype == expected
    assert "device=" in choice.describe() and "(" in choice.describe()


def test_overrides(monkeypatch):
    monkeypatch.setenv("HRM_DEVICE", "cpu")
    monkeypatch.setenv("HRM_DTYPE", "bfloat16")
    choice = device.choose()
    assert (choice.device.type, choice.dtype) == ("cpu", torch.bfloat16)
    assert "HRM_DTYPE" in choice.reason
    assert device.choose("cpu", "float32").dtype == torch.float32


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        device.choose("cpu", "fp8")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            device.choose("cuda")


def test_import_and_cpu_forward_without_cuda_only_packages():
    """`import hrm` and a forward pass work when flash-attn and adam-atan2 cannot be imported."""
    code = """
import sys
sys.modules['flash_attn'] = None; sys.modules['flash_attn_interface'] = None; sys.modules['adam_atan2'] = None
import torch, hrm
from hrm.models import HRMConfig, build_model
cfg = HRMConfig(seq_len=9, vocab_size=5, num_puzzle_identifiers=2, batch_size=2, hidden_size=32, num_heads=2,
                H_layers=1, L_layers=1, puzzle_emb_ndim=32, halt_max_steps=2)
head = build_model(cfg).eval()
batch = dict(inputs=torch.ones(2, 9, dtype=torch.int32), labels=torch.ones(2, 9, dtype=torch.int32),
             puzzle_identifiers=torch.zeros(2, dtype=torch.int32))
carry = head.initial_carry(batch)
carry, loss, metrics, out, done = head(carry, batch, return_keys=('logits',))
assert out['logits'].shape == (2, 9, 5) and torch.isfinite(loss)
import hrm.models.layers as L; assert L.flash_attn_func is None
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_checkpoint_is_evaluated_in_the_dtype_it_was_trained_in(monkeypatch):
    import hrm.device as device

    cpu = torch.device("cpu")
    monkeypatch.delenv("HRM_DTYPE", raising=False)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.pick_dtype(cpu)[0] == torch.bfloat16                        # no checkpoint: the CPU's default
    assert device.pick_dtype(cpu, trained="float32") == (torch.float32, "the checkpoint's training dtype float32")
    assert device.pick_dtype(cpu, trained="bfloat16")[0] == torch.bfloat16
    assert device.pick_dtype(cpu, "bfloat16", trained="float32")[0] == torch.bfloat16   # asked for: obeyed
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    dtype, reason = device.pick_dtype(cpu, trained="bfloat16")
    assert dtype == torch.float32 and reason.startswith("trained in bfloat16, which this cpu does not run natively")


def test_autocast_keeps_the_state_in_float32_and_auto_takes_bf16_only_where_native(monkeypatch):
    import hrm.device as device

    cpu, f32 = torch.device("cpu"), torch.float32
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.pick_autocast(cpu, f32, "auto")[0] == torch.bfloat16
    assert device.pick_autocast(cpu, f32, "none") == (None, "no autocast")
    assert device.pick_autocast(cpu, torch.bfloat16, "auto")[0] is None           # already a half type
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert device.pick_autocast(cpu, f32, "auto")[0] is None
    assert device.pick_autocast(cpu, f32, "bfloat16")[0] == torch.bfloat16         # asked for: obeyed
    with pytest.raises(device.DeviceError, match="autocast=bfloat16 needs dtype=float32"):
        device.pick_autocast(cpu, torch.bfloat16, "bfloat16")
    with pytest.raises(device.DeviceError, match="unknown value 'bf16'"):
        device.pick_autocast(cpu, f32, "bf16")
