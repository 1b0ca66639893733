"""One writer per run directory: `hrm train` (new or resumed) holds RUN_DIR/.hrm-train.lock while it runs.

The lock is an `fcntl.flock` on that file, so the kernel releases it when the process ends, however it
ends (a SIGKILLed trainer leaves no stuck lock: the next one takes it over). The file holds the holder's
pid, for the message a second trainer gets. On platforms without fcntl (Windows) there is no lock, and
two trainers on one run are not detected.
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:            # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = ".hrm-train.lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run's lock; the message names the run directory and its pid."""


class RunLock:
    """`with RunLock(run_dir): ...`, or acquire() / release(). acquire() raises RunLockedError at once
    (it never waits) when another process holds the lock."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        if fcntl is None or self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(f"{self.run_dir}: another hrm train (pid {holder}) is writing this run; wait for it "
                                 f"to finish or stop it (a killed trainer's lock is released by the system)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)            # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
