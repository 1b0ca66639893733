"""Optional numba acceleration for the solvers and generators.

The Sudoku solver and the maze search are written as plain Python over numpy arrays in the subset that
numba compiles. With numba installed (the `data` extra) they run compiled; without it the very same
functions run as Python, correct but slower (fine for 4x4 and 6x6 boards, too slow for bulk 9x9 work).
"""
from __future__ import annotations

try:
    import numba

    HAVE_NUMBA = True

    def njit(function):
        # cache=True keeps the compiled code in __pycache__, so only the first process pays the compile.
        return numba.njit(cache=True, nogil=True)(function)

except ImportError:  # pragma: no cover - exercised only on installs without the extra
    HAVE_NUMBA = False

    def njit(function):
        return function
