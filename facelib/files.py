"""Writing files without losing what is there: write probes before work, exclusive folder locks,
atomic replacement of one file, and staged updates of several files that land together.

Every command that writes uses these, so a read-only folder fails before the work, a crash or a
full disk mid-write leaves the old file (never half of a new one), two processes never write one
folder at once, and a multi-file update (a zoo model and its manifest entry) is all or nothing.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, so no lock
    fcntl = None

__all__ = ["check_writable", "folder_lock", "FolderInUseError", "atomic_path", "atomic_write_text",
           "atomic_write_bytes"]


class FolderInUseError(RuntimeError):
    """Another process holds the lock of a folder this one wants to write."""


def check_writable(folder: str | os.PathLike, what: str = "out") -> Path:
    """Create `folder` if needed and prove it can be written (a probe file), before any work.

    A folder whose mode has no write bit counts as read-only even for root (who may write
    anywhere), so a protected folder fails here and not after hours of work.
    """
    folder = Path(folder)
    hint = f"choose a writable {what} folder (or fix its permissions)"
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{what} folder {folder} is a file, not a folder; "
                                                f"give another path or move the file away")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create {what} folder {folder}: {exc.strerror or exc}; {hint}") from exc
    mode = folder.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(errno.EACCES, f"{what} folder {folder} is read-only (mode {stat.filemode(mode)}); {hint}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"facelib")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write to {what} folder {folder}: {exc.strerror or exc}; {hint}") from exc
    return folder


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "run folder",
                holder_hint: str = "another process is writing there",
                remedy: str = "wait for it to finish, or choose another folder") -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (file `.lock`, with the holder's pid) while writing it.

    The lock is an flock, which the system drops when the process dies (even by SIGKILL), so a
    killed writer never leaves the folder locked. Raises FolderInUseError when another process
    holds it.
    """
    folder = check_writable(folder, what)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise FolderInUseError(f"{what} {folder} is in use: {holder_hint} (pid {holder}); {remedy}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield folder
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race a new holder)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside `path` to write; on success it replaces `path` in one step (fsynced),
    on any error it is removed and `path` stays as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` by `data` atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Replace `path` by `text` (UTF-8) atomically (`atomic_path`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))
