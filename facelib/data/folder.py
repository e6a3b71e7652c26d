"""The user's own photos, one sub-folder per person (torchvision ImageFolder layout):

    <path>/<person>/<image>.jpg

Every image is resized (shorter side to `size`) and centre-cropped to
`size` x `size`, in grey or RGB, so the photos can be embedded by a model trained
on the other sets. A file that cannot be decoded stops the load with its name,
unless the user chose to skip such files; files that are not images by their ending
(notes.txt, Thumbs.db) are left out with a warning. 16-bit images are scaled to 8 bits,
not clipped. A `path=` one level above the person folders (every "person" holds only
sub-folders) is refused, since it would merge people.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ._common import check_bool, check_choice, check_size
from .dataset import FaceDataset
from .paths import DataNotFoundError

__all__ = ["load_folder", "UnreadableImageError", "IMAGE_EXTENSIONS"]

#: File endings read as images (torchvision's ImageFolder list).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
#: PIL modes holding more than 8 bits per grey level, and the full-scale value of each.
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


class UnreadableImageError(ValueError):
    """Some files in the photo folder are not readable images; the message lists them."""


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")  # .DS_Store, ._* and similar system files


def _list_people(folder: Path) -> tuple[list[Path], list[Path]]:
    """(person folders, loose files at the top) in sorted order."""
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    return [p for p in entries if p.is_dir()], [p for p in entries if p.is_file()]


def _read(path: Path, mode: str, size: int) -> np.ndarray:
    """Decode one photo, upright per its EXIF tag, resized and centre-cropped."""
    from PIL import Image, ImageOps
    from torchvision.transforms.v2 import functional as F

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in _WIDE_MODES or im.mode == "F":
            im = _to_8bit(im)  # convert("L") would clip 16-bit levels at 255
        im = im.convert(mode)  # forces a full decode, so truncated files fail here
    im = F.center_crop(F.resize(im, size), [size, size])
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _to_8bit(im):
    """A 16-bit (or 32-bit int / float) grey image as 8-bit "L", scaled from its full range."""
    from PIL import Image

    arr = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        full = 1.0 if arr.size and np.nanmax(arr) <= 1.0 else 255.0
    else:
        full = _WIDE_MODES[im.mode]
    return Image.fromarray(np.clip(np.rint(arr * (255.0 / full)), 0, 255).astype(np.uint8), mode="L")


def _check_depth(folder: Path, people: list[Path]) -> None:
    """Refuse a path one level too high: no "person" folder holds a photo directly, but all
    hold sub-folders with photos (those sub-folders are the people)."""
    if not people:
        return
    inner: list[str] = []
    for person in people:
        entries = [p for p in person.iterdir() if _visible(p)]
        if any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in entries):
            return
        subs = [p for p in entries if p.is_dir()]
        if not subs:
            return
        inner += [f"{person.name}/{p.name}" for p in subs[:2]]
    raise ValueError(
        f"folder: no folder under {folder} holds photos directly; they are one level deeper "
        f"({', '.join(inner[:4])}{' ...' if len(inner) > 4 else ''}), so path= looks one level too high and "
        f"would merge different people; pass path= to the folder that holds the person folders "
        f"(e.g. {people[0]}), or nested=True if each folder really is one person with albums inside"
    )


def load_folder(
    *,
    path: str | os.PathLike | None = None,
    size: int = 64,
    channels: int = 1,
    skip_unreadable: bool = False,
    nested: bool = False,
    root: str | os.PathLike | None = None,
) -> FaceDataset:
    """Photos under `path`, one sub-folder per person; identity = index of the sorted folder names.

    `channels`: 1 (grey, default, like the other sets) or 3 (RGB). Files that
    are not images (by extension) or cannot be decoded raise
    `UnreadableImageError` naming them; with `skip_unreadable=True` they are left
    out with a warning; files that are not images by their ending (notes.txt) are
    left out with a warning. Hidden files (".DS_Store") are ignored. A person's
    photos may sit in sub-folders of their folder only with `nested=True` (otherwise
    such a layout is taken as a path one level too high). `root` is not
    used (photos live wherever `path` says); it is accepted so all loaders share
    a signature. meta["files"] gives each image's path relative to `path`.
    """
    from PIL import Image

    if path is None:
        raise ValueError(
            "folder needs path=, a folder of photos with one sub-folder per person: <path>/<person>/<image>.jpg"
        )
    size = check_size(size)
    check_choice(channels, (1, 3), "channels")
    skip_unreadable = check_bool(skip_unreadable, "skip_unreadable")
    nested = check_bool(nested, "nested")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DataNotFoundError(
            f"folder: {folder.resolve()} does not exist; pass path= to an existing folder of photos "
            "laid out as <path>/<person>/<image>.jpg"
        )
    if not folder.is_dir():
        raise ValueError(f"folder: {folder} is a file; path= must be a folder laid out as <path>/<person>/<image>.jpg")

    people, loose = _list_people(folder)
    if not people:
        if loose:
            raise ValueError(
                f"folder: {folder} has {len(loose)} file(s) but no sub-folders; put each person's photos "
                f"in their own sub-folder: {folder}/<person>/<image>.jpg"
            )
        raise ValueError(f"folder: {folder} is empty; expected one sub-folder of photos per person: {folder}/<person>/<image>.jpg")
    if loose:
        warnings.warn(
            f"folder: ignoring {len(loose)} file(s) directly in {folder} (only sub-folders are people): "
            + ", ".join(p.name for p in loose[:10]) + (" ..." if len(loose) > 10 else ""),
            stacklevel=2,
        )

    if not nested:
        _check_depth(folder, people)

    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    person_of: list[str] = []
    files: list[str] = []
    bad: list[tuple[Path, str]] = []
    other: list[Path] = []
    for person in people:
        for f in sorted(p for p in person.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in f.relative_to(person).parts):
                continue
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                other.append(f)
                continue
            try:
                arr = _read(f, mode, size)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                bad.append((f, f"cannot be decoded ({type(err).__name__}: {err})"))
                continue
            images.append(arr)
            person_of.append(person.name)
            files.append(f.relative_to(folder).as_posix())

    if other:
        warnings.warn(
            f"folder: left out {len(other)} file(s) that are not images by their ending (allowed: "
            f"{', '.join(IMAGE_EXTENSIONS)}): " + ", ".join(str(p.relative_to(folder)) for p in other[:10])
            + (" ..." if len(other) > 10 else "") + "; rename them if they are images",
            stacklevel=2,
        )
    if bad:
        listing = "\n".join(f"  {p}: {why}" for p, why in bad)
        if not skip_unreadable:
            raise UnreadableImageError(
                f"folder: {len(bad)} file(s) under {folder} are not readable images:\n{listing}\n"
                "Fix or remove them, or pass skip_unreadable=True to leave them out."
            )
        warnings.warn(f"folder: skipped {len(bad)} unreadable file(s):\n{listing}", stacklevel=2)
    if not images:
        raise ValueError(f"folder: no readable images under {folder}; expected {folder}/<person>/<image>.jpg")

    names = sorted(set(person_of))
    empty = [p.name for p in people if p.name not in set(names)]
    if empty:
        warnings.warn(f"folder: person folder(s) without readable images left out: {', '.join(empty)}", stacklevel=2)
    index = {n: i for i, n in enumerate(names)}
    return FaceDataset(
        images=torch.from_numpy(np.stack(images)),
        identity=np.array([index[n] for n in person_of], dtype=np.int64),
        factors=None,
        name="folder",
        identity_names=names,
        meta={
            "source": str(folder.resolve()),
            "options": {"size": size, "channels": channels, "skip_unreadable": skip_unreadable, "nested": nested},
            "files": files,
            "skipped": [str(p) for p, _ in bad],
            "not_images": [str(p) for p in other],
        },
    )
