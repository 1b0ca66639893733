"""Test-time augmentation for Sudoku and mazes: solve each puzzle in k versions, map back, vote.

A version is a validity-preserving transform of the board written as a cell permutation and a token
relabelling: version[j] = token_map[original[mapping[j]]]. It is undone exactly by
original[mapping[j]] = inverse_token_map[version[j]], so a prediction made on a version maps back to the
original frame. Each puzzle family draws its own versions (hrm.puzzles: `family.augmenter(...)`; Sudoku: its
symmetries, mazes: the eight dihedral transforms). The k versions are the original and k - 1 random transforms; each votes
with its mapped-back answer and sigmoid(q_halt), ranked as in ARC (hrm.evaluation.voting).

NOTE: the transforms of a row are drawn from a generator seeded by (seed, example index), so the
versions of a puzzle do not depend on the batch size or the number of processes.
"""
from __future__ import annotations

import numpy as np
import torch

from hrm.evaluation.voting import rank
from hrm.puzzles import apply, invert

__all__ = ["apply", "invert", "draw_versions", "vote_batch"]


def draw_versions(augmenter, example_indices: np.ndarray, extra_versions: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mapping (V, B, S), token_map (V, B, vocab)) for `extra_versions` transforms of each row."""
    mappings, token_maps = [], []
    for index in example_indices:
        rng = np.random.default_rng([seed, int(index)])
        mapping, token_map = augmenter.draw(rng, extra_versions)
        mappings.append(mapping)
        token_maps.append(token_map)
    return np.stack(mappings, axis=1), np.stack(token_maps, axis=1)


def vote_batch(run, batch: dict[str, torch.Tensor], first, augmenter, example_indices: np.ndarray,
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
