"""Test-time augmentation for Sudoku and mazes: each puzzle solved in k versions, every answer mapped back.

A version is a validity-preserving transform of the board written as a cell permutation and a token
relabelling: version[j] = token_map[original[mapping[j]]]. It is undone exactly by
original[mapping[j]] = inverse_token_map[version[j]], so a prediction made on a version maps back to the
original frame. Each puzzle family draws its own versions (hrm.puzzles: `family.augmenter(...)`; Sudoku: its
symmetries, mazes: the eight dihedral transforms). The k versions of a puzzle are the original and k - 1
random transforms.

`tta=K` is breadth (hrm.evaluation.breadth): the K versions are K trajectories of the puzzle, run as one
batch, mapped back to the original frame here (`to_original`: answers, every step's answers and the logits)
and then selected among like any other trajectories (by default `select=vote`, the majority with ties
broken by the mean sigmoid(q_halt), as in ARC: hrm.evaluation.voting). With samples=N as well, each version
runs N trajectories: K x N in all.

NOTE: the transforms of a row are drawn from a generator seeded by (seed, example index), so the
versions of a puzzle do not depend on the batch size, the subset or the number of processes.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hrm.act_driver import ACTResult
from hrm.puzzles import apply, invert

__all__ = ["apply", "invert", "draw_versions", "trajectory_frames", "invert_logits", "to_original"]


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


def trajectory_frames(augmenter, example_indices: np.ndarray, versions: int, samples: int, seed: int,
                      seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(mapping (B*T, S), token_map (B*T, vocab)) of the T = versions x samples trajectories of B puzzles,
    puzzle-major: trajectory t of puzzle b is row b*T + t and sees version t // samples (0: the original,
    the identity). Padding rows (example index -1) get the identity in every trajectory."""
    B, vocab = len(example_indices), augmenter.vocab_size
    mapping = np.broadcast_to(np.arange(seq_len), (B, versions, seq_len)).copy()
    token_map = np.broadcast_to(np.arange(vocab), (B, versions, vocab)).copy()
    real = np.flatnonzero(np.asarray(example_indices) >= 0)
    if versions > 1 and len(real):
        drawn_mapping, drawn_tokens = draw_versions(augmenter, np.asarray(example_indices)[real], versions - 1, seed)
        mapping[real, 1:] = drawn_mapping.transpose(1, 0, 2)
        token_map[real, 1:] = drawn_tokens.transpose(1, 0, 2)
    T = versions * samples
    return (np.repeat(mapping, samples, axis=1).reshape(B * T, seq_len),
            np.repeat(token_map, samples, axis=1).reshape(B * T, vocab))


def invert_logits(logits: np.ndarray, mapping: np.ndarray, token_map: np.ndarray) -> np.ndarray:
    """(B, S, V) logits of versions -> the original frame: original[b, mapping[b, j], t] = version[b, j, token_map[b, t]]."""
    B, S, V = logits.shape
    if token_map.shape[1] != V:
        raise ValueError(f"the transforms relabel {token_map.shape[1]} tokens, the logits hold {V}")
    relabelled = np.take_along_axis(logits, token_map[:, None, :], axis=2)
    out = np.empty_like(logits)
    out[np.arange(B)[:, None], mapping] = relabelled
    return out


def to_original(result: ACTResult, mapping: np.ndarray, token_map: np.ndarray) -> ACTResult:
    """`result` of rows run on versions, every answer (last step, Q-halt step, every step) and the logits
    mapped back to the original frame; the Q logits, steps and residuals need no mapping."""
    def back(tokens: np.ndarray | None) -> np.ndarray | None:
        if tokens is None:
            return None
        if tokens.ndim == 2:
            return invert(tokens.astype(np.int64), mapping, token_map).astype(tokens.dtype)
        B, K, S = tokens.shape                      # per-step answers: every step with its row's transform
        flat = invert(tokens.reshape(B * K, S).astype(np.int64), np.repeat(mapping, K, axis=0),
                      np.repeat(token_map, K, axis=0))
        return flat.reshape(B, K, S).astype(tokens.dtype)

    return dataclasses.replace(result, predictions=back(result.predictions),
                               q_halt_predictions=back(result.q_halt_predictions),
                               step_predictions=back(result.step_predictions),
                               logits=invert_logits(result.logits, mapping, token_map))
