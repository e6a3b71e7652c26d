"""Face data sets behind one entry point, `load(name, **options)`.

Every loader returns a `FaceDataset` (uint8 images in memory, identity labels,
known factors). Real sets are read from the data root: `$FACELIB_DATA` if set,
else `./data`; on a machine with internet the scikit-learn fetchers download
into it. `synthetic` is rendered by facelib itself and always available.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from facelib.utils import normalise_name

from .dataset import PAIR_COLUMNS, FaceDataset
from .paths import DataNotFoundError, data_root

__all__ = ["load", "available", "dataset_name", "FaceDataset", "PAIR_COLUMNS", "DataNotFoundError", "data_root"]

# name -> "module:function"; modules are imported on first use so that
# `import facelib.data` stays cheap.
_LOADERS: dict[str, str] = {
    "synthetic": "facelib.data.synthetic:load_synthetic",
    "olivetti": "facelib.data.olivetti:load_olivetti",
    "lfw-people": "facelib.data.lfw:load_lfw_people",
    "lfw-pairs": "facelib.data.lfw:load_lfw_pairs",
    "yaleb": "facelib.data.yaleb:load_yaleb",
    "frey": "facelib.data.frey:load_frey",
    "folder": "facelib.data.folder:load_folder",
}


def available() -> list[str]:
    """Names accepted by `load`."""
    return sorted(_LOADERS)


def dataset_name(name: str) -> str:
    """The registered name `name` means ("LFW_pairs" -> "lfw-pairs"), or ValueError listing the names."""
    key = normalise_name(name)
    if key not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(available())}")
    return key


def _resolve(name: str) -> Callable[..., FaceDataset]:
    module, func = _LOADERS[dataset_name(name)].split(":")
    return getattr(importlib.import_module(module), func)


def load(name: str, **options: Any) -> FaceDataset:
    """Load data set `name` (see `available()`) with loader-specific options."""
    return _resolve(name)(**options)
