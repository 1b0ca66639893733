"""`manifest.json`: what built a dataset, and content hashes that identify it.

    {"format": "hrm-puzzle-dataset", "format_version": 1, "hrm_version": "0.1.0",
     "builder": "sudoku", "arguments": {...}, "seed": 0,
     "files": {"identifiers.json": {"sha256": ...},
               "train/all__inputs.npy": {"sha256": ..., "dtype": "|u1", "shape": [1001000, 81]}, ...},
     "dataset_hash": "<sha256 over the sorted (path, sha256) list>"}

An array's hash covers its dtype, shape and data, not the .npy header bytes, so the same array written by
numpy's np.save (the original builders) or streamed by hrm hashes the same. JSON files hash as bytes.
A dataset without a manifest (built by the original) still has a hash: `dataset_hash` computes it.
Checkpoints record this hash; evaluating against a different dataset is refused unless forced.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hrm.data.format import DatasetFormatError, npy_header, read_json

FORMAT_NAME = "hrm-puzzle-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 22
# verify="auto" hashes every array when the dataset is at most this big, and only the small files above it.
AUTO_FULL_VERIFY_BYTES = 1 << 30
QUICK_VERIFY_FILE_BYTES = 64 << 20


def dataset_files(root: Path) -> list[str]:
    """The hashed files, relative to root: identifiers.json, then each split's dataset.json and arrays."""
    files = ["identifiers.json"]
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and (p / "dataset.json").is_file()):
        files.append(f"{split_dir.name}/dataset.json")
        files += sorted(f"{split_dir.name}/{p.name}" for p in split_dir.glob("*.npy"))
    return files


def file_hash(path: Path) -> dict[str, Any]:
    """The manifest entry of one file."""
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found")
    digest = hashlib.sha256()
    if path.suffix != ".npy":
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    shape, dtype, fortran_order, offset = npy_header(path)
    digest.update(f"{dtype.str}|{list(shape)}|".encode())
    if fortran_order:  # rare: hash the C-order data so the hash does not depend on the layout on disk
        digest.update(np.ascontiguousarray(np.load(path)).tobytes())
    else:  # npy_header has checked that the file holds exactly the data its header describes
        with open(path, "rb") as f:
            f.seek(offset)
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return {"sha256": digest.hexdigest(), "dtype": dtype.str, "shape": list(shape)}


def combined_hash(files: dict[str, dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\t{files[name]['sha256']}\n".encode())
    return digest.hexdigest()


def compute_hashes(root: Path) -> dict[str, dict[str, Any]]:
    return {name: file_hash(root / name) for name in dataset_files(root)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def write_manifest(root: Path, builder: str, arguments: dict[str, Any], seed: int | None) -> dict[str, Any]:
    from hrm import __version__

    files = compute_hashes(root)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hrm_version": __version__,
        "builder": builder,
        "arguments": _jsonable(arguments),
        "seed": seed,
        "files": files,
        "dataset_hash": combined_hash(files),
    }
    with open(root / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    return manifest


def read_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DatasetFormatError(f"{path}: not an hrm dataset manifest (expected \"format\": \"{FORMAT_NAME}\")")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetFormatError(f"{path}: format_version {manifest.get('format_version')!r} is not supported "
                                 f"(this hrm reads version {FORMAT_VERSION})")
    for key in ("files", "dataset_hash"):
        if key not in manifest:
            raise DatasetFormatError(f"{path}: missing field '{key}'")
    # Checked here, once, so that every reader can index the entries without a KeyError or TypeError.
    if not isinstance(manifest["dataset_hash"], str):
        raise DatasetFormatError(f"{path}: field 'dataset_hash' must be a string")
    if not isinstance(manifest["files"], dict):
        raise DatasetFormatError(f"{path}: field 'files' must be an object of file name -> entry")
    for name, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise DatasetFormatError(f"{path}: files[{name!r}] needs a 'sha256' string")
        if name.endswith(".npy") and not (isinstance(entry.get("dtype"), str) and isinstance(entry.get("shape"), list)):
            raise DatasetFormatError(f"{path}: files[{name!r}] needs a 'dtype' string and a 'shape' list")
    if "arguments" in manifest and not isinstance(manifest["arguments"], (dict, type(None))):
        raise DatasetFormatError(f"{path}: field 'arguments' must be an object")
    return manifest


def verify_manifest(root: str | os.PathLike, verify: str = "auto") -> dict[str, Any] | None:
    """Check the dataset against its manifest; raise DatasetFormatError naming the first mismatch.

    verify: "full" hashes every file; "quick" checks the file list, every array's shape and dtype, and
    hashes only files up to 64 MiB (the indices, identifiers and metadata, and small arrays); "auto" is
    "full" up to 1 GiB of data and "quick" above; "none" skips the check. Returns the manifest, or None
    for a dataset without one (built by the original builders), which is accepted as it is.
    """
    root = Path(root)
    if verify == "none":
        return None
    if verify not in ("auto", "quick", "full"):
        raise ValueError(f"verify must be auto, quick, full or none, got {verify!r}")
    manifest = read_manifest(root)
    if manifest is None:
        return None
    where = root / MANIFEST
    present = set(dataset_files(root))
    listed = set(manifest["files"])
    if missing := sorted(listed - present):
        raise DatasetFormatError(f"{where}: lists {missing[0]}, which is missing from the dataset")
    if extra := sorted(present - listed):
        raise DatasetFormatError(f"{where}: {extra[0]} is in the dataset but not in the manifest")
    total = sum((root / name).stat().st_size for name in listed)
    full = verify == "full" or (verify == "auto" and total <= AUTO_FULL_VERIFY_BYTES)
    for name in sorted(listed):
        entry, path = manifest["files"][name], root / name
        if path.suffix == ".npy":
            shape, dtype, _, _ = npy_header(path)
            if list(shape) != entry.get("shape") or dtype.str != entry.get("dtype"):
                raise DatasetFormatError(f"{path}: array is {tuple(shape)} {dtype.str}, the manifest says "
                                         f"{tuple(entry.get('shape', ()))} {entry.get('dtype')}")
        if full or path.stat().st_size <= QUICK_VERIFY_FILE_BYTES:
            if file_hash(path)["sha256"] != entry["sha256"]:
                raise DatasetFormatError(f"{path}: content hash differs from the manifest (the file was changed or is corrupt)")
    if combined_hash(manifest["files"]) != manifest["dataset_hash"]:
        raise DatasetFormatError(f"{where}: dataset_hash does not match its file hashes")
    return manifest


def dataset_hash(data_path: str | os.PathLike) -> str:
    """The dataset's content hash: the manifest's, or computed from the files when there is no manifest."""
    root = Path(data_path)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: dataset folder not found")
    manifest = read_manifest(root)
    if manifest is not None:
        return manifest["dataset_hash"]
    return combined_hash(compute_hashes(root))
