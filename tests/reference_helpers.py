"""Helpers shared by the tests: the reference fixtures the repo carries (tests/fixtures), where ../shared
lives (skip, or fail under CI, when it is missing: only the real datasets still need it), and the error
measure of the ports.

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
# Committed copies of ../shared/reference (recorded from the original code; see test_fixture_copies.py),
# so that a plain clone runs every fixture test.
FIXTURES = REPO / "tests" / "fixtures"
FIXTURE_FILES = ("hrm_act_v1_small.json", "hrm_act_v1_small.safetensors", "trm_small.json", "trm_small.safetensors")


def require_shared(relative: str) -> Path:
    """The path ../shared/<relative>; skip (or fail under CI=true) if it does not exist."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is missing: the shared materials (../shared beside the repo) are needed for this test"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def fixture_path(name: str) -> Path:
    """A committed fixture file. No skip: it is part of the repo, so a missing one is a broken checkout."""
    path = FIXTURES / name
    assert path.is_file(), f"{path} is missing: the repo's reference fixtures live in tests/fixtures"
    return path


@functools.cache
def load_fixture():
    from hrm.reference.hrm import Fixture
    return Fixture(fixture_path("hrm_act_v1_small.json"))


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
    from hrm.reference.hrm import ReferenceRun

    fixture = load_fixture()
    return save_weights(ReferenceRun(fixture).model(), fixture.config(), directory)
