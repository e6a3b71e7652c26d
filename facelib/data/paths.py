"""Where data lives, and the error raised when it is not there."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "DataNotFoundError"]


class DataNotFoundError(FileNotFoundError):
    """A data set is missing from the data root; the message says how to get it."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root` if given, else `$FACELIB_DATA`, else `./data`."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("FACELIB_DATA")
    return Path(env).expanduser() if env else Path("data")
