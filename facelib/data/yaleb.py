"""Extended Yale Face Database B (cropped): identity with labelled lighting.

Identity and light direction are labelled separately, which is what the
identity/nuisance disentanglement experiments need. Read from
`<root>/extended_yale_b/extended_yale_b_cropped.npz`, which `python -m facelib data fetch yaleb`
makes from the published 'CroppedYale' archive (`facelib.data.fetch.convert_cropped_yale`).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from ._common import check_choice, check_size, data_exists, missing_data, read_data_file, square_resize
from .dataset import FaceDataset
from .datasets import SPLITS, check_channels, register_dataset
from .paths import data_root
from .pixels import to_levels

__all__ = ["load_yaleb", "YALEB_FILE", "YALEB_HELD_OUT", "YALEB_GROUPS"]

#: Path of the file under the data root.
YALEB_FILE = "extended_yale_b/extended_yale_b_cropped.npz"

#: The 8 people (identity labels) held out of Yale B training, person-disjoint:
#: `sorted(np.random.default_rng(0).choice(38, 8, replace=False))`; the other 30 train.
YALEB_HELD_OUT = (0, 1, 2, 9, 10, 16, 20, 26)

#: Grouped (ModVAE / DC-IGN) batches of Yale B: the factor that varies in a group -> its columns.
#: "light": one person, the light direction varies; "azimuth" / "elevation": one person and the
#: other light angle, that angle varies; "identity": one light direction, the person varies.
YALEB_GROUPS = {"light": ("azimuth", "elevation"), "azimuth": ("azimuth",), "elevation": ("elevation",),
                "identity": ("identity",)}


def _parse_size(size) -> int | None:
    """64 (or another int) -> square side; None -> the 96 x 84 images."""
    if size is None:
        return None
    if isinstance(size, (str, tuple, list)):
        raise ValueError(f"yaleb: size={size!r} is not allowed; size is an int (the side of square images, 64 "
                         "is native), or None for the stored 96 x 84 images")
    return check_size(size)


@register_dataset("yaleb", channels=(1,))
def load_yaleb(*, size: int | None = 64, channels: int = 1, split: str = "all",
               groups: list[str] | tuple[str, ...] | None = None,
               root: str | os.PathLike | None = None) -> FaceDataset:
    """Extended Yale B cropped: 2,414 grey images of 38 people under 64 light directions.

    `size=64` gives the stored square 64 x 64 crops; `size=None` the
    stored 96 x 84 half-resolution images; any other int resizes (antialiased):
    smaller sides from the 64 x 64 crops, larger from the same square region of the
    96 x 84 images (rows 6:90), so nothing is upsampled needlessly. identity is the
    contiguous label 0..37; factors has azimuth and elevation (degrees) and the
    original subject_id (yaleB number). Grey only (`channels=1`).

    `split="train"` keeps the 30 people outside `YALEB_HELD_OUT`, `"test"` those 8 (models are
    scored on people they never saw), `"all"` (default) all 38. `groups` (names of `YALEB_GROUPS`, e.g. ["azimuth",
    "elevation", "identity"]) returns the images in grouped-training groups
    (`FaceDataset.grouped`), one copy per named factor.
    """
    side = _parse_size(size)
    check_channels(channels, (1,), "yaleb")
    check_choice(split, SPLITS, "yaleb: split")
    if groups is not None:
        if isinstance(groups, str) or not groups:
            raise ValueError(f"yaleb: groups must be a non-empty list of factor names from {list(YALEB_GROUPS)}, "
                             f"got {groups!r}")
        for g in groups:
            check_choice(g, list(YALEB_GROUPS), "yaleb: groups entry")
    root = data_root(root)
    path = root / YALEB_FILE
    if not data_exists("yaleb", path):
        raise missing_data("yaleb", path, root, YALEB_FILE)
    def read():
        with np.load(path) as d:
            if side is None:
                raw = d["images_96x84"]
            elif side <= 64:
                raw = d["images_64x64"]
            else:
                raw = d["images_96x84"][:, 6:90, :]  # the square (84 x 84) the 64 x 64 crops were made from
            return raw, d["label"], d["subject_id"], d["azimuth"], d["elevation"]

    raw, label, subject, azimuth, elevation = read_data_file(
        "yaleb", path, read,
        "Fetch it again with `python -m facelib data fetch yaleb --force` (it downloads and converts the "
        "'CroppedYale' release), or copy a good one.")
    images = torch.from_numpy(np.ascontiguousarray(to_levels(raw[:, None], f"yaleb: {path}")))
    if side is not None and images.shape[-1] != side:
        images = square_resize(images, side)
    factors = pd.DataFrame(
        {"azimuth": azimuth.astype(np.int64), "elevation": elevation.astype(np.int64), "subject_id": subject.astype(np.int64)}
    )
    # identity_names[label] = original subject folder name (yaleB14 does not exist).
    names = {int(l): f"yaleB{int(s):02d}" for l, s in zip(label, subject)}
    options = {"size": side, "channels": 1, "split": split,
               **({"groups": list(groups)} if groups is not None else {})}
    data = FaceDataset(
        images=images,
        identity=label.astype(np.int64),
        factors=factors,
        name="yaleb",
        identity_names=[names[i] for i in range(max(names) + 1)],
        meta={"source": str(path), "options": options},
    )
    if split != "all":
        held_out = np.isin(data.identity, YALEB_HELD_OUT)
        data = data.subset(held_out if split == "test" else ~held_out)
    if groups is not None:
        data = data.grouped({g: YALEB_GROUPS[g] for g in groups}, fixed=("identity", "azimuth", "elevation"))
    return data
