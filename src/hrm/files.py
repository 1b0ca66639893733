"""Writing files and folders so that a failed or killed run never leaves a half-written one behind."""
from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place.

    The rename is atomic on POSIX: readers see the old file or the whole new one. On any error the
    temporary file is removed and the error propagates. The file gets the usual umask permissions
    (mkstemp alone would make it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the extension: some writers (MLX's save_safetensors) insist on it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)          # a failed write() names no file: name the one being written
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


# ---------------------------------------------------------------------------------------------------
# Folders built in place: a hidden `.NAME.partial-PID-XXXX` folder beside the target, renamed into place
# when complete. A run killed with SIGKILL cannot clean up after itself, so the next run for the same
# target removes the partial folders whose writer (the PID in the name) is no longer alive.

_PARTIAL = re.compile(r"\.partial-(\d+)-[^/]*$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def stale_partials(target: str | os.PathLike) -> list[Path]:
    """The partial folders of `target` whose writing process has died.

    Only this naming scheme's folders are considered (the PID is in the name); one with a live PID is
    left alone, since it may be another run still writing. A reused PID keeps a stale folder one run
    longer, which is harmless. The PID is this host's: on a folder shared between machines a partial
    of a live writer elsewhere could look dead, so don't build the same target from two hosts at once.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    found = []
    for entry in sorted(target.parent.glob(f".{glob.escape(target.name)}.partial-*")):
        match = _PARTIAL.search(entry.name)
        if match and entry.name == f".{target.name}{match.group(0)}" and not _alive(int(match.group(1))):
            found.append(entry)
    return found


def remove_stale_partials(target: str | os.PathLike) -> list[Path]:
    """Delete the stale partial folders of `target` (see stale_partials); returns those removed."""
    removed = stale_partials(target)
    for entry in removed:
        shutil.rmtree(entry, ignore_errors=True)
    return removed


def make_partial_dir(target: str | os.PathLike) -> Path:
    """A new private folder beside `target` for building it, after removing stale partials of `target`."""
    target = Path(target)
    remove_stale_partials(target)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))


def check_parent_dirs(path: str | os.PathLike) -> None:
    """Raise NotADirectoryError naming the first ancestor of `path` that exists but is not a folder
    (where mkdir would fail with a less helpful error)."""
    for ancestor in reversed(Path(path).absolute().parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(ancestor))


def describe_os_error(error: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for a user: "no space left on device: PATH". `path` stands in when the error names
    none (a failed write() carries no file name)."""
    where = error.filename if error.filename is not None else path
    if error.errno is None:  # raised with a message of our own, e.g. FileExistsError("...: already exists")
        return str(error)
    reason = (error.strerror or os.strerror(error.errno)).lower()
    return f"{reason}: {os.fspath(where)}" if where is not None else reason
