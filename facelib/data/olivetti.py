"""Olivetti (AT&T/ORL) faces through scikit-learn's fetcher, as a `FaceDataset`.

scikit-learn downloads the set when a machine has internet and reads its own on-disk
layout otherwise (`<root>/scikit_learn_data/`), so facelib does not re-implement it.
"""

from __future__ import annotations

import os

import numpy as np

from ._common import check_bool, check_size, missing_data, no_leftover_folders, read_data_file, square_resize, to_nchw
from .dataset import FaceDataset
from .paths import data_root
from .pixels import to_uint8

__all__ = ["load_olivetti"]


def load_olivetti(*, size: int = 64, download: bool = True, root: str | os.PathLike | None = None) -> FaceDataset:
    """Olivetti (AT&T/ORL) faces: 400 grey 64x64 images, 40 people x 10, identity 0..39.

    scikit-learn min-max scales the raw bytes (0..242) to [0, 1]; we map that back
    with x 255 and rounding, so pixel values span 0..255. `size` resizes
    (antialiased) to size x size. `download=True` lets scikit-learn fetch the file
    into `<root>/scikit_learn_data` when it is missing and there is internet.
    """
    from sklearn.datasets import fetch_olivetti_faces

    size = check_size(size)
    download = check_bool(download, "download")
    root = data_root(root)
    data_home = root / "scikit_learn_data"
    pkz = data_home / "olivetti_py3.pkz"  # scikit-learn's cache name (its _pkl_filepath adds _py3)
    if not pkz.exists() and not download:
        raise missing_data(
            "olivetti", pkz, root, "scikit_learn_data/olivetti_py3.pkz",
            "Pass download=True on a machine with internet (scikit-learn fetches it into the data root).",
        )
    if pkz.exists():  # on disk: a failure now is a damaged file, not a download problem
        bunch = read_data_file(
            "olivetti", pkz, lambda: fetch_olivetti_faces(data_home=str(data_home), download_if_missing=False),
            f"Delete it and load again with download=True on a machine with internet to fetch a fresh copy, "
            "or copy a good olivetti_py3.pkz there.")
    else:
        bunch = None
    try:
        if bunch is None:
            with no_leftover_folders(data_home):
                bunch = fetch_olivetti_faces(data_home=str(data_home), download_if_missing=download)
    except OSError as err:  # includes URLError (no internet) and read-only roots
        raise missing_data(
            "olivetti", pkz, root, "scikit_learn_data/olivetti_py3.pkz",
            f"Downloading it failed ({err}); check the internet connection and that the data root is writable.",
        ) from err
    images = to_nchw(to_uint8(bunch.images))
    if size != images.shape[-1]:
        images = square_resize(images, size)
    return FaceDataset(
        images=images,
        identity=np.asarray(bunch.target, dtype=np.int64),
        factors=None,
        name="olivetti",
        identity_names=[f"s{i + 1}" for i in range(40)],  # the ORL folder names s1..s40
        meta={"source": str(pkz), "options": {"size": size}},
    )
