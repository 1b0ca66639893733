"""Test-time augmentation for Sudoku and mazes: solve each puzzle in k versions, map back, vote.

A version is a validity-preserving transform of the board written as a cell permutation and a token
relabelling: version[j] = token_map[original[mapping[j]]]. It is undone exactly by
original[mapping[j]] = inverse_token_map[version[j]], so a prediction made on a version maps back to the
original frame. Sudoku versions are hrm.data.sudoku's symmetries (digit relabelling, band/row and
stack/column permutations, transposition for square boxes); maze versions are the eight dihedral
transforms (hrm.data.transforms). The k versions are the original and k - 1 random transforms; each votes
with its mapped-back answer and sigmoid(q_halt), ranked as in ARC (hrm.evaluation.voting).

NOTE: the transforms of a row are drawn from a generator seeded by (seed, example index), so the
versions of a puzzle do not depend on the batch size or the number of processes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hrm.evaluation.voting import rank

TTA_TASKS = ("sudoku", "maze")


@dataclass
class Augmenter:
    """Draws versions of rows of one task. `vocab_size` sizes the token maps."""
    task: str
    seq_len: int
    vocab_size: int
    box: object = None            # hrm.data.sudoku_solver.Box for Sudoku

    def draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(mapping (count, S), token_map (count, vocab)) of `count` random transforms."""
        if self.task == "sudoku":
            from hrm.data.sudoku import random_symmetries

            mapping, digit_map = random_symmetries(self.box, count, rng)
            # Tokens are value + 1 (PAD 0 stays 0, blank 1 stays 1); labels and inputs share the map.
            token_map = np.tile(np.arange(self.vocab_size), (count, 1))
            token_map[:, 1:digit_map.shape[1] + 1] = digit_map + 1
            return mapping, token_map
        if self.task == "maze":
            from hrm.data.transforms import NUM_DIHEDRAL, dihedral_transform

            side = math.isqrt(self.seq_len)
            cells = np.arange(self.seq_len).reshape(side, side)
            tids = rng.integers(1, NUM_DIHEDRAL, size=count)        # never the identity: that is version 0
            mapping = np.stack([dihedral_transform(cells, int(t)).reshape(-1) for t in tids])
            return mapping, np.tile(np.arange(self.vocab_size), (count, 1))
        raise ValueError(f"test-time augmentation is for {' and '.join(TTA_TASKS)} datasets, not {self.task!r}")


def augmenter_for(task: str, seq_len: int, vocab_size: int, box: str | None = None) -> Augmenter:
    """The augmenter of a dataset; a Sudoku's box shape comes from its manifest, else from its size."""
    if task not in TTA_TASKS:
        raise ValueError(f"test-time augmentation (tta=K) is for {' and '.join(TTA_TASKS)} datasets; this one is "
                         f"{task!r} (ARC datasets carry their augmented versions in the test split already)")
    side = math.isqrt(seq_len)
    if side * side != seq_len:
        raise ValueError(f"seq_len {seq_len} is not a square board")
    if task == "sudoku":
        from hrm.data.draw import default_box
        from hrm.data.sudoku_solver import Box

        shape = Box.parse(box) if box else default_box(side)
        if shape.size != side:
            raise ValueError(f"box {shape} does not fit a {side}x{side} board")
        return Augmenter(task, seq_len, vocab_size, shape)
    return Augmenter(task, seq_len, vocab_size)


def apply(tokens: np.ndarray, mapping: np.ndarray, token_map: np.ndarray) -> np.ndarray:
    """version[b, j] = token_map[b, tokens[b, mapping[b, j]]] for (B, S) tokens; -100 labels stay -100."""
    gathered = np.take_along_axis(tokens, mapping, axis=1)
    ignored = gathered < 0
    out = np.take_along_axis(token_map, np.where(ignored, 0, gathered), axis=1)
    return np.where(ignored, gathered, out)


def invert(tokens: np.ndarray, mapping: np.ndarray, token_map: np.ndarray) -> np.ndarray:
    """The inverse of `apply`: original[b, mapping[b, j]] = inverse_token_map[b, version[b, j]]."""
    inverse_map = np.argsort(token_map, axis=1)
    relabelled = np.take_along_axis(inverse_map, np.clip(tokens, 0, token_map.shape[1] - 1), axis=1)
    relabelled = np.where(tokens < 0, tokens, relabelled)
    out = np.empty_like(tokens)
    np.put_along_axis(out, mapping, relabelled, axis=1)
    return out


def draw_versions(augmenter: Augmenter, example_indices: np.ndarray, extra_versions: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mapping (V, B, S), token_map (V, B, vocab)) for `extra_versions` transforms of each row."""
    mappings, token_maps = [], []
    for index in example_indices:
        rng = np.random.default_rng([seed, int(index)])
        mapping, token_map = augmenter.draw(rng, extra_versions)
        mappings.append(mapping)
        token_maps.append(token_map)
    return np.stack(mappings, axis=1), np.stack(token_maps, axis=1)


def vote_batch(run, batch: dict[str, torch.Tensor], first, augmenter: Augmenter, example_indices: np.ndarray,
               versions: int, seed: int, use_q_halt: bool = False) -> np.ndarray:
    """The voted answer (B, S) of every row over the original (already run: `first`) and versions - 1 transforms.

    `run(batch) -> ACTResult` runs the ACT loop (hrm.act_driver). use_q_halt takes each version's
    answer at its Q-halt step instead of its last step.
    """
    def answer(out):
        return ((out.q_halt_predictions if use_q_halt else out.predictions),
                (out.q_halt_q if use_q_halt else out.q_halt))

    answers, q = answer(first)
    ballots = [[(a.astype(np.int32).tobytes(), a, float(s))] for a, s in zip(answers, q)]
    if versions > 1:
        device = batch["inputs"].device
        inputs = batch["inputs"].cpu().numpy()
        labels = batch["labels"].cpu().numpy()
        mappings, token_maps = draw_versions(augmenter, example_indices, versions - 1, seed)
        for mapping, token_map in zip(mappings, token_maps):
            version = {"inputs": torch.from_numpy(apply(inputs, mapping, token_map).astype(np.int32)).to(device),
                       "labels": torch.from_numpy(apply(labels, mapping, token_map).astype(np.int32)).to(device),
                       "puzzle_identifiers": batch["puzzle_identifiers"]}
            answers, q = answer(run(version))
            back = invert(answers.astype(np.int64), mapping, token_map).astype(np.int32)
            for row, (a, s) in enumerate(zip(back, q)):
                ballots[row].append((a.tobytes(), a, float(s)))
    return np.stack([rank(b)[0].answer for b in ballots]).astype(np.int32)
