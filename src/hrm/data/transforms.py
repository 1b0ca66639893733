"""The eight dihedral transforms of a grid and their inverses (formats §2.1).

Every builder and the ARC evaluation use these: tid 0..7 are identity, rot90 k=1,2,3 (numpy's
counter-clockwise), fliplr, flipud, transpose, and the anti-diagonal reflection fliplr(rot90(k=1)).
They act on the last two axes, so a stack of grids (..., H, W) is transformed in one call.
"""
from __future__ import annotations

import numpy as np

NUM_DIHEDRAL = 8
# DIHEDRAL_INVERSE[t] undoes t: rotations by 90 and 270 degrees undo each other, the rest are involutions.
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)


def dihedral_transform(grid: np.ndarray, tid: int) -> np.ndarray:
    """Apply dihedral transform `tid` to the last two axes of `grid`."""
    axes = (-2, -1)
    if tid == 0:
        return grid
    if tid in (1, 2, 3):
        return np.rot90(grid, k=tid, axes=axes)
    if tid == 4:
        return np.flip(grid, axis=-1)
    if tid == 5:
        return np.flip(grid, axis=-2)
    if tid == 6:
        return np.swapaxes(grid, -2, -1)
    if tid == 7:
        return np.flip(np.rot90(grid, k=1, axes=axes), axis=-1)
    raise ValueError(f"dihedral transform id must be in 0..7, got {tid}")


def inverse_dihedral_transform(grid: np.ndarray, tid: int) -> np.ndarray:
    """Undo `dihedral_transform(·, tid)`."""
    return dihedral_transform(grid, DIHEDRAL_INVERSE[tid])
