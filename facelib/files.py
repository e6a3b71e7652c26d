"""Writing files without losing what is there: write probes before work, exclusive folder locks,
atomic replacement of one file, and staged updates of several files that land together.

Every command that writes uses these, so a read-only folder fails before the work, a crash or a
full disk mid-write leaves the old file (never half of a new one), two processes never write one
folder at once, and a multi-file update (a zoo model and its manifest entry) is all or nothing.
`source_checkout` and `package_folder` say where facelib's own files are: in its package (an
installed wheel) or in the checkout it is imported from.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.resources
import json
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, so no lock
    fcntl = None

__all__ = ["as_path", "file_sha256", "pid_alive", "check_regular_file", "NotARegularFileError", "check_writable", "folder_lock",
           "FolderInUseError", "atomic_path", "atomic_write_text", "atomic_write_bytes", "StagedUpdate",
           "staged_update", "recover_staged", "pending_update", "JOURNAL", "source_checkout", "package_folder"]

#: The journal of a staged update being committed (`staged_update`), in the updated folder.
JOURNAL = ".staged-update.json"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in blocks (checkpoints, zoo weights, data files)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def as_path(value: object, what: str) -> Path:
    """`value` as a Path, or a TypeError naming the argument (`what`) when it is not a path."""
    if isinstance(value, (str, os.PathLike)) and str(value) != "":
        return Path(value)
    raise TypeError(f"{what} must be a path (a non-empty str or os.PathLike), got {value!r}")


class NotARegularFileError(OSError):
    """A path to read is a named pipe, socket, device or folder: reading it would hang or misread."""


def check_regular_file(path: str | os.PathLike, what: str = "file", folder_ok: bool = False) -> Path:
    """`path`, after refusing what facelib must never open for reading: a named pipe (a read would
    wait forever), a socket or a device (and a folder unless `folder_ok`). Looks with `stat`
    only, so nothing is opened; a missing path is left to the caller's own not-found message.
    Every reader of a user's file (checkpoints, data files, the zoo, spec files) calls it first."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return p
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return p
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    raise NotARegularFileError(f"{what} {p} is {kind}, not a regular file: facelib reads only regular files "
                               "(reading a pipe or device would wait forever); give the file itself")


def source_checkout() -> Path | None:
    """The git checkout this facelib is imported from (the folder holding `pyproject.toml`, `.git`
    and `facelib/`), or None for an installed facelib (a wheel in site-packages)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / ".git").exists() else None


def package_folder(name: str, checkout_folder: str | None = None) -> Path:
    """The folder `facelib/<name>` of the installed package (found through `importlib.resources`),
    or, when facelib runs from a checkout that keeps it elsewhere (the wheel maps the checkout's
    top-level `notebooks/` and `benchmarks/results/` into the package), `<checkout>/<checkout_folder>`.
    The path is returned whether or not it exists; callers say what is missing."""
    inside = Path(str(importlib.resources.files("facelib").joinpath(*name.split("/"))))
    checkout = source_checkout()
    if inside.is_dir() or checkout is None or checkout_folder is None:
        return inside
    return checkout / checkout_folder


class FolderInUseError(RuntimeError):
    """Another process holds the lock of a folder this one wants to write."""


def _folder_label(what: str) -> str:
    """'out' -> 'out folder'; 'sweep folder' stays as it is."""
    return what if what.split()[-1:] == ["folder"] else f"{what} folder"


def write_failure(folder: str | os.PathLike, exc: BaseException) -> tuple[int, str, bool]:
    """(errno, the cause in words, whether the disk is full) for a failed write into `folder`:
    one reading of a write error for every writer (torch.save reports a full disk in its own words)."""
    code = getattr(exc, "errno", None)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if code == errno.ENOSPC or "unexpected pos" in text or "file write failed" in text \
            or (free is not None and free < 1 << 20):
        return errno.ENOSPC, "the disk is full" + (f" ({free / 2**20:.0f} MiB free)" if free is not None else ""), True
    return code or errno.EIO, f"{type(exc).__name__}: {text}", False


def check_writable(folder: str | os.PathLike, what: str = "out") -> Path:
    """Create `folder` if needed and prove it can be written (a probe file), before any work.

    A folder whose mode has no write bit counts as read-only even for root (who may write
    anywhere), so a protected folder fails here and not after hours of work. A path that is a
    file, or lies under one, is named as such (not "[Errno 17] File exists" or "Not a directory").
    `what` names the folder in messages ("out", "results", "sweep folder").
    """
    folder = Path(folder)
    what = _folder_label(what)
    hint = f"choose a writable {what} (or fix its permissions)"
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                where = f"{folder} is a file" if above == folder else f"{folder} cannot be made: {above} is a file"
                raise NotADirectoryError(errno.ENOTDIR, f"{what} {where}, not a folder; give another path or "
                                                        "move the file away")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create {what} {folder}: {exc.strerror or exc}; {hint}") from exc
    mode = folder.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(errno.EACCES, f"{what} {folder} is read-only (mode {stat.filemode(mode)}); {hint}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"facelib")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write to {what} {folder}: {exc.strerror or exc}; {hint}") from exc
    return folder


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "run folder",
                holder_hint: str = "another process is writing there",
                remedy: str = "wait for it to finish, or choose another folder", wait: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (file `.lock`, with the holder's pid) while writing it.

    The lock is an flock, which the system drops when the process dies (even by SIGKILL), so a
    killed writer never leaves the folder locked. Raises FolderInUseError when another process
    holds it for longer than `wait` seconds (0: refuse at once).
    """
    folder = check_writable(folder, what)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    raise FolderInUseError(f"{what} {folder} is in use: {holder_hint} (pid {holder}); {remedy}") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield folder
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race a new holder)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp path beside `path` to write; on success it replaces `path` in one step (fsynced),
    on any error it is removed and `path` stays as it was.

    `suffix` ends the temp's name, for writers that go by the ending (".tmp.ipynb" for papermill).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=suffix)
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


# -- staged updates of several files -----------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (one that belongs to another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: A staged file or backup: `.<target>.<pid>.<random>.staged<suffix>` / `.<target>.<pid>.<random>.old`.
_LEFTOVER = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(?:staged.*|old)$")


class StagedUpdate:
    """New versions of several files of one folder, written beside them and committed together.

    `path(name)` gives the temp file to write for `folder/name`, `remove(name)` stages the removal
    of `folder/name`; `commit()` replaces (or removes) the targets in the order they were staged (so
    stage the index, e.g. a manifest, last). Before the first
    replacement a journal (`JOURNAL`) lists every target with its staged file and a hard-link
    backup of the old one; the backups and the journal go once all are in place. An error during
    the commit rolls back at once; a kill during it is rolled back (or, when every file was
    already in place, finished) by `recover_staged`, which the next `staged_update` of the folder
    runs first. So readers see all old files or all new ones, and the old ones are never lost.
    Use through `staged_update`, inside `folder_lock(folder)` when other processes may write there.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._staged: dict[str, Path | None] = {}  # None: the target is removed

    def path(self, name: str | os.PathLike, mode: int = 0o644) -> Path:
        """The temp file standing for `folder/name` (a file directly in the folder), with `mode`."""
        key = self._key(name)
        if self._staged.get(key) is None:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.{os.getpid()}.",
                                       suffix=".staged" + Path(key).suffix)
            os.close(fd)
            os.chmod(tmp, mode)  # mkstemp makes a private file; the target's readers need the mode
            self._staged[key] = Path(tmp)
        return self._staged[key]

    def _key(self, name: str | os.PathLike) -> str:
        name = Path(name)
        if name.is_absolute() or len(name.parts) != 1:
            if name.parent.resolve() != self.folder.resolve():
                raise ValueError(f"a staged update of {self.folder} can only replace files directly in it, "
                                 f"not {name}")
        if name.name in (JOURNAL, ".lock"):
            raise ValueError(f"{name.name} is the staged update's own file; stage another name")
        return name.name

    def remove(self, name: str | os.PathLike) -> None:
        """Stage the removal of `folder/name` (a file directly in the folder): it goes with the
        commit, and comes back if the commit is rolled back. Nothing happens to a missing file."""
        key = self._key(name)
        old = self._staged.pop(key, None)
        if old is not None:
            old.unlink(missing_ok=True)
        self._staged[key] = None

    def staged(self, name: str | os.PathLike) -> bool:
        """Whether `folder/name` has a new version staged (`path`)."""
        return self._staged.get(Path(name).name) is not None

    @property
    def targets(self) -> list[Path]:
        """The files this update replaces, in commit order."""
        return [self.folder / key for key in self._staged]

    def discard(self) -> None:
        """Remove the staged files; the targets stay as they were."""
        for tmp in self._staged.values():
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        self._staged.clear()

    def commit(self) -> None:
        """Replace every target by its staged file, all or nothing (see the class)."""
        if not self._staged:
            return
        entries = []
        for key, tmp in self._staged.items():
            if tmp is None:  # a removal: the old file goes to its backup, restored on a rollback
                if (self.folder / key).exists():
                    backup = f".{key}.{os.getpid()}.{os.urandom(4).hex()}.old"
                    entries.append({"target": key, "staged": None, "backup": backup})
                continue
            if not tmp.exists():
                raise FileNotFoundError(errno.ENOENT, f"the staged file {tmp} for {self.folder / key} is gone; "
                                                      "nothing was replaced, write it again")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            backup = (tmp.name[: -len(".staged" + Path(key).suffix)] + ".old") if (self.folder / key).exists() else None
            entries.append({"target": key, "staged": tmp.name, "backup": backup})
        atomic_write_text(self.folder / JOURNAL, json.dumps({"pid": os.getpid(), "files": entries}, indent=1))
        try:
            for e in entries:
                target = self.folder / e["target"]
                if e["staged"] is None:
                    os.replace(target, self.folder / e["backup"])
                    continue
                if e["backup"]:
                    _keep_copy(target, self.folder / e["backup"])
                os.replace(self.folder / e["staged"], target)
            _fsync_dir(self.folder)
        except BaseException:
            recover_staged(self.folder)  # some staged files are left: roll back to the old ones
            self._staged.clear()
            raise
        _finish(self.folder, entries)
        self._staged.clear()


def _keep_copy(target: Path, backup: Path) -> None:
    """`backup` holding `target`'s bytes while `target` stays in place (a hard link, else a copy)."""
    try:
        os.link(target, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(target, backup)


def _finish(folder: Path, entries: list[dict]) -> None:
    for e in entries:
        if e.get("backup"):
            (folder / e["backup"]).unlink(missing_ok=True)
    (folder / JOURNAL).unlink(missing_ok=True)
    _fsync_dir(folder)


def pending_update(folder: str | os.PathLike) -> bool:
    """Whether a staged update of `folder` was cut short during its commit (a journal is left)."""
    return (Path(folder) / JOURNAL).exists()


def recover_staged(folder: str | os.PathLike) -> str | None:
    """Settle a staged update of `folder` cut short by a kill; remove temps of writers that are gone.

    With a journal: if every staged file was already moved into place the update is finished
    (backups removed), else it is rolled back (moved files replaced by their backups, files that
    were new removed). Returns "finished", "rolled back" or None (nothing to settle). The caller
    must hold the folder's lock, so that no live commit is settled under its feet.
    """
    folder = Path(folder)
    journal = folder / JOURNAL
    outcome = None
    if journal.exists():
        try:
            entries = json.loads(journal.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"the staged-update journal {journal} is damaged ({exc}); compare the files it "
                             f"names by hand, then delete it") from exc
        def done(e: dict) -> bool:  # a removal is done when its target is gone, a replacement when moved
            return not (folder / e["target"]).exists() if e["staged"] is None else not (folder / e["staged"]).exists()

        if all(done(e) for e in entries):
            outcome = "finished"
        else:
            for e in reversed(entries):
                target = folder / e["target"]
                staged = folder / e["staged"] if e["staged"] is not None else None
                backup = folder / e["backup"] if e.get("backup") else None
                if staged is None:  # a removal: the backup is the old file (the target if not yet moved)
                    if backup is not None and backup.exists():
                        os.replace(backup, target)
                elif staged.exists():  # never moved: the target is the old file
                    staged.unlink()
                elif backup is not None and backup.exists():
                    os.replace(backup, target)
                elif backup is None:  # a file the update added
                    target.unlink(missing_ok=True)
            _fsync_dir(folder)
            outcome = "rolled back"
        _finish(folder, entries)
    for leftover in folder.iterdir():
        match = _LEFTOVER.match(leftover.name)
        if match and not pid_alive(int(match["pid"])):
            leftover.unlink(missing_ok=True)
    return outcome


@contextmanager
def staged_update(folder: str | os.PathLike) -> Iterator[StagedUpdate]:
    """Stage new versions of files in `folder` and commit them together when the block ends.

        with folder_lock(zoo), staged_update(zoo) as stage:
            write_weights(stage.path("model.pt"))
            stage.path("manifest.json").write_text(...)  # last: the index lands last

    An error in the block removes the staged files and changes nothing; an interrupted commit
    of an earlier update is settled first (`recover_staged`).
    """
    folder = Path(folder)
    recover_staged(folder)
    stage = StagedUpdate(folder)
    try:
        yield stage
    except BaseException:
        stage.discard()
        raise
    stage.commit()
