"""LFW (Labeled Faces in the Wild) as `FaceDataset`s: the people (`load_lfw_people`) and the
official pair lists (`load_lfw_pairs`, View 1 and 2).

The on-disk layout is scikit-learn's (`<root>/scikit_learn_data/lfw_home/`), and scikit-learn
downloads it when it is missing and there is internet. The JPEGs are decoded here, exactly as
scikit-learn's fetchers do (same crop, resize, grey mean and order), but scikit-learn's joblib
cache is never read: it is a pickle, so a crafted one runs code, and it is keyed on file paths,
so an edited pair list would be served with the old images. facelib's own cache holds plain
arrays (`.npz`, read with allow_pickle=False) under `lfw_home/joblib/facelib/` (the folder the
data README calls LFW's cache, safe to delete), keyed on a digest of the pair list's bytes and
of every image's name, size and times. When `lfw_home/` is read-only (a shared copy) the
loaders use a writable mirror in facelib's cache folder ($FACELIB_CACHE, else ~/.cache/facelib)
that links to the images and pair lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.datasets._lfw import _check_fetch_lfw

from ._common import (
    CorruptDataError,
    DataPermissionError,
    cache_dir,
    check_bool,
    check_choice,
    check_size,
    data_exists,
    is_writable_dir,
    missing_data,
    no_leftover_folders,
    permission_error,
    read_data_file,
    to_nchw,
)
from .dataset import PAIR_COLUMNS, FaceDataset
from .datasets import check_channels, register_dataset
from .paths import data_root
from .pixels import to_levels

__all__ = [
    "load_lfw_people",
    "load_lfw_pairs",
    "read_lfw_pairs_file",
    "lfw_data_home",
    "LFW_PAIR_FILES",
    "LFW_IMAGE_SIDE",
]

#: `split` of lfw-pairs -> official pair list (View 1: train/test, View 2: 10_folds).
LFW_PAIR_FILES = {"train": "pairsDevTrain.txt", "test": "pairsDevTest.txt", "10_folds": "pairs.txt"}
#: LFW images are 250 x 250.
LFW_IMAGE_SIDE = 250
_LFW_FOLDER = "lfw_funneled"  # scikit-learn's name for the (funneled) image folder
_CACHE_FOLDER = Path("joblib") / "facelib"  # under lfw_home
_CACHE_VERSION = 1  # bump when the decoding changes, so old cache files are not served
#: scikit-learn's defaults for resize and slice_ (used when size=None and they are not given).
_SK_RESIZE = 0.5
_SK_SLICE = (slice(70, 195), slice(78, 172))
_REMEDY = ("Replace the damaged file with a good copy, or fetch LFW again with "
           "`python -m facelib data fetch lfw --force` on a machine with internet.")


def _lfw_files(what: str, home: Path, download: bool, root) -> Path:
    """`home/lfw_home` with its pair lists and images, downloaded by scikit-learn when missing:
    an offline download becomes DataNotFoundError, with nothing left behind."""
    src = home / "lfw_home"
    if all(data_exists(what, src / f) for f in [*LFW_PAIR_FILES.values(), _LFW_FOLDER]):
        return src

    try:
        with no_leftover_folders(home):
            _check_fetch_lfw(data_home=str(home), funneled=True, download_if_missing=download)
    except DataPermissionError:
        raise
    except OSError as err:  # URLError: no internet, or the site is down
        r = data_root(root)
        raise missing_data(
            what, src, r, "scikit_learn_data/lfw_home/{pairs.txt,pairsDevTrain.txt,pairsDevTest.txt,lfw_funneled/}",
            f"Downloading it failed ({type(err).__name__}: {err}); check the internet connection.",
        ) from err
    return src


# -- decoding the JPEGs (as scikit-learn's _load_imgs) and facelib's content-keyed cache ---------
def _listing(what: str, folder: Path, people: Iterable[str] | None = None) -> dict[str, list[str]]:
    """person -> sorted file names of `folder/person` (every person folder when `people` is None).

    Sorted listdir is what the 1-based image numbers of the pair lists index."""
    try:
        names = sorted(people) if people is not None else sorted(
            p for p in os.listdir(folder) if (folder / p).is_dir())
        out = {}
        for person in names:
            if people is not None and not (folder / person).is_dir():
                raise CorruptDataError(
                    f"data set {what!r}: the pair list names {person}, but {folder / person} is not a folder of "
                    f"their images. {_REMEDY}")
            out[person] = sorted(os.listdir(folder / person))
        return out
    except PermissionError as err:
        raise permission_error(what, folder, err) from err


def _content_digest(what: str, folder: Path, listing: dict[str, list[str]], extra: bytes = b"") -> str:
    """sha256 over `extra` (a pair list's bytes) and every listed image's name, size and times:
    editing, adding or replacing a file changes it, so a cache keyed on it cannot go stale."""
    h = hashlib.sha256(extra)
    try:
        for person, files in listing.items():
            for f in files:
                st = os.stat(folder / person / f)
                h.update(f"{person}/{f}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
    except PermissionError as err:
        raise permission_error(what, folder, err) from err
    return h.hexdigest()


def _crop(opts: dict[str, Any]) -> tuple[tuple[int, int, int, int], tuple[int, int] | None, tuple[int, int]]:
    """(PIL crop box, resize (w, h) or None, output (h, w)) as scikit-learn computes them."""
    resize = opts.get("resize", _SK_RESIZE)
    rows, cols = opts.get("slice_", _SK_SLICE)
    top, bottom = rows.start or 0, LFW_IMAGE_SIDE if rows.stop is None else rows.stop
    left, right = cols.start or 0, LFW_IMAGE_SIDE if cols.stop is None else cols.stop
    h, w = (bottom - top) // (rows.step or 1), (right - left) // (cols.step or 1)
    if resize is not None:
        h, w = int(float(resize) * h), int(float(resize) * w)
    return (left, top, right, bottom), (None if resize is None else (w, h)), (h, w)


def _decode(what: str, paths: list[Path], opts: dict[str, Any], color: bool) -> np.ndarray:
    """The JPEGs at `paths`, cropped, resized and (grey) RGB-averaged as scikit-learn's
    `_load_imgs` does, as uint8 levels (N x H x W, or N x H x W x 3); a file that fails is named."""
    box, resize, (h, w) = _crop(opts)
    out = np.empty((len(paths), h, w, 3) if color else (len(paths), h, w), dtype=np.uint8)

    def one(path: Path) -> np.ndarray:
        with Image.open(path) as im:
            im = im.convert("RGB") if im.mode != "RGB" else im
            im = im.crop(box)
            if resize is not None:
                im = im.resize(resize)
            face = np.asarray(im, dtype=np.float32)
        face /= 255.0
        if not color:
            face = face.mean(axis=2)
        return to_levels(face, f"{what}: {path}", full_scale=1.0)

    for i, path in enumerate(paths):
        out[i] = read_data_file(what, path, lambda: one(path), _REMEDY)
    return out


def _plain(opts: dict[str, Any]) -> dict[str, Any]:
    """Decoding options as JSON-able values, for the cache key."""
    box, resize, shape = _crop(opts)
    return {"box": box, "resize": resize, "shape": shape}


def _image_shape(opts: dict[str, Any], color: bool, n: int) -> tuple[int, ...]:
    h, w = _crop(opts)[2]
    return (n, h, w, 3) if color else (n, h, w)


def _cached(what: str, src: Path, kind: str, key: dict[str, Any], digest: str, shape: tuple[int, ...],
            build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """`build()`'s arrays, from facelib's cache file for (`kind`, `key`, `digest`) when it is there.

    The file is .npz read with allow_pickle=False, so it holds only plain arrays and nothing in
    it can run; one that cannot be read, or whose uint8 images are not of `shape`, is rebuilt
    (with a warning). Files of the same kind and options built from older content are removed
    when a new one is written.
    """
    folder = src / _CACHE_FOLDER
    okey = hashlib.sha1(json.dumps([kind, key, _CACHE_VERSION], sort_keys=True).encode()).hexdigest()[:12]
    path = folder / f"{kind}-{okey}-{digest[:20]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            images = data.get("images")
            if images is None or images.dtype != np.uint8 or images.shape != shape:
                raise ValueError(f"expected uint8 images of shape {shape}")
            if any(len(v) != shape[0] for k, v in data.items() if k in ("target",)):
                raise ValueError(f"expected {shape[0]} targets")
            return data
        except Exception as err:  # noqa: BLE001 - facelib's own cache: rebuilt, never trusted
            warnings.warn(f"{what}: facelib's LFW cache {path} cannot be read ({type(err).__name__}: {err}); "
                          "rebuilding it from the images", stacklevel=3)
    data = build()
    tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, **data)
        os.replace(tmp, path)  # whole or not at all: a reader never sees half a file
        for old in folder.glob(f"{kind}-{okey}-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(f"{what}: could not write the LFW cache {path} ({err}); the images will be decoded "
                      "again next time. Set FACELIB_CACHE to a writable folder to keep it.", stacklevel=3)
    finally:
        if tmp.exists():
            tmp.unlink()
    return data


def _people(what: str, src: Path, opts: dict[str, Any], color: bool, min_faces: int) -> dict[str, np.ndarray]:
    """lfw_people as scikit-learn builds it (images, target, target_names; shuffled with seed 42),
    from facelib's cache when the images have not changed."""
    folder = src / _LFW_FOLDER
    listing = _listing(what, folder)

    def build() -> dict[str, np.ndarray]:
        names, paths = [], []
        for person, files in listing.items():
            if len(files) >= min_faces:
                names += [person.replace("_", " ")] * len(files)
                paths += [folder / person / f for f in files]
        if not paths:
            raise ValueError(f"lfw-people: no person has min_faces_per_person={min_faces} images; use a smaller value")
        target_names = np.unique(names)
        target = np.searchsorted(target_names, names)
        order = np.arange(len(paths))
        np.random.RandomState(42).shuffle(order)
        images = _decode(what, [paths[i] for i in order], opts, color)
        return {"images": images, "target": target[order].astype(np.int64), "target_names": target_names}

    key = {"min_faces": int(min_faces), "color": bool(color), **_plain(opts)}
    n = sum(len(files) for files in listing.values() if len(files) >= min_faces)
    return _cached(what, src, "people", key, _content_digest(what, folder, listing),
                   _image_shape(opts, color, n), build)


# -- LFW: data home with a writable cache ------------------------------------------------
def lfw_data_home(
    root: str | os.PathLike | None = None, download: bool = True, cache: str | os.PathLike | None = None
) -> Path:
    """The LFW `data_home` the loaders read (and scikit-learn downloads into).

    `<root>/scikit_learn_data` when its `lfw_home/` is writable (or must be
    downloaded into); otherwise a folder under the cache whose `lfw_home/` holds
    symlinks to the pair lists and `lfw_funneled/`, so facelib's decoded-image cache
    lands there and the shared copy stays untouched.
    """
    root = data_root(root)
    sk_home = root / "scikit_learn_data"
    src = sk_home / "lfw_home"
    needed = [src / f for f in LFW_PAIR_FILES.values()] + [src / _LFW_FOLDER]
    missing = [p for p in needed if not data_exists("lfw", p)]
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

    # Read-only copy: mirror it with links, one mirror per source folder, so the cache
    # (keyed on content, see _cached) has a writable home.
    src = src.resolve()
    key = hashlib.sha1(str(src).encode()).hexdigest()[:12]
    home = cache_dir(cache) / "scikit_learn_data" / f"lfw-{key}"
    lfw_home = home / "lfw_home"
    try:
        lfw_home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(
            f"lfw: {src} is read-only, so facelib's LFW cache must go elsewhere, but the cache folder "
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


@register_dataset("lfw-people", channels=(1, 3))
def load_lfw_people(
    *,
    size: int | None = 64,
    channels: int = 1,
    crop: int = 150,
    resize: float | None = None,
    slice_: tuple[slice, slice] | None = None,
    min_faces_per_person: int = 0,
    exclude_pairs: str | None = None,
    download: bool = True,
    cache: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> FaceDataset:
    """LFW people (13,233 images of 5,749 people with the default min_faces_per_person=0).

    `exclude_pairs` (a `split` of lfw-pairs: "train" / "test": View 1's pair lists, "10_folds":
    View 2's) drops every
    image of every person named in that official pair list: `exclude_pairs="test"` is the
    training set of a model that is then shown on View 1's test faces (it never saw their people).

    Default crop: the centre `crop` x `crop` (150) of the 250 x 250 deep-funneled
    images resized to `size` x `size` (64), as in the original project. With
    `size=None`, scikit-learn's own `resize` (default 0.5) and `slice_` (default
    rows 70:195, columns 78:172) apply. `channels=1` averages RGB to grey, as
    scikit-learn does; `channels=3` keeps RGB. Order and identity ids are scikit-learn's (shuffled with
    seed 42; ids index the sorted names). The first call decodes every JPEG (slow);
    the result is cached until an image changes (see the module docstring).
    """
    opts = _lfw_size_options(size, crop, resize, slice_)
    color = check_channels(channels, (1, 3), "lfw-people") == 3
    download = check_bool(download, "download")
    if isinstance(min_faces_per_person, bool) or not isinstance(min_faces_per_person, (int, np.integer)) or min_faces_per_person < 0:
        raise ValueError(f"min_faces_per_person must be an int >= 0, got {min_faces_per_person!r}")
    if exclude_pairs is not None:
        check_choice(exclude_pairs, LFW_PAIR_FILES, "lfw-people: exclude_pairs (a split of lfw-pairs)")
    home = lfw_data_home(root, download, cache)
    src = _lfw_files("lfw-people", home, download, root)
    people = _people("lfw-people", src, opts, color, int(min_faces_per_person))
    images, target = to_nchw(people["images"]), people["target"].astype(np.int64)
    names = [str(n) for n in people["target_names"]]
    options = {"size": size, "crop": crop, "channels": int(channels), "min_faces_per_person": int(min_faces_per_person), **opts}
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
    A line that pairs an image with itself is refused: it would score as a perfect match.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except PermissionError as err:
        raise permission_error("lfw-pairs", path, err) from err
    return _parse_pairs(data, path)


def _parse_pairs(data: bytes, path: Path) -> pd.DataFrame:
    """`read_lfw_pairs_file` on the bytes already read (so a cache key and the table agree)."""
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not text ({err}); expected an LFW pair list") from None
    lines = [(i, ln.split()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        raise ValueError(f"{path} is empty; expected an LFW pair list")
    try:
        header = [int(v) for v in lines[0][1]]
    except ValueError:
        raise ValueError(f"{path}: first line {lines[0][1]!r} is not an LFW header ('n_folds n_per_class')") from None
    n_folds, n_per = (1, header[0]) if len(header) == 1 else (header[0], header[1])
    rows = []
    for i, parts in lines[1:]:
        try:
            if len(parts) == 3:
                row = (parts[0], int(parts[1]), parts[0], int(parts[2]), True)
            elif len(parts) == 4:
                row = (parts[0], int(parts[1]), parts[2], int(parts[3]), False)
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}, line {i}: expected 'name i j' or 'name1 i name2 j', got {parts!r}") from None
        if row[1] < 1 or row[3] < 1:
            raise ValueError(f"{path}, line {i}: image numbers start at 1, got {parts!r}")
        if row[0] == row[2] and row[1] == row[3]:
            raise ValueError(
                f"{path}, line {i}: {' '.join(parts)!r} pairs image {row[1]} of {row[0]} with itself, which "
                "scores as a perfect match; fix the image number or remove the line (and correct the header)")
        if row[0] == row[2] and not row[4]:
            raise ValueError(f"{path}, line {i}: {' '.join(parts)!r} is a different-person line naming one person "
                             f"twice; write it as '{row[0]} {row[1]} {row[3]}'")
        rows.append(row)
    if len(rows) != n_folds * 2 * n_per:
        raise ValueError(
            f"{path}: header promises {n_folds} fold(s) x 2 x {n_per} pairs, found {len(rows)} pair lines"
        )
    table = pd.DataFrame(rows, columns=["name1", "image1", "name2", "image2", "same"])
    table["fold"] = np.arange(len(rows)) // (2 * n_per)
    return table


def _pair_images(what: str, src: Path, split: str, opts: dict[str, Any],
                 color: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """(pair table, 2 x n_pairs images: pair i = rows 2i, 2i+1), the images from facelib's cache
    when neither the pair list nor any image of its people has changed."""
    list_path, folder = src / LFW_PAIR_FILES[split], src / _LFW_FOLDER
    try:
        data = list_path.read_bytes()
    except PermissionError as err:
        raise permission_error(what, list_path, err) from err
    table = _parse_pairs(data, list_path)
    listing = _listing(what, folder, set(table["name1"]) | set(table["name2"]))

    def build() -> dict[str, np.ndarray]:
        paths = []
        for line, row in enumerate(table.itertuples(index=False), start=2):
            pair = []
            for name, number in ((row.name1, row.image1), (row.name2, row.image2)):
                files = listing[name]
                if number > len(files):
                    raise CorruptDataError(
                        f"data set {what!r}: {list_path} pairs image {number} of {name}, but {folder / name} holds "
                        f"{len(files)} file(s). {_REMEDY}")
                pair.append(folder / name / files[number - 1])
            if os.path.realpath(pair[0]) == os.path.realpath(pair[1]):
                raise CorruptDataError(
                    f"data set {what!r}: pair {line - 1} of {list_path} ({row.name1} {row.image1}, {row.name2} "
                    f"{row.image2}) reads one file twice: {pair[0]} and {pair[1]} are the same file (through a "
                    "link), so the pair would score as a perfect match; replace the link with the real image")
            paths += pair
        return {"images": _decode(what, paths, opts, color)}

    key = {"color": bool(color), **_plain(opts)}
    digest = _content_digest(what, folder, listing, extra=data)
    shape = _image_shape(opts, color, 2 * len(table))
    return table, _cached(what, src, f"pairs-{split}", key, digest, shape, build)["images"]


@register_dataset("lfw-pairs", channels=(1, 3))
def load_lfw_pairs(
    *,
    split: str = "train",
    size: int | None = 64,
    channels: int = 1,
    crop: int = 150,
    resize: float | None = None,
    slice_: tuple[slice, slice] | None = None,
    other_images: bool = False,
    download: bool = True,
    cache: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> FaceDataset:
    """The official LFW verification pairs as 2 x n_pairs images (pair i = rows 2i, 2i+1).

    `split`: "train" (View 1, 2,200 pairs), "test" (View 1, 1,000 pairs) or
    "10_folds" (View 2, 6,000 pairs in 10 folds of 600). `pair_table` has the
    official pairs with their fold (View 1: fold 0). The images are read in the order
    of the one parse of the pair list that also gives each image its person (identity,
    identity_names: names with spaces, sorted). Crop and channels as in `load_lfw_people`.

    `other_images=True` appends, after the 2 x n_pairs pair images, every other LFW image of the
    people named in the list (from lfw_people with the same crop; images equal
    to one of the person's pair images are left out). No pair refers to them: they are the
    "unrestricted" training images, which LFW's protocol lets a method use for the training
    folds' people, whose names it then knows (`facelib.data.pairs.person_folds`).
    """
    check_choice(split, LFW_PAIR_FILES, "lfw-pairs: split")
    opts = _lfw_size_options(size, crop, resize, slice_)
    color = check_channels(channels, (1, 3), "lfw-pairs") == 3
    download = check_bool(download, "download")
    home = lfw_data_home(root, download, cache)
    src = _lfw_files("lfw-pairs", home, download, root)
    table, pair_images = _pair_images("lfw-pairs", src, split, opts, color)
    n_pairs = len(table)
    images = to_nchw(pair_images)

    names = np.empty(2 * n_pairs, dtype=object)
    names[0::2], names[1::2] = table["name1"].to_numpy(), table["name2"].to_numpy()
    names = np.array([n.replace("_", " ") for n in names])
    other_images = check_bool(other_images, "lfw-pairs: other_images")
    if other_images:
        extra, extra_names = _other_images_of(names, images, src, color, opts)
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
            "source": str(data_root(root) / "scikit_learn_data" / "lfw_home" / LFW_PAIR_FILES[split]),
            "options": _meta_options({"split": split, "size": size, "crop": crop, "channels": int(channels),
                                      "other_images": other_images, **opts}),
            "n_pair_images": 2 * n_pairs,
        },
    )


def _other_images_of(names: np.ndarray, images, src: Path, color: bool, opts: dict[str, Any]):
    """LFW images of the people in `names` that are not among `images` (their pair images).

    Pair images and lfw_people images come from the same JPEGs through the same crop and
    resize, so a pair image's copy in lfw_people is pixel-identical and is dropped by hash.
    """
    people = _people("lfw-pairs", src, opts, color, 0)
    pimages = to_nchw(people["images"])
    pnames = np.asarray(people["target_names"])[people["target"]]
    if pimages.shape[1:] != images.shape[1:]:  # pragma: no cover - same options give the same shape
        raise RuntimeError(f"lfw_people images {tuple(pimages.shape[1:])} differ from the pairs' {tuple(images.shape[1:])}")

    def key(name, img) -> tuple[str, str]:
        return name, hashlib.sha1(img.numpy().tobytes()).hexdigest()

    seen = {key(n, img) for n, img in zip(names, images)}
    wanted = set(names)
    keep = [i for i, n in enumerate(pnames) if n in wanted and key(n, pimages[i]) not in seen]
    return pimages[torch.as_tensor(keep, dtype=torch.long)], pnames[keep]
