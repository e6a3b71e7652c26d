"""LFW (Labeled Faces in the Wild) through scikit-learn's fetchers, as `FaceDataset`s:
the people (`load_lfw_people`) and the official pair lists (`load_lfw_pairs`, View 1 and 2).

scikit-learn downloads LFW when a machine has internet and reads its own on-disk layout
otherwise (`<root>/scikit_learn_data/`), so facelib does not re-implement it. scikit-learn
writes a joblib cache inside `lfw_home/`; when that folder is read-only (a shared copy) the
loaders build a writable mirror in facelib's cache folder ($FACELIB_CACHE, else
~/.cache/facelib) that links to the images and pair lists, and point scikit-learn there.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ._common import (
    cache_dir,
    check_bool,
    check_choice,
    check_size,
    is_writable_dir,
    missing_data,
    no_leftover_folders,
    read_data_file,
    to_nchw,
)
from .dataset import PAIR_COLUMNS, FaceDataset
from .paths import data_root
from .pixels import to_uint8

__all__ = [
    "load_lfw_people",
    "load_lfw_pairs",
    "read_lfw_pairs_file",
    "lfw_data_home",
    "LFW_PAIR_FILES",
    "LFW_IMAGE_SIDE",
]

#: subset -> official pair list (View 1: train/test, View 2: 10_folds).
LFW_PAIR_FILES = {"train": "pairsDevTrain.txt", "test": "pairsDevTest.txt", "10_folds": "pairs.txt"}
#: LFW images are 250 x 250.
LFW_IMAGE_SIDE = 250
_LFW_FOLDER = "lfw_funneled"  # scikit-learn's name for the (funneled) image folder


def _fetch_lfw(what: str, fetch, home: Path, download: bool, root):
    """Call a scikit-learn LFW fetcher: an offline download becomes DataNotFoundError (with
    nothing left behind), a damaged image or list a CorruptDataError naming the file."""
    src = home / "lfw_home"
    complete = all((src / f).exists() for f in [*LFW_PAIR_FILES.values(), _LFW_FOLDER])
    if complete:
        return read_data_file(
            what, src, fetch,
            "Replace the damaged file with a good copy (e.g. from the LFW archive), or delete "
            "lfw_home and load again with download=True on a machine with internet.")
    try:
        with no_leftover_folders(home):
            return fetch()
    except OSError as err:  # URLError: no internet, or the site is down
        r = data_root(root)
        raise missing_data(
            what, src, r, "scikit_learn_data/lfw_home/{pairs.txt,pairsDevTrain.txt,pairsDevTest.txt,lfw_funneled/}",
            f"Downloading it failed ({type(err).__name__}: {err}); check the internet connection, or put "
            "a copy of LFW there by hand (see data/README.md).",
        ) from err


# -- LFW: data home with a writable joblib cache ----------------------------------------
def lfw_data_home(
    root: str | os.PathLike | None = None, download: bool = True, cache: str | os.PathLike | None = None
) -> Path:
    """The `data_home` to hand scikit-learn's LFW fetchers.

    `<root>/scikit_learn_data` when its `lfw_home/` is writable (or must be
    downloaded into); otherwise a folder under the cache whose `lfw_home/` holds
    symlinks to the pair lists and `lfw_funneled/`, so scikit-learn's joblib cache
    lands there and the shared copy stays untouched.
    """
    root = data_root(root)
    sk_home = root / "scikit_learn_data"
    src = sk_home / "lfw_home"
    needed = [src / f for f in LFW_PAIR_FILES.values()] + [src / _LFW_FOLDER]
    missing = [p for p in needed if not p.exists()]
    if missing:
        if not download:
            raise missing_data(
                "lfw", src, root, "scikit_learn_data/lfw_home/{pairs.txt,pairsDevTrain.txt,pairsDevTest.txt,lfw_funneled/}",
                f"Missing: {', '.join(p.name for p in missing)}. Pass download=True on a machine with "
                "internet (scikit-learn fetches LFW, ~200 MB, into the data root).",
            )
        if not is_writable_dir(sk_home):
            raise missing_data(
                "lfw", src, root, "scikit_learn_data/lfw_home/",
                f"It cannot be downloaded there because {sk_home} is not writable; point FACELIB_DATA "
                "(or root=) at a writable folder and keep download=True.",
            )
        return sk_home
    if is_writable_dir(src):
        return sk_home

    # Read-only copy: mirror it with links. One mirror per source folder, because
    # joblib keys its cache on the (link) paths, not on what they point to.
    src = src.resolve()
    key = hashlib.sha1(str(src).encode()).hexdigest()[:12]
    home = cache_dir(cache) / "scikit_learn_data" / f"lfw-{key}"
    lfw_home = home / "lfw_home"
    try:
        lfw_home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(
            f"lfw: {src} is read-only, so scikit-learn's cache must go elsewhere, but the cache folder "
            f"{lfw_home} cannot be created ({err}); set FACELIB_CACHE to a writable folder"
        ) from err
    for name in [*LFW_PAIR_FILES.values(), _LFW_FOLDER]:
        link, target = lfw_home / name, src / name
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(target, target_is_directory=target.is_dir())
        except FileExistsError:  # another process made it meanwhile
            pass
    return home


def _lfw_size_options(size, crop, resize, slice_) -> dict[str, Any]:
    """scikit-learn's (resize, slice_) from facelib's square `size`/`crop`, or passed through."""
    size = check_size(size, allow_none=True)
    if size is not None:
        if resize is not None or slice_ is not None:
            raise ValueError(
                "pass either size= (square centre crop of side crop=, resized to size x size) or "
                "scikit-learn's resize=/slice_= with size=None, not both"
            )
        crop = check_size(crop, "crop")
        if crop > LFW_IMAGE_SIDE:
            raise ValueError(f"crop must be at most {LFW_IMAGE_SIDE} (the LFW image side), got {crop}")
        start = (LFW_IMAGE_SIDE - crop) // 2
        # scikit-learn computes the output side as int(resize * crop); the +0.5 makes
        # that land on `size` despite floating point.
        return {"slice_": (slice(start, start + crop), slice(start, start + crop)), "resize": (size + 0.5) / crop}
    out: dict[str, Any] = {}
    if resize is not None:
        if isinstance(resize, bool) or not isinstance(resize, (int, float)) or resize <= 0:
            raise ValueError(f"resize must be a positive number (scale factor), got {resize!r}")
        out["resize"] = float(resize)
    if slice_ is not None:
        if not (isinstance(slice_, tuple) and len(slice_) == 2 and all(isinstance(s, slice) for s in slice_)):
            raise ValueError(f"slice_ must be a (rows, columns) tuple of two slices, got {slice_!r}")
        out["slice_"] = slice_
    return out


def _meta_options(opts: dict[str, Any]) -> dict[str, Any]:
    """Options made plain (slices as [start, stop]) for meta/checkpoints."""
    out = {}
    for k, v in opts.items():
        if k == "slice_" and v is not None:
            v = [[s.start, s.stop] for s in v]
        out[k] = v
    return out


def load_lfw_people(
    *,
    size: int | None = 64,
    crop: int = 150,
    color: bool = False,
    resize: float | None = None,
    slice_: tuple[slice, slice] | None = None,
    min_faces_per_person: int = 0,
    exclude_pairs: str | None = None,
    download: bool = True,
    cache: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> FaceDataset:
    """LFW people (13,233 images of 5,749 people with the default min_faces_per_person=0).

    `exclude_pairs` ("train" / "test": View 1's pair lists, "10_folds": View 2's) drops every
    image of every person named in that official pair list: `exclude_pairs="test"` is the
    training set of a model that is then shown on View 1's test faces (it never saw their people).

    Default crop: the centre `crop` x `crop` (150) of the 250 x 250 deep-funneled
    images resized to `size` x `size` (64), as in the original project. With
    `size=None`, scikit-learn's own `resize` (default 0.5) and `slice_` (default
    rows 70:195, columns 78:172) apply. `color=False` averages RGB to grey, as
    scikit-learn does. Order and identity ids are scikit-learn's (shuffled with
    seed 42; ids index the sorted names). The first call decodes every JPEG (slow);
    scikit-learn caches the result.
    """
    from sklearn.datasets import fetch_lfw_people

    opts = _lfw_size_options(size, crop, resize, slice_)
    color = check_bool(color, "color")
    download = check_bool(download, "download")
    if isinstance(min_faces_per_person, bool) or not isinstance(min_faces_per_person, (int, np.integer)) or min_faces_per_person < 0:
        raise ValueError(f"min_faces_per_person must be an int >= 0, got {min_faces_per_person!r}")
    if exclude_pairs is not None:
        check_choice(exclude_pairs, LFW_PAIR_FILES, "exclude_pairs")
    home = lfw_data_home(root, download, cache)
    bunch = _fetch_lfw("lfw-people", lambda: fetch_lfw_people(
        data_home=str(home), color=color, min_faces_per_person=int(min_faces_per_person),
        download_if_missing=download, **opts,
    ), home, download, root)
    images, target = to_nchw(to_uint8(bunch.images)), np.asarray(bunch.target, dtype=np.int64)
    names = [str(n) for n in bunch.target_names]
    options = {"size": size, "crop": crop, "color": color, "min_faces_per_person": int(min_faces_per_person), **opts}
    if exclude_pairs is not None:
        table = read_lfw_pairs_file(home / "lfw_home" / LFW_PAIR_FILES[exclude_pairs])
        excluded = set(table["name1"]) | set(table["name2"])
        keep = np.array([names[t].replace(" ", "_") not in excluded for t in target], dtype=bool)
        images, target = images[torch.from_numpy(keep)], target[keep]
        options["exclude_pairs"] = exclude_pairs
    return FaceDataset(
        images=images,
        identity=target,
        factors=None,
        name="lfw-people",
        identity_names=names,
        meta={
            "source": str(data_root(root) / "scikit_learn_data" / "lfw_home"),
            "options": _meta_options(options),
        },
    )


# -- LFW pairs ---------------------------------------------------------------------
def read_lfw_pairs_file(path: str | os.PathLike) -> pd.DataFrame:
    """Parse an LFW pair list (pairs.txt, pairsDevTrain.txt, pairsDevTest.txt).

    Returns one row per pair in file order with columns name1, image1, name2,
    image2 (1-based image numbers), same (bool) and fold. The header is
    "n_folds n_per_class" (View 2: "10 300", each fold 300 same then 300
    different pairs) or "n_per_class" (View 1: one fold, numbered 0).
    """
    path = Path(path)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path} is empty; expected an LFW pair list")
    try:
        header = [int(v) for v in lines[0]]
    except ValueError:
        raise ValueError(f"{path}: first line {lines[0]!r} is not an LFW header ('n_folds n_per_class')") from None
    n_folds, n_per = (1, header[0]) if len(header) == 1 else (header[0], header[1])
    rows = []
    for i, parts in enumerate(lines[1:], start=2):
        if len(parts) == 3:
            rows.append((parts[0], int(parts[1]), parts[0], int(parts[2]), True))
        elif len(parts) == 4:
            rows.append((parts[0], int(parts[1]), parts[2], int(parts[3]), False))
        else:
            raise ValueError(f"{path}, line {i}: expected 'name i j' or 'name1 i name2 j', got {parts!r}")
    if len(rows) != n_folds * 2 * n_per:
        raise ValueError(
            f"{path}: header promises {n_folds} fold(s) x 2 x {n_per} pairs, found {len(rows)} pair lines"
        )
    table = pd.DataFrame(rows, columns=["name1", "image1", "name2", "image2", "same"])
    table["fold"] = np.arange(len(rows)) // (2 * n_per)
    return table


def load_lfw_pairs(
    *,
    subset: str = "train",
    size: int | None = 64,
    crop: int = 150,
    color: bool = False,
    resize: float | None = None,
    slice_: tuple[slice, slice] | None = None,
    people: bool = False,
    download: bool = True,
    cache: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> FaceDataset:
    """The official LFW verification pairs as 2 x n_pairs images (pair i = rows 2i, 2i+1).

    `subset`: "train" (View 1, 2,200 pairs), "test" (View 1, 1,000 pairs) or
    "10_folds" (View 2, 6,000 pairs in 10 folds of 600). `pair_table` has the
    official pairs with their fold (View 1: fold 0). scikit-learn gives only
    same/different, so the pair list is parsed here too to give each image its
    person (identity, identity_names: names with spaces, sorted). Crop options as
    in `load_lfw_people`.

    `people=True` appends, after the 2 x n_pairs pair images, every other LFW image of the
    people named in the list (from scikit-learn's lfw_people with the same crop; images equal
    to one of the person's pair images are left out). No pair refers to them: they are the
    "unrestricted" training images, which LFW's protocol lets a method use for the training
    folds' people, whose names it then knows (`facelib.data.pairs.person_folds`).
    """
    from sklearn.datasets import fetch_lfw_pairs

    check_choice(subset, LFW_PAIR_FILES, "subset")
    opts = _lfw_size_options(size, crop, resize, slice_)
    color = check_bool(color, "color")
    download = check_bool(download, "download")
    home = lfw_data_home(root, download, cache)
    bunch = _fetch_lfw("lfw-pairs", lambda: fetch_lfw_pairs(
        subset=subset, data_home=str(home), color=color, download_if_missing=download, **opts), home, download, root)
    table = read_lfw_pairs_file(home / "lfw_home" / LFW_PAIR_FILES[subset])
    n_pairs = len(table)
    target = np.asarray(bunch.target)
    if bunch.pairs.shape[0] != n_pairs or not np.array_equal(target.astype(bool), table["same"].to_numpy()):
        raise RuntimeError(
            f"lfw-pairs: the pair list {LFW_PAIR_FILES[subset]} parsed here disagrees with scikit-learn's "
            "pairs (count or same/different order); the scikit-learn version may have changed its format"
        )
    pairs = np.asarray(bunch.pairs)  # n_pairs x 2 x H x W (x 3)
    images = to_nchw(to_uint8(pairs.reshape(2 * n_pairs, *pairs.shape[2:])))

    names = np.empty(2 * n_pairs, dtype=object)
    names[0::2], names[1::2] = table["name1"].to_numpy(), table["name2"].to_numpy()
    names = np.array([n.replace("_", " ") for n in names])
    if check_bool(people, "people"):
        extra, extra_names = _other_images_of(names, images, home, color, download, opts)
        images = torch.cat([images, extra]) if len(extra) else images
        names = np.r_[names, extra_names]
    identity_names, identity = np.unique(names, return_inverse=True)
    pair_table = pd.DataFrame(
        {
            "left": np.arange(0, 2 * n_pairs, 2),
            "right": np.arange(1, 2 * n_pairs, 2),
            "same": table["same"].to_numpy(dtype=bool),
            "fold": table["fold"].to_numpy(dtype=np.int64),
        }
    )[PAIR_COLUMNS]
    return FaceDataset(
        images=images,
        identity=identity.astype(np.int64),
        factors=None,
        name="lfw-pairs",
        identity_names=[str(n) for n in identity_names],
        pair_table=pair_table,
        meta={
            "source": str(data_root(root) / "scikit_learn_data" / "lfw_home" / LFW_PAIR_FILES[subset]),
            "options": _meta_options({"subset": subset, "size": size, "crop": crop, "color": color,
                                      "people": bool(people), **opts}),
            "n_pair_images": 2 * n_pairs,
        },
    )


def _other_images_of(names: np.ndarray, images, home: Path, color: bool, download: bool,
                     opts: dict[str, Any]):
    """LFW images of the people in `names` that are not among `images` (their pair images).

    Pair images and lfw_people images come from the same JPEGs through the same crop and
    resize, so a pair image's copy in lfw_people is pixel-identical and is dropped by hash.
    """
    from sklearn.datasets import fetch_lfw_people

    bunch = _fetch_lfw("lfw-pairs", lambda: fetch_lfw_people(
        data_home=str(home), color=color, min_faces_per_person=0, download_if_missing=download, **opts),
        home, download, None)  # the pair fetch before this one already found the files
    pimages = to_nchw(to_uint8(bunch.images))
    pnames = np.asarray(bunch.target_names)[bunch.target]
    if pimages.shape[1:] != images.shape[1:]:  # pragma: no cover - same options give the same shape
        raise RuntimeError(f"lfw_people images {tuple(pimages.shape[1:])} differ from the pairs' {tuple(images.shape[1:])}")

    def key(name, img) -> tuple[str, str]:
        return name, hashlib.sha1(img.numpy().tobytes()).hexdigest()

    seen = {key(n, img) for n, img in zip(names, images)}
    wanted = set(names)
    keep = [i for i, n in enumerate(pnames) if n in wanted and key(n, pimages[i]) not in seen]
    return pimages[torch.as_tensor(keep, dtype=torch.long)], pnames[keep]
