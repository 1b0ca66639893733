"""Writing files and folders so that a failed or killed run never leaves a half-written one behind."""
from __future__ import annotations

import errno
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place.

    The rename is atomic on POSIX: readers see the old file or the whole new one. The file is fsynced
    before the rename and the folder after it, so that a power loss cannot leave a renamed but empty
    file either. On any error the temporary file is removed and the error propagates. The file gets the
    usual umask permissions (mkstemp alone would make it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name is a partial name (below), so that the next writer of `path` removes the one a
    # killed writer left; it keeps the extension: some writers (MLX's save_safetensors) insist on it.
    remove_stale_partials(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.partial-{os.getpid()}-", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        fsync_path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)          # a failed write() names no file: name the one being written
        raise
    fsync_path(path.parent)
    return path


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's (or a folder's entries') data to disk. Folders cannot be opened on some platforms
    (Windows): there the folder's sync is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):   # file systems that cannot sync a folder
            raise
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


# ---------------------------------------------------------------------------------------------------
# Folders (and atomic_write's files) built in place: a hidden `.NAME.partial-PID-XXXX` beside the target,
# renamed into place when complete. A run killed with SIGKILL cannot clean up after itself, so the next
# run for the same target removes the partial folders and files whose writer (the PID in the name) is no
# longer alive.

_PARTIAL = re.compile(r"\.partial-(\d+)-[^/]*$")


def pid_alive(pid: int) -> bool:
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
        if match and entry.name == f".{target.name}{match.group(0)}" and not pid_alive(int(match.group(1))):
            found.append(entry)
    return found


def remove_stale_partials(target: str | os.PathLike) -> list[Path]:
    """Delete the stale partial folders (or files) of `target` (see stale_partials); returns those removed."""
    removed = stale_partials(target)
    for entry in removed:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return removed


def make_partial_dir(target: str | os.PathLike) -> Path:
    """A new private folder beside `target` for building it, after removing stale partials of `target`."""
    target = Path(target)
    remove_stale_partials(target)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))


def commit_partial_dir(partial: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename a complete partial folder (make_partial_dir) to `target`, replacing a folder already there.

    The files inside are fsynced first (each one written with atomic_write already is), then the folder,
    and after the rename its parent. A target already there is first renamed to a partial name of its
    own and deleted after, so that the final name holds the old complete folder, the new one, or (killed
    between the two renames) nothing, never a mixture; the set-aside folder is a stale partial that the
    next writer of `target` removes.
    """
    partial, target = Path(partial), Path(target)
    for entry in partial.rglob("*"):
        if entry.is_file():
            fsync_path(entry)
    fsync_path(partial)
    os.chmod(partial, 0o755)        # mkdtemp makes it private; the result is an ordinary folder
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-old-", dir=target.parent))
        os.replace(target, old)     # onto the empty folder mkdtemp made: rename() may replace an empty one
    os.rename(partial, target)
    fsync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def discard_dir(path: str | os.PathLike) -> None:
    """Delete a folder so that a kill midway leaves no half-deleted folder under its name: it is renamed
    to a partial name first (removed by the next writer, see remove_stale_partials), then deleted."""
    path = Path(path)
    if not path.exists():
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-{os.getpid()}-old-", dir=path.parent))
    os.replace(path, aside)
    shutil.rmtree(aside, ignore_errors=True)


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


def read_jsonl_lines(path: str | os.PathLike) -> list[str]:
    """The complete lines of a JSON-lines file (metrics.jsonl): a run killed mid-write may leave a partial
    last line, which is skipped."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            json.loads(line)
        except json.JSONDecodeError:
            continue
        lines.append(line)
    return lines
