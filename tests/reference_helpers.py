"""Helpers for the port and export tests: the reference fixture (../shared/reference) and the error measure."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np


@functools.cache
def _root_conftest():
    # NOTE: loaded by path under its own name: several test folders have a conftest.py, so
    # `from conftest import ...` may find another one.
    spec = importlib.util.spec_from_file_location("hrm_tests_root_conftest", Path(__file__).resolve().parent / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_shared(relative: str) -> Path:
    return _root_conftest().require_shared(relative)


@functools.cache
def load_fixture():
    from hrm.models.reference import Fixture
    return Fixture(require_shared("reference/hrm_act_v1_small.json"))


def rel_error(ours, ref) -> float:
    """max |ours − ref| / max |ref|, the measure of `hrm check-reference` and `hrm verify`."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))
