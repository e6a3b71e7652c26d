"""Olivetti (AT&T/ORL) faces from scikit-learn's cache file, as a `FaceDataset`.

The file is read here with a restricted joblib reader (`_safe_pickle`), not with
scikit-learn's fetcher: that one calls `joblib.load`, which runs whatever a crafted
`olivetti_py3.pkz` asks. scikit-learn is only asked to download the file when it is missing.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.datasets import fetch_olivetti_faces

from ._common import (
    CorruptDataError,
    check_bool,
    check_size,
    data_exists,
    missing_data,
    no_leftover_folders,
    square_resize,
    to_nchw,
)
from ._safe_pickle import read_joblib
from .dataset import FaceDataset
from .datasets import check_channels, register_dataset
from .paths import data_root
from .pixels import to_levels

__all__ = ["load_olivetti", "OLIVETTI_SHAPE"]

#: Shape of the array in olivetti_py3.pkz: 400 faces x 64*64 pixels (each stored transposed).
OLIVETTI_SHAPE = (400, 64 * 64)


def _olivetti_images(raw, pkz) -> np.ndarray:
    """The 400 x 64 x 64 faces in [0, 1] exactly as scikit-learn's fetcher makes them: min-max
    scaled in float32 and transposed upright."""
    if not isinstance(raw, np.ndarray) or raw.shape != OLIVETTI_SHAPE or raw.dtype.kind not in "uif":
        what = f"{raw.dtype} array of shape {raw.shape}" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise CorruptDataError(
            f"data set 'olivetti': {pkz} holds a {what}, not the {OLIVETTI_SHAPE} array of pixel levels "
            "scikit-learn writes; delete it and load again with download=True on a machine with internet")
    faces = np.float32(raw)
    if not np.isfinite(faces).all() or faces.max() == faces.min():
        raise CorruptDataError(f"data set 'olivetti': {pkz} holds non-finite or constant pixels; delete it and "
                               "load again with download=True on a machine with internet")
    faces = faces - faces.min()
    faces /= faces.max()
    return faces.reshape((400, 64, 64)).transpose(0, 2, 1)


@register_dataset("olivetti", channels=(1,))
def load_olivetti(*, size: int = 64, channels: int = 1, download: bool = True,
                  root: str | os.PathLike | None = None) -> FaceDataset:
    """Olivetti (AT&T/ORL) faces: 400 grey 64x64 images, 40 people x 10, identity 0..39.

    As scikit-learn does, the raw bytes (0..242) are min-max scaled to [0, 1]; we map that
    back with x 255 and rounding, so pixel values span 0..255. `size` resizes
    (antialiased) to size x size; the set is grey only (`channels=1`). `download=True` lets scikit-learn fetch the file
    into `<root>/scikit_learn_data` when it is missing and there is internet.
    """
    size = check_size(size)
    check_channels(channels, (1,), "olivetti")
    download = check_bool(download, "download")
    root = data_root(root)
    data_home = root / "scikit_learn_data"
    pkz = data_home / "olivetti_py3.pkz"  # scikit-learn's cache name (its _pkl_filepath adds _py3)
    if not data_exists("olivetti", pkz):
        if not download:
            raise missing_data(
                "olivetti", pkz, root, "scikit_learn_data/olivetti_py3.pkz",
                "Pass download=True on a machine with internet (scikit-learn fetches it into the data root).",
            )

        try:  # downloads the .mat and writes the .pkz, which is then read like any other
            with no_leftover_folders(data_home):
                fetch_olivetti_faces(data_home=str(data_home), download_if_missing=True)
        except OSError as err:  # includes URLError (no internet) and read-only roots
            raise missing_data(
                "olivetti", pkz, root, "scikit_learn_data/olivetti_py3.pkz",
                f"Downloading it failed ({err}); check the internet connection and that the data root is writable.",
            ) from err
    raw = read_joblib(
        "olivetti", pkz,
        "Fetch a fresh copy with `python -m facelib data fetch olivetti --force` on a machine with internet, "
        "or copy a good olivetti_py3.pkz there.")
    images = to_nchw(to_levels(_olivetti_images(raw, pkz), f"olivetti: {pkz}", full_scale=1.0))
    if size != images.shape[-1]:
        images = square_resize(images, size)
    return FaceDataset(
        images=images,
        identity=np.repeat(np.arange(40, dtype=np.int64), 10),
        factors=None,
        name="olivetti",
        identity_names=[f"s{i + 1}" for i in range(40)],  # the ORL folder names s1..s40
        meta={"source": str(pkz), "options": {"size": size, "channels": 1}},
    )
