"""Frey faces: 1,965 frames of one face (the set of Kingma & Welling's VAE paper).

No identities (all -1): useful for reconstruction and traversals, not verification.
Read from `<root>/frey_faces/frey_rawface.mat` (key `ff`, 560 x 1965 uint8); pixels of
another dtype go through `pixels.to_levels`, so a float copy in [0, 1] is scaled (with a
warning) instead of truncating to black.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from scipy.io import loadmat

from ._common import check_size, data_exists, missing_data, read_data_file, square_resize
from .dataset import FaceDataset
from .datasets import check_channels, register_dataset
from .paths import data_root
from .pixels import to_levels

__all__ = ["load_frey", "FREY_FILE", "FREY_SHAPE"]

FREY_FILE = "frey_faces/frey_rawface.mat"
#: Height x width of a frame.
FREY_SHAPE = (28, 20)
_REMEDY = "Fetch it again with `python -m facelib data fetch frey --force`, or copy a good frey_rawface.mat there."


@register_dataset("frey", channels=(1,))
def load_frey(*, size: int | None = None, channels: int = 1, root: str | os.PathLike | None = None) -> FaceDataset:
    """Frey faces, 1965 x 1 x 28 x 20 uint8, in frame order.

    `size=None` keeps the native 28 x 20; an int gives size x size from the
    centre 20 x 20 square (rows 4:24), resized antialiased, for models that need
    square input. Grey only (`channels=1`). identity is -1 (one unnamed person); factors is None.
    """
    size = check_size(size, allow_none=True)
    check_channels(channels, (1,), "frey")
    root = data_root(root)
    path = root / FREY_FILE
    if not data_exists("frey", path):
        raise missing_data("frey", path, root, FREY_FILE)
    def read():
        with open(path, "rb") as fh:  # opened here: loadmat turns a PermissionError into a bare OSError
            mat = loadmat(fh)
        if "ff" not in mat:
            raise KeyError(f"no variable 'ff' (found {sorted(k for k in mat if not k.startswith('__'))})")
        return mat["ff"]

    ff = read_data_file("frey", path, read, _REMEDY)
    if ff.ndim != 2 or ff.shape[0] != FREY_SHAPE[0] * FREY_SHAPE[1]:
        raise ValueError(f"frey: {path} key 'ff' has shape {ff.shape}, expected ({FREY_SHAPE[0] * FREY_SHAPE[1]}, n)")
    # Each column is one frame, stored row-major (as Sam Roweis distributes it).
    frames = np.ascontiguousarray(to_levels(ff.T.reshape(-1, 1, *FREY_SHAPE), f"frey: {path} key 'ff'"))
    images = torch.from_numpy(frames)
    if size is not None:
        images = square_resize(images, size)
    return FaceDataset(
        images=images,
        identity=np.full(len(frames), -1, dtype=np.int64),
        factors=None,
        name="frey",
        identity_names=None,
        meta={"source": str(path), "options": {"size": size, "channels": 1}},
    )
