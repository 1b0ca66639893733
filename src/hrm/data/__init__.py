"""Puzzle datasets: the original's on-disk format, builders for Sudoku, mazes and ARC, and the loader.

    from hrm.data import PuzzleDataset, DatasetMetadata, load_metadata, dataset_hash

`PuzzleDataset` imports torch; it is loaded on first use, so `hrm data ...` and the builders do not.
"""
from __future__ import annotations

from typing import Any

from hrm.data.format import DatasetFormatError, DatasetMetadata, load_identifiers, load_metadata
from hrm.data.manifest import dataset_hash, read_manifest, verify_manifest

__all__ = ["PuzzleDataset", "TestBatch", "DatasetMetadata", "DatasetFormatError", "load_metadata",
           "load_identifiers", "dataset_hash", "read_manifest", "verify_manifest"]


def __getattr__(name: str) -> Any:
    if name in ("PuzzleDataset", "TestBatch"):
        from hrm.data import loader
        return getattr(loader, name)
    raise AttributeError(f"module 'hrm.data' has no attribute {name!r}")
