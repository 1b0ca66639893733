"""Shared test fixtures: where ../shared lives, and the skip-or-fail rule for it.

Tests that need the read-only materials in ../shared skip with a clear message when they are absent,
except under CI (CI=true), where a missing ../shared is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HRM_SHARED", REPO.parent / "shared"))

# Two cores: keep each test process to the machine's threads, deterministically.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def require_shared(relative: str) -> Path:
    """The path ../shared/<relative>; skip (or fail under CI) if it does not exist."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is missing: the shared materials (../shared beside the repo) are needed for this test"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared():
    return require_shared
