"""The fixtures in tests/fixtures are byte-identical copies of the recorded ones in ../shared/reference."""
from __future__ import annotations

import hashlib

import pytest

from reference_helpers import FIXTURE_FILES, FIXTURES, require_shared


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_committed_fixture_is_a_byte_identical_copy(name):
    original = require_shared(f"reference/{name}")         # skips without ../shared, fails under CI=true
    copy = FIXTURES / name
    assert copy.is_file(), f"{copy} is missing: copy {original} into tests/fixtures"
    assert copy.stat().st_size == original.stat().st_size, f"{copy} differs in size from {original}"
    assert digest(copy) == digest(original), f"{copy} differs from {original}: recopy it"


def test_the_repo_carries_no_other_fixture_files():
    """A new recording must be listed in FIXTURE_FILES so that the check above covers it."""
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(FIXTURE_FILES)
