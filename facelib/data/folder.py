"""The user's own photos, one sub-folder per person (torchvision ImageFolder layout):

    <path>/<person>/<image>.jpg

Every image is resized (shorter side to `size`) and centre-cropped to
`size` x `size`, in grey or RGB, so the photos can be embedded by a model trained
on the other sets. A file that cannot be decoded stops the load with its name,
unless the user chose to skip such files. Everything else that is left out (files that are
not images by their ending, links that are broken, loop or leave `path`, second routes to
one file, files that are not regular files) is named in one warning; only hidden files
(.DS_Store) are left out silently. 16-bit images are scaled to 8 bits, not clipped. Photos
at different depths (`Group/{Bob,Carol}/` beside `Alice/`, or `path=` one level above the
person folders) are refused, since they would merge people.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as F

from facelib.files import as_path

from ._common import check_bool, check_size, data_exists, permission_error
from .dataset import FaceDataset
from .datasets import check_channels, register_dataset
from .paths import DataNotFoundError
from .pixels import to_levels

__all__ = ["load_folder", "UnreadableImageError", "IMAGE_EXTENSIONS"]

#: File endings read as images (torchvision's ImageFolder list).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
#: PIL modes holding more than 8 bits per grey level, and the full-scale value of each.
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}
#: How many left-out files one warning names before it says how many more (all are in meta).
_SHOWN = 50
_NO_ACCESS = "permission denied (the file is not damaged): give this user read access, e.g. chmod -R u+rX"


class UnreadableImageError(ValueError):
    """Some files in the photo folder are not readable images; the message lists them."""


def _visible(name: str) -> bool:
    return not name.startswith(".")  # .DS_Store, ._* and similar system files


@dataclass
class _Scan:
    """What a walk of the photo folder found: per person, the files to read as
    (path as seen, real path, reached through a link), and everything left out, with why."""

    people: list[str] = field(default_factory=list)
    files: dict[str, list[tuple[PurePosixPath, str, bool]]] = field(default_factory=dict)
    deeper: dict[str, list[str]] = field(default_factory=dict)  # person -> sub-folders holding photos
    loose: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _follow(path: Path, rel: str, root_real: str, folder: Path, scan: _Scan):
    """(kind "dir"/"file", real path, via link) for `path`, or None after noting why it is left out:
    a link is followed only to a target inside the root that exists and does not loop."""
    try:
        st = os.lstat(path)
        via_link = stat.S_ISLNK(st.st_mode)
        real = os.path.realpath(path)
        if via_link:
            try:
                Path(path).resolve(strict=True)
            except RuntimeError:  # Python < 3.13: "Symlink loop"
                scan.left_out.append((rel, f"a link that loops ({os.readlink(path)})"))
                return None
            except FileNotFoundError:
                scan.left_out.append((rel, f"a broken link (its target {os.readlink(path)} does not exist)"))
                return None
            except OSError as err:
                why = "a link that loops" if err.errno == errno.ELOOP else f"a link that cannot be followed ({err})"
                scan.left_out.append((rel, f"{why} ({os.readlink(path)})"))
                return None
            if not _inside(real, root_real):
                scan.left_out.append((rel, f"a link to {real}, outside {folder}; copy the photo in, or pass "
                                           "path= to a folder that holds it"))
                return None
            st = os.stat(path)
    except PermissionError:
        scan.unreadable.append((rel, _NO_ACCESS))
        return None
    if stat.S_ISDIR(st.st_mode):
        return "dir", real, via_link
    if stat.S_ISREG(st.st_mode):
        return "file", real, via_link
    scan.left_out.append((rel, "not a regular file (a device, pipe or socket)"))
    return None


def _walk(person: str, path: Path, rel: PurePosixPath, stack: tuple[str, ...], via: bool,
          root_real: str, folder: Path, scan: _Scan) -> None:
    """Add the files under person folder `path` (real path stack[-1]) to `scan`."""
    try:
        names = sorted(n for n in os.listdir(path) if _visible(n))
    except PermissionError:
        scan.unreadable.append((rel.as_posix() + "/", _NO_ACCESS))
        return
    for name in names:
        sub_rel = rel / name
        found = _follow(path / name, sub_rel.as_posix(), root_real, folder, scan)
        if found is None:
            continue
        kind, real, link = found
        if kind == "dir":
            if real in stack:
                back = os.path.relpath(real, root_real)
                scan.left_out.append((sub_rel.as_posix(), f"a link that loops back to {'the root' if back == '.' else back}"))
                continue
            _walk(person, path / name, sub_rel, (*stack, real), via or link, root_real, folder, scan)
        elif not name.lower().endswith(IMAGE_EXTENSIONS):
            scan.left_out.append((sub_rel.as_posix(), f"not an image by its ending (allowed: {', '.join(IMAGE_EXTENSIONS)}); "
                                                      "rename it if it is an image"))
        else:
            scan.files.setdefault(person, []).append((sub_rel, real, via or link))


def _scan(folder: Path) -> _Scan:
    """Walk `folder`: its sub-folders are the people; links are followed only inside it."""
    root_real = os.path.realpath(folder)
    scan = _Scan()
    try:
        names = sorted(n for n in os.listdir(folder) if _visible(n))
    except PermissionError as err:
        raise permission_error("folder", folder, err) from err
    for name in names:
        found = _follow(folder / name, name, root_real, folder, scan)
        if found is None:
            continue
        kind, real, link = found
        if kind == "file":
            scan.loose.append(name)
        elif real == root_real:
            scan.left_out.append((name, "a link that loops back to the root"))
        else:
            scan.people.append(name)
            _walk(name, folder / name, PurePosixPath(name), (root_real, real), link, root_real, folder, scan)
    _drop_second_routes(scan)
    for person, files in scan.files.items():  # after the second routes go: a link to another person is no album
        inner = [rel.parts[1] for rel, _, _ in files if len(rel.parts) > 2]
        if inner:
            scan.deeper[person] = list(dict.fromkeys(inner))
    return scan


def _drop_second_routes(scan: _Scan) -> None:
    """Keep each real file once: a file reached directly and through links (or through two
    links) would be two 'different' photos, possibly of two people."""
    routes: dict[str, list[tuple[bool, str, PurePosixPath]]] = {}
    for person, files in scan.files.items():
        for rel, real, link in files:
            routes.setdefault(real, []).append((link, person, rel))
    keep: set[tuple[str, PurePosixPath]] = set()
    for real, found in routes.items():
        found.sort(key=lambda r: (r[0], r[2].parts))  # a direct route first, then path order
        keep.add((found[0][1], found[0][2]))
        for _, _, rel in found[1:]:
            scan.left_out.append((rel.as_posix(), f"the same file as {found[0][2].as_posix()} (reached through a link)"))
    for person in scan.files:
        scan.files[person] = sorted((f for f in scan.files[person] if (person, f[0]) in keep), key=lambda f: f[0].parts)


def _check_depth(folder: Path, scan: _Scan) -> None:
    """Refuse photos at different depths without nested=True: a top folder whose photos sit in
    sub-folders is read as one person, so the people in those sub-folders would be merged."""
    if not scan.deeper:
        return
    direct = [p for p in scan.people if any(len(rel.parts) == 2 for rel, _, _ in scan.files.get(p, []))]
    inner = [f"{person}/{sub}" for person, subs in scan.deeper.items() for sub in subs[:2]]
    shown = ", ".join(inner[:4]) + (" ..." if len(inner) > 4 else "")
    if not direct:
        raise ValueError(
            f"folder: no folder under {folder} holds photos directly; they are one level deeper "
            f"({shown}), so path= looks one level too high and would merge different people; pass path= to "
            f"the folder that holds the person folders (e.g. {folder / next(iter(scan.deeper))}), or nested=True "
            "if each folder really is one person with albums inside"
        )
    groups = ", ".join(f"{p}/" for p in scan.deeper)
    raise ValueError(
        f"folder: photos sit at different depths under {folder}: {', '.join(direct[:3])}"
        f"{' ...' if len(direct) > 3 else ''} hold photos directly, but {shown} are one level deeper, inside "
        f"{groups} which would each be read as one person (merging the people inside). Put every person's "
        f"folder directly under {folder} ({folder}/<person>/<image>.jpg), or pass nested=True if each top "
        "folder really is one person with albums inside"
    )


def _read(path: Path, mode: str, size: int) -> np.ndarray:
    """Decode one photo, upright per its EXIF tag, resized and centre-cropped."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in _WIDE_MODES or im.mode == "F":
            im = _to_8bit(im, path)  # convert("L") would clip 16-bit levels at 255
        im = im.convert(mode)  # forces a full decode, so truncated files fail here
    im = F.center_crop(F.resize(im, size), [size, size])
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _to_8bit(im, path: Path):
    """A 16-bit (or 32-bit int / float) grey image as 8-bit "L", scaled from its full range
    (floats by their range, with a warning) by the one pixel converter."""
    arr = np.asarray(im)
    full = None if im.mode == "F" else _WIDE_MODES[im.mode]
    return Image.fromarray(to_levels(arr, f"folder: {path}", full_scale=full), mode="L")


@register_dataset("folder", channels=(1, 3))
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
    cannot be decoded (or read) raise `UnreadableImageError` naming them; with
    `skip_unreadable=True` they are left out with a warning. Whatever else is left out
    (files that are not images by their ending such as notes.txt, loose files beside the
    person folders, broken or looping links, links leaving `path`, a second route to one
    file, person folders without images) is named in one warning and in meta["left_out"];
    hidden files (".DS_Store") are ignored. A person's photos may sit in sub-folders of
    their folder only with `nested=True`; without it, photos below the person level are
    refused (a path one level too high, or groups beside people), since they would merge
    people. `root` is not used (photos live wherever `path` says); it is accepted so all
    loaders share a signature. meta["files"] gives each image's path relative to `path`.
    """
    if path is None:
        raise ValueError(
            "folder needs path=, a folder of photos with one sub-folder per person: <path>/<person>/<image>.jpg"
        )
    size = check_size(size)
    channels = check_channels(channels, (1, 3), "folder")
    skip_unreadable = check_bool(skip_unreadable, "skip_unreadable")
    nested = check_bool(nested, "nested")
    folder = as_path(path, "folder's path=").expanduser()
    if not data_exists("folder", folder):
        raise DataNotFoundError(
            f"folder: {folder.resolve()} does not exist; pass path= to an existing folder of photos "
            "laid out as <path>/<person>/<image>.jpg"
        )
    if not folder.is_dir():
        raise ValueError(f"folder: {folder} is a file; path= must be a folder laid out as <path>/<person>/<image>.jpg")

    scan = _scan(folder)
    if not scan.people:
        if scan.loose:
            raise ValueError(
                f"folder: {folder} has {len(scan.loose)} file(s) but no sub-folders; put each person's photos "
                f"in their own sub-folder: {folder}/<person>/<image>.jpg"
            )
        if not scan.left_out and not scan.unreadable:
            raise ValueError(f"folder: {folder} is empty; expected one sub-folder of photos per person: "
                             f"{folder}/<person>/<image>.jpg")
    if not nested:
        _check_depth(folder, scan)
    left_out = [(name, "directly in the folder (only sub-folders are people)") for name in scan.loose] + scan.left_out

    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    person_of: list[str] = []
    files: list[str] = []
    bad = list(scan.unreadable)
    for person in scan.people:
        for rel, _, _ in scan.files.get(person, []):
            f = folder / rel
            try:
                arr = _read(f, mode, size)
            except PermissionError:
                bad.append((rel.as_posix(), _NO_ACCESS))
                continue
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                bad.append((rel.as_posix(), f"cannot be decoded ({type(err).__name__}: {err})"))
                continue
            images.append(arr)
            person_of.append(person)
            files.append(rel.as_posix())
    names = sorted(set(person_of))
    if bad and skip_unreadable:
        left_out += [(p, f"unreadable: {why}") for p, why in bad]
    if not bad or skip_unreadable:  # else the error below names the unreadable folders and files
        left_out += [(f"{p}/", "a person folder without readable images") for p in scan.people if p not in set(names)]
    if left_out:
        shown = "\n".join(f"  {folder / p}: {why}" for p, why in left_out[:_SHOWN])
        more = f"\n  ... and {len(left_out) - _SHOWN} more (all in meta['left_out'])" if len(left_out) > _SHOWN else ""
        warnings.warn(f"folder: left out {len(left_out)} item(s) under {folder}:\n{shown}{more}", stacklevel=2)
    if bad and not skip_unreadable:
        listing = "\n".join(f"  {folder / p}: {why}" for p, why in bad)
        raise UnreadableImageError(
            f"folder: {len(bad)} file(s) under {folder} are not readable images:\n{listing}\n"
            "Fix or remove them, or pass skip_unreadable=True to leave them out."
        )
    if not images:
        raise ValueError(f"folder: no readable images under {folder}; expected {folder}/<person>/<image>.jpg")

    index = {n: i for i, n in enumerate(names)}
    not_image = "not an image by its ending"
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
            "skipped": [str(folder / p) for p, _ in bad],
            "not_images": [str(folder / p) for p, why in left_out if why.startswith(not_image)],
            "left_out": [[p, why] for p, why in left_out],
        },
    )
