"""Helpers shared by the tests: where ../shared lives (skip, or fail under CI, when it is missing), the
reference fixture, and the error measure of the ports.

NOTE: a plain module with a unique name, imported as `from reference_helpers import ...`: several test
folders have a conftest.py, so `from conftest import ...` can find the wrong one.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HRM_SHARED", REPO.parent / "shared"))


def require_shared(relative: str) -> Path:
    """The path ../shared/<relative>; skip (or fail under CI=true) if it does not exist."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is missing: the shared materials (../shared beside the repo) are needed for this test"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@functools.cache
def load_fixture():
    from hrm.models.reference import Fixture
    return Fixture(require_shared("reference/hrm_act_v1_small.json"))


def rel_error(ours, ref) -> float:
    """max |ours − ref| / max |ref|, the measure of `hrm check-reference` and `hrm verify`."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def require_module(name: str, reason: str | None = None):
    """Import an optional dependency; skip without it locally, but fail under CI=true, where `make test`
    has installed the dev extras and a missing package means a broken install, not an optional one."""
    if os.environ.get("CI", "").lower() == "true":
        import importlib
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=reason)


def save_fixture_weights(directory: Path) -> Path:
    """The fixture's model written in hrm's weights format (what `hrm export` reads)."""
    from hrm.models.checkpoint import save_weights
    from hrm.models.reference import ReferenceRun

    fixture = load_fixture()
    return save_weights(ReferenceRun(fixture).model(), fixture.config(), directory)
