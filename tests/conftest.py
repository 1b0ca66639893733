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
