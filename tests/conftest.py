"""Shared test fixtures. The helpers themselves live in reference_helpers.py (importable by name)."""
from __future__ import annotations

import os

import pytest
import torch

from reference_helpers import require_shared

# Two cores: keep each test process to the machine's threads, deterministically.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def shared():
    return require_shared


@pytest.fixture
def broken_compile(monkeypatch):
    """torch.compile as on a machine without a working C++ compiler: the compiled module stands in for the
    model in every attribute but fails when called, as inductor does at its first call."""
    class FailsWhenCalled:
        def __init__(self, module):
            self.module = module

        def __getattr__(self, name):
            return getattr(self.module, name)

        def __call__(self, *args, **kwargs):
            raise RuntimeError("inductor: no working C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: FailsWhenCalled(module))
