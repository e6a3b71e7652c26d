"""Helpers shared by the loaders: option checks, N x C x H x W layout, square resizing,
missing-data, damaged-data and permission errors and the writable cache folder.

Kept in one place so every loader rejects bad options, missing, damaged and unreadable
files with the same kind of message.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from facelib.files import check_regular_file

from .paths import DataNotFoundError

__all__ = [
    "check_size",
    "check_choice",
    "check_bool",
    "to_nchw",
    "square_resize",
    "missing_data",
    "fetch_hint",
    "is_writable_dir",
    "cache_dir",
    "CorruptDataError",
    "UnsafeDataError",
    "DataPermissionError",
    "permission_error",
    "data_exists",
    "read_data_file",
    "no_leftover_folders",
]


class CorruptDataError(ValueError):
    """A data file is there but cannot be read; the message names it and how to replace it."""


class UnsafeDataError(CorruptDataError):
    """A data file asks to build objects a data set never holds (a crafted pickle); refused
    before anything from it runs."""


class DataPermissionError(PermissionError):
    """A data file or folder exists but this user may not read it: not damage, so the message
    asks for read access rather than a new copy."""


def permission_error(name: str, path: str | os.PathLike, err: OSError | None = None) -> DataPermissionError:
    """The error for a file or folder the user may not read, naming it (or the folder above it)."""
    where = (getattr(err, "filename", None) if err is not None else None) or path
    return DataPermissionError(
        f"data set {name!r}: permission denied reading {where} (or a folder above it). The data is not damaged; "
        f"this user may not read it: fix the permissions (e.g. chmod -R u+rX {where}, or ask its owner), "
        "or point FACELIB_DATA / root= / path= at a readable copy."
    )


def data_exists(name: str, path: str | os.PathLike) -> bool:
    """Whether `path` exists; a folder on the way that may not be read is a DataPermissionError,
    not a missing file (Path.exists says False or raises a bare PermissionError there)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError as err:
        raise permission_error(name, path, err) from err
    return True


def _failing_file(err: BaseException) -> str | None:
    """The file a decoder was reading when it failed, where its frames say (scikit-learn's LFW
    loop keeps it in `file_path`), so a truncated image among thousands is named."""
    tb = err.__traceback__
    found = None
    while tb is not None:
        value = tb.tb_frame.f_locals.get("file_path")
        if isinstance(value, (str, os.PathLike)):
            found = str(value)
        tb = tb.tb_next
    return found


def _permission_cause(err: BaseException) -> PermissionError | None:
    """The PermissionError behind `err`, where a decoder raised its own error from one."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, PermissionError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def read_data_file(name: str, path: str | os.PathLike, read, remedy: str = ""):
    """`read()`, with any decoding error turned into a CorruptDataError naming the file.

    Decoders fail in many ways on damaged bytes (EOFError, zlib.error, ValueError, KeyError,
    BadZipFile, OSError from PIL, scipy's MatReadError...), none of which name the file or
    say what to do; every loader reads its files through here. A file this user may not read
    is a DataPermissionError instead: it is not damaged, and deleting it would be wrong. A named
    pipe or device in a data file's place is refused before anything opens it.
    """
    check_regular_file(path, f"data set {name!r}: data file", folder_ok=True)
    try:
        return read()
    except (DataNotFoundError, CorruptDataError, DataPermissionError, MemoryError):
        raise
    except PermissionError as err:
        raise permission_error(name, path, err) from err
    except Exception as err:  # noqa: BLE001 - re-raised with the file name and a remedy
        denied = _permission_cause(err)
        if denied is not None:  # a decoder that wrapped the PermissionError in its own error
            raise permission_error(name, path, denied) from err
        bad = _failing_file(err) or str(path)
        text = str(err).splitlines()[0] if str(err) else ""
        raise CorruptDataError(
            f"data set {name!r}: cannot read {bad} ({type(err).__name__}: {text}); the file is damaged, "
            "truncated or of another format. " + (remedy or "Replace it with a good copy.")
        ) from err


def check_size(size: Any, option: str = "size", allow_none: bool = False) -> int | None:
    """`size` as a positive int (or None where allowed); ValueError otherwise."""
    if size is None and allow_none:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        allowed = "a positive int" + (" or None" if allow_none else "")
        raise ValueError(f"{option} must be {allowed} (the output side in pixels), got {size!r}")
    return int(size)


def check_choice(value: Any, allowed: Iterable[Any], option: str) -> Any:
    """`value` if it is one of `allowed`; ValueError listing the choices otherwise."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{option}={value!r} is not allowed; choose one of {allowed}")
    return value


def check_bool(value: Any, option: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{option} must be True or False, got {value!r}")
    return bool(value)


def to_nchw(x: np.ndarray) -> torch.Tensor:
    """N x H x W (grey) or N x H x W x 3 (RGB) array -> N x C x H x W tensor."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"expected N x H x W or N x H x W x C images, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x))


def square_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop N x C x H x W uint8 images to a square, then resize to size x size.

    Antialiased bilinear resizing (torchvision) so that shrinking does not alias.
    """
    h, w = images.shape[-2:]
    side = min(h, w)
    if (h, w) != (side, side):
        top, left = (h - side) // 2, (w - side) // 2
        images = images[..., top : top + side, left : left + side]
    if side != size:
        images = F.resize(images, [size, size], antialias=True)
    return images.contiguous()


def fetch_hint(name: str) -> str:
    """How to get data set `name`: the `data fetch` command (see facelib.data.fetch)."""
    return (f"Get it with `python -m facelib data fetch {name}` (`python -m facelib data list` shows which sets "
            "are under the data root).")


def missing_data(name: str, path: Path, root: Path, relative: str, how: str = "") -> DataNotFoundError:
    """The error for a data set that is not on disk: what, where, and how to get it (`how`, then
    the `data fetch` command)."""
    return DataNotFoundError(
        f"data set {name!r} not found: looked for {path} (data root {root}). "
        + (how + " " if how else "")
        + fetch_hint(name)
        + f" Or set FACELIB_DATA to a folder that contains {relative}, or pass root=..."
    )


def is_writable_dir(path: Path) -> bool:
    """Whether `path` (or the nearest existing folder above it) may be written.

    Besides os.access, a folder whose mode has no write bit counts as read-only:
    running as root, os.access says yes to everything, and shared read-only
    copies are protected only by their mode.
    """
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    mode = p.stat().st_mode
    has_write_bit = bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return p.is_dir() and has_write_bit and os.access(p, os.W_OK)


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """facelib's writable cache: `cache` if given, else $FACELIB_CACHE, else ~/.cache/facelib."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get("FACELIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facelib"


@contextlib.contextmanager
def no_leftover_folders(folder: Path):
    """Remove the empty folders that a failed download created (`folder`, its missing parents,
    `folder/lfw_home`), so a failed attempt leaves nothing behind."""
    folder = Path(folder)
    chain = [folder / "lfw_home", folder, *folder.parents]
    new = [p for p in chain if not p.exists()]
    try:
        yield
    except BaseException:
        for p in new:  # deepest first
            try:
                if p.is_dir() and not any(p.iterdir()):
                    p.rmdir()
            except OSError:
                pass
        raise
