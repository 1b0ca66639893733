"""The puzzle loader: the original's batching (semantics §10), seeded from the config alone, resumable.

    ds = PuzzleDataset(data_path, split="train", global_batch_size=768, rank=0, world_size=1, seed=0,
                       epochs_per_iter=1, test_set_mode=False)
    for set_name, batch, global_effective_batch_size in ds:    # one pass = one iteration
        ...

Training (test_set_mode=False): iteration n uses rng = Generator(Philox(seed + n)); the group order is
`epochs_per_iter` concatenated permutations of the groups; each visit of a group picks one puzzle of it
uniformly; a batch takes whole puzzles until it holds global_batch_size examples, the last puzzle being cut
to fit (its examples chosen at random); a short final batch is dropped. Every rank computes the global
batch and keeps its slice. Test (test_set_mode=True): the examples in order, in chunks of
global_batch_size, each rank's slice padded to the local batch size; the third element is the real size.

NOTE: deviation. The original draws which examples of a cut puzzle enter a batch with numpy's global RNG
(np.random.choice in the loader worker), so its batches are not reproducible; here every draw comes from
the per-iteration generator, so batches depend only on (seed, iteration) and a resumed loader repeats them.
Puzzles that fit whole enter the batch in their stored example order (the original shuffles them within
the batch, which changes nothing the loss sees).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from hrm.data.format import (IGNORE_LABEL_ID, DatasetFormatError, DatasetMetadata, load_metadata, load_set_arrays,
                             validate_set_structure)
from hrm.data.manifest import verify_manifest

_verified: set[tuple[str, float]] = set()


def _verify_once(data_path: Path, verify: str) -> None:
    """Verify a dataset's manifest once per process (the train and test loaders share the check)."""
    manifest = data_path / "manifest.json"
    key = (str(data_path.resolve()) + "|" + verify, manifest.stat().st_mtime if manifest.exists() else 0.0)
    if key not in _verified:
        verify_manifest(data_path, verify)
        _verified.add(key)


@dataclass
class TestBatch:
    set_name: str
    batch: dict[str, torch.Tensor]
    global_size: int       # real (unpadded) examples in the global batch
    local_size: int        # real examples in this rank's slice; rows past it are padding
    first_example: int     # index of this rank's first row in the split's example arrays


def sample_train_batches(rng: np.random.Generator, group_order: np.ndarray, puzzle_indices: np.ndarray,
                         group_indices: np.ndarray, global_batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (example indices, puzzle index per example) of each full batch of one iteration (semantics §10.1)."""
    pi = puzzle_indices.astype(np.int64)
    gi = group_indices.astype(np.int32)
    # int32 keeps an iteration of many epochs over millions of groups (the original's own group order
    # is as long) within a few hundred MB.
    puzzle = rng.integers(gi[group_order], gi[group_order + 1], dtype=np.int32)   # one puzzle per group visit
    sizes = (pi[puzzle + 1] - pi[puzzle]).astype(np.int32)
    cumulative = np.cumsum(sizes, dtype=np.int64)
    start, visits = 0, len(group_order)
    if visits == 0:
        return
    while start < visits:
        base = cumulative[start - 1] if start else 0
        if cumulative[-1] - base < global_batch_size:
            return                                                        # drop the short last batch
        end = int(np.searchsorted(cumulative, base + global_batch_size, side="right"))  # visits [start, end) fit whole
        whole = puzzle[start:end]
        whole_sizes = sizes[start:end]
        offsets = np.repeat(pi[whole] - (np.cumsum(whole_sizes) - whole_sizes), whole_sizes)
        examples = [offsets + np.arange(int(whole_sizes.sum()))]
        owners = [np.repeat(whole, whole_sizes)]
        room = global_batch_size - int(whole_sizes.sum())
        if room > 0:                                                      # cut the next puzzle to fit
            cut = puzzle[end]
            examples.append(pi[cut] + np.sort(rng.choice(int(sizes[end]), room, replace=False)))
            owners.append(np.full(room, cut))
            end += 1
        yield np.concatenate(examples), np.concatenate(owners)
        start = end


class PuzzleDataset:
    """Iterable over (set_name, batch, global_effective_batch_size); see the module docstring."""

    def __init__(self, data_path: str | os.PathLike, split: str = "train", global_batch_size: int = 768,
                 rank: int = 0, world_size: int = 1, seed: int = 0, epochs_per_iter: int = 1,
                 test_set_mode: bool = False, verify: str = "auto"):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if global_batch_size < 1 or global_batch_size % world_size:
            raise ValueError(f"global_batch_size {global_batch_size} must be a positive multiple of world_size {world_size}")
        if epochs_per_iter < 1:
            raise ValueError("epochs_per_iter must be at least 1")
        self.data_path = Path(data_path)
        if not self.data_path.is_dir():
            raise DatasetFormatError(f"{self.data_path}: dataset folder not found")
        self.split = split
        self.global_batch_size, self.rank, self.world_size = global_batch_size, rank, world_size
        self.local_batch_size = global_batch_size // world_size
        self.seed, self.epochs_per_iter, self.test_set_mode = seed, epochs_per_iter, test_set_mode
        self.metadata: DatasetMetadata = load_metadata(self.data_path, split)
        _verify_once(self.data_path, verify)
        self._data: dict[str, dict[str, np.ndarray]] | None = None
        # Resume state: iterations started, the set being walked, batches of it already yielded.
        self._iters = 0
        self._set_index = 0
        self._batches_yielded = 0
        self._in_progress = False

    # -- data ---------------------------------------------------------------------------------------
    def _lazy_load(self) -> dict[str, dict[str, np.ndarray]]:
        if self._data is None:
            data = {}
            for set_name in self.metadata.sets:
                arrays = load_set_arrays(self.data_path, self.split, set_name)
                validate_set_structure(arrays, self.metadata, str(self.data_path / self.split / set_name))
                data[set_name] = arrays
            groups = sum(len(a["group_indices"]) - 1 for a in data.values())
            if groups != self.metadata.total_groups:
                raise DatasetFormatError(f"{self.data_path / self.split / 'dataset.json'}: total_groups is "
                                         f"{self.metadata.total_groups} but the group index tables hold {groups}")
            self._data = data
        return self._data

    def _collate(self, inputs: np.ndarray, labels: np.ndarray, identifiers: np.ndarray) -> dict[str, torch.Tensor]:
        inputs = inputs.astype(np.int32)
        labels = labels.astype(np.int32)
        identifiers = identifiers.astype(np.int32)
        if self.metadata.ignore_label_id is not None:
            labels[labels == self.metadata.ignore_label_id] = IGNORE_LABEL_ID
        pad = self.local_batch_size - len(identifiers)
        if pad > 0:
            inputs = np.concatenate([inputs, np.full((pad, inputs.shape[1]), self.metadata.pad_id, np.int32)])
            labels = np.concatenate([labels, np.full((pad, labels.shape[1]), IGNORE_LABEL_ID, np.int32)])
            identifiers = np.concatenate([identifiers, np.full(pad, self.metadata.blank_identifier_id, np.int32)])
        return {"inputs": torch.from_numpy(inputs), "labels": torch.from_numpy(labels),
                "puzzle_identifiers": torch.from_numpy(identifiers)}

    # -- iteration ----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, dict[str, torch.Tensor], int]]:
        if self.test_set_mode:
            for test_batch in self.iter_test_batches():
                yield test_batch.set_name, test_batch.batch, test_batch.global_size
            return
        yield from self._iter_train()

    def _iter_train(self) -> Iterator[tuple[str, dict[str, torch.Tensor], int]]:
        data = self._lazy_load()
        sets = list(data)
        first_set = self._set_index if self._in_progress else 0
        for set_index in range(first_set, len(sets)):
            arrays = data[sets[set_index]]
            if self._in_progress and set_index == first_set:
                skip = self._batches_yielded                  # resume the interrupted pass
            else:
                self._iters += 1
                skip = 0
            self._set_index, self._batches_yielded, self._in_progress = set_index, skip, True
            rng = np.random.Generator(np.random.Philox(seed=self.seed + self._iters))
            n_groups = len(arrays["group_indices"]) - 1
            group_order = np.concatenate([rng.permutation(n_groups).astype(np.int32) for _ in range(self.epochs_per_iter)])
            batches = sample_train_batches(rng, group_order, arrays["puzzle_indices"], arrays["group_indices"],
                                           self.global_batch_size)
            local = slice(self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size)
            for number, (examples, puzzles) in enumerate(batches):
                if number < skip:
                    continue                                   # replayed only to advance the generator
                # NOTE: rows keep the sampling order. It is not immaterial: under ACT a row that has not halted
                # discards the new batch's row at its index, so the order decides which examples are trained
                # on, and sorting a rank's slice would make N processes train on other data than one.
                examples, puzzles = examples[local], puzzles[local]
                batch = self._collate(arrays["inputs"][examples], arrays["labels"][examples],
                                      arrays["puzzle_identifiers"][puzzles])
                self._batches_yielded = number + 1
                yield sets[set_index], batch, self.global_batch_size
            self._in_progress, self._batches_yielded = False, 0

    def iter_test_batches(self) -> Iterator[TestBatch]:
        """Every example of the split in order, as padded local batches with their real sizes (semantics §10.2)."""
        for set_name, arrays in self._lazy_load().items():
            total = len(arrays["inputs"])
            pi = arrays["puzzle_indices"]
            for start in range(0, total, self.global_batch_size):
                end = min(total, start + self.global_batch_size)
                local_start = min(end, start + self.rank * self.local_batch_size)
                local_end = min(end, start + (self.rank + 1) * self.local_batch_size)
                examples = np.arange(local_start, local_end)
                puzzles = np.searchsorted(pi, examples, side="right") - 1
                batch = self._collate(arrays["inputs"][local_start:local_end], arrays["labels"][local_start:local_end],
                                      arrays["puzzle_identifiers"][puzzles])
                yield TestBatch(set_name, batch, end - start, local_end - local_start, local_start)

    # -- resume -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"iterations": self._iters, "set_index": self._set_index, "batches_yielded": self._batches_yielded,
                "in_progress": self._in_progress, "seed": self.seed, "global_batch_size": self.global_batch_size,
                "epochs_per_iter": self.epochs_per_iter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "global_batch_size", "epochs_per_iter"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"cannot resume: the saved loader had {key}={state[key]}, this one has {getattr(self, key)}")
        self._iters = int(state["iterations"])
        self._set_index = int(state["set_index"])
        self._batches_yielded = int(state["batches_yielded"])
        self._in_progress = bool(state["in_progress"])
