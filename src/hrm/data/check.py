"""`hrm data check`: validate a dataset's format and manifest, and summarise it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm.data.format import (BLANK_IDENTIFIER, SPLITS, DatasetFormatError, load_identifiers, load_metadata,
                             load_set_arrays, validate_set_structure)
from hrm.data.manifest import dataset_hash, read_manifest, verify_manifest

_SCAN_ROWS = 1 << 16


def _scan_values(array: np.ndarray, limit: int, allowed_extra: int | None, where: str) -> None:
    """Every token of a memory-mapped array must be below `limit`; scanned in chunks."""
    for first in range(0, len(array), _SCAN_ROWS):
        chunk = np.asarray(array[first:first + _SCAN_ROWS])
        bad = (chunk < 0) | (chunk >= limit)
        if allowed_extra is not None:
            bad &= chunk != allowed_extra
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DatasetFormatError(f"{where}: token {int(chunk[row, col])} at example {first + row}, position {col} "
                                     f"is outside 0..{limit - 1} (vocab_size)")


def check_dataset(path: str | Path, verify: str = "full") -> list[str]:
    """Validate everything (format, index tables, token ranges, identifiers, manifest hashes).
    Raise DatasetFormatError on the first problem; return the summary lines."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: dataset folder not found")
    identifiers = load_identifiers(root)
    if not identifiers or identifiers[0] != BLANK_IDENTIFIER:
        raise DatasetFormatError(f"{root / 'identifiers.json'}: entry 0 must be {BLANK_IDENTIFIER!r}")
    lines = [f"dataset {root}"]
    shapes = set()
    for split in SPLITS:
        metadata = load_metadata(root, split)
        where = root / split / "dataset.json"
        if metadata.num_puzzle_identifiers != len(identifiers):
            raise DatasetFormatError(f"{where}: num_puzzle_identifiers {metadata.num_puzzle_identifiers}, "
                                     f"identifiers.json has {len(identifiers)} names")
        shapes.add((metadata.seq_len, metadata.vocab_size))
        examples = puzzles = groups = 0
        for set_name in metadata.sets:
            arrays = load_set_arrays(root, split, set_name)
            set_where = str(root / split / set_name)
            validate_set_structure(arrays, metadata, set_where)
            _scan_values(arrays["inputs"], metadata.vocab_size, None, f"{set_where}__inputs.npy")
            _scan_values(arrays["labels"], metadata.vocab_size, metadata.ignore_label_id, f"{set_where}__labels.npy")
            examples += len(arrays["inputs"])
            puzzles += len(arrays["puzzle_identifiers"])
            groups += len(arrays["group_indices"]) - 1
        if groups != metadata.total_groups:
            raise DatasetFormatError(f"{where}: total_groups {metadata.total_groups}, the group tables hold {groups}")
        if puzzles and abs(metadata.mean_puzzle_examples - examples / puzzles) > 1e-6 * max(1.0, examples / puzzles):
            raise DatasetFormatError(f"{where}: mean_puzzle_examples {metadata.mean_puzzle_examples}, "
                                     f"the data has {examples / puzzles}")
        lines.append(f"  {split:<5}  {groups:>9,} groups  {puzzles:>11,} puzzles  {examples:>11,} examples  "
                     f"(mean {examples / max(puzzles, 1):.3f} per puzzle)  seq_len {metadata.seq_len}  "
                     f"vocab {metadata.vocab_size}  sets {','.join(metadata.sets)}")
    if len(shapes) > 1:
        raise DatasetFormatError(f"{root}: train and test disagree on seq_len / vocab_size: {sorted(shapes)}")
    lines.append(f"  identifiers {len(identifiers):,}")
    manifest = verify_manifest(root, verify)
    if manifest is None:
        lines.append("  manifest: none (a dataset built by the original builders); content hash computed")
    else:
        lines.append(f"  manifest: builder {manifest.get('builder')}, seed {manifest.get('seed')}, "
                     f"hrm {manifest.get('hrm_version')}, {len(manifest['files'])} files "
                     f"{'verified' if verify == 'full' else 'checked (' + verify + ')'}")
        arguments = manifest.get("arguments") or {}
        if arguments:
            lines.append("  arguments: " + " ".join(f"{k}={v}" for k, v in arguments.items()))
    lines.append(f"  dataset_hash {dataset_hash(root)}")
    return lines


def builder_of(path: str | Path) -> str | None:
    manifest = read_manifest(path)
    return manifest.get("builder") if manifest else None
