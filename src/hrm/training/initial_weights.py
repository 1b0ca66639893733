"""`load_checkpoint=PATH`: a run that starts from a checkpoint's weights instead of the seeded init
(TRM's option, for every architecture here; semantics §15.6).

    load_initial_weights(head, path) -> what was loaded, in one line

A puzzle table with another number of rows (the checkpoint was trained on another puzzle set) becomes
the mean of its stored rows in every row of the new table, as the official code does; every other key
must fit exactly, else a one-line CheckpointError names the keys.
"""
from __future__ import annotations

from pathlib import Path

from hrm.models import ACTLossHead
from hrm.models.checkpoint import CheckpointError, load_state_into, read_state

PUZZLE_TABLE = "model.inner.puzzle_emb.weights"


def load_initial_weights(head: ACTLossHead, path: str | Path) -> str:
    state, source = read_state(path)
    expected = head.state_dict()
    note = ""
    if PUZZLE_TABLE in state and PUZZLE_TABLE in expected and state[PUZZLE_TABLE].shape != expected[PUZZLE_TABLE].shape:
        stored, wanted = state[PUZZLE_TABLE], expected[PUZZLE_TABLE]
        if stored.shape[1:] != wanted.shape[1:]:
            raise CheckpointError(f"{source}: its puzzle table has width {stored.shape[1]}, this model's "
                                  f"puzzle_emb_ndim is {wanted.shape[1]}")
        state[PUZZLE_TABLE] = stored.float().mean(0, keepdim=True).expand_as(wanted).clone()
        note = f"; puzzle table {stored.shape[0]} -> {wanted.shape[0]} rows, each the mean of the stored ones"
    elif PUZZLE_TABLE in state and PUZZLE_TABLE not in expected:
        raise CheckpointError(f"{source}: holds a puzzle table, and this model has none (arch.puzzle_emb_ndim=0)")
    load_state_into(head, state, source)
    return f"initial weights from {source}{note}"


__all__ = ["load_initial_weights"]
