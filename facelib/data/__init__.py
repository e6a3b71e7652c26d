"""Face data sets behind one entry point, `load(name, **options)`.

Every loader returns a `FaceDataset` (uint8 images in memory, identity labels,
known factors). Real sets are read from the data root: `$FACELIB_DATA` if set,
else `./data`; on a machine with internet the scikit-learn fetchers download
into it. `synthetic` is rendered by facelib itself and always available.

A data set is a module whose loader registers itself with the `register_dataset` decorator
(`datasets.DATASETS`, a `facelib.registry.Registry`); this package imports the shipped ones.
Every set follows one contract (`facelib.data.datasets`):

* ``size``: the side of the square images in pixels (an int; ``None`` gives a set's native
  non-square images where it has them: lfw-*, frey, yaleb); ``channels``: 1 (grey) or 3 (RGB),
  where a grey-only set (olivetti, yaleb, frey) refuses 3; ``crop`` where a set crops (lfw-*);
* ``split``: the part of a set's protocol, one meaning everywhere: ``"train"`` what a model is
  fitted on, ``"test"`` the held-out part (other people), ``"all"`` everything; lfw-pairs:
  "train" / "test" (View 1) and "10_folds" (View 2); yaleb: "train" / "test" (30 / 8 people,
  `yaleb.YALEB_HELD_OUT`) / "all". Options that add or drop images are named for that:
  lfw-pairs ``other_images=True`` appends every other image of the pairs' people, lfw-people
  ``exclude_pairs=SPLIT`` drops the people of that lfw-pairs split;
* an option a set does not take is refused, naming its options (`dataset_info(name).option_names`).

Old option names (``color``, ``subset``, ``people``) are translated with a DeprecationWarning
(`translate_options`), so stored options still load.
"""

from __future__ import annotations

from typing import Any

# The shipped loader modules register their data sets on import.
from . import folder, frey, lfw, olivetti, yaleb  # noqa: F401
from .dataset import PAIR_COLUMNS, FaceDataset
from .datasets import (DATASETS, SPLITS, DatasetInfo, DatasetOption, dataset_info, register_dataset,
                       translate_options)
from .paths import DataNotFoundError, data_root
from .synthetic import faces as _synthetic_faces  # noqa: F401

__all__ = ["load", "available", "dataset_name", "dataset_info", "register_dataset", "translate_options",
           "DATASETS", "DatasetInfo", "DatasetOption", "SPLITS", "FaceDataset", "PAIR_COLUMNS",
           "DataNotFoundError", "data_root"]


def available() -> list[str]:
    """Names accepted by `load`."""
    return sorted(DATASETS)


def dataset_name(name: str) -> str:
    """The registered name `name` means ("LFW_pairs" -> "lfw-pairs"); `UnknownNameError` (a
    ValueError and KeyError) listing the names otherwise."""
    return DATASETS.canonical(name)


def load(name: str, **options: Any) -> FaceDataset:
    """Load data set `name` (see `available()`) with its options (`dataset_info(name).option_names`;
    the contract in the package docstring). Old option names are translated with a warning;
    an option the set does not take is refused, naming the set's options."""
    info = DATASETS[name]
    return info.load(**translate_options(info.name, options))
