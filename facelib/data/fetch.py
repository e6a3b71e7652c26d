"""Getting the real data sets and checking them: what `python -m facelib data list|fetch|check` runs.

Each fetchable set has a `Source`: where it comes from, the files of facelib's layout under the
data root (`data_root()`) that make it present, and the checksums of those files (`KnownFile`).

Where the sets come from:

* ``lfw`` (lfw-people, lfw-pairs) and ``olivetti``: scikit-learn's fetchers
  (`fetch_lfw_pairs`, `fetch_olivetti_faces`), which download from scikit-learn's addresses and
  check the published archives' sha256 themselves. facelib runs them with ``data_home`` a
  staging folder ``<data root>/.fetch.*/scikit_learn_data`` and moves the result into
  ``<data root>/scikit_learn_data`` only once it is complete and checked.
* ``yaleb``: the "CroppedYale" zip of the Extended Yale Face Database B (`YALEB_URL`),
  converted here to the .npz that `load("yaleb")` reads (`convert_cropped_yale`).
* ``frey``: Sam Roweis's ``frey_rawface.mat`` (`FREY_URL`), kept as it is.

``$FACELIB_DATA_MIRROR`` (or ``--mirror``) replaces the base address of the Yale B and Frey files
(the file name is kept): ``FACELIB_DATA_MIRROR=http://host/data/`` fetches
``http://host/data/CroppedYale.zip``. scikit-learn's fetchers keep their own addresses.

A download goes to a temporary file in a staging folder beside its target (inside the data
root, so the final move is a rename), with a progress bar; a body shorter than its
Content-Length, an HTTP error, a wrong checksum or an archive that is not what it should be
raises `FetchError` and removes the staging folder, so a failed fetch leaves no data set (only
the data root's ``.lock``, and the data root itself if it did not exist). A present set is
replaced only with ``force=True``.

**What the checksums are of.** facelib could not download the published files on the machine
where this was written, so no checksum here is of a published download unless it says so:

* every value in `SOURCES` was computed from the copies in the project's shared data folder, in
  facelib's layout (the files `load` reads), not from the archives published online;
* frey: sha256 of ``frey_rawface.mat``, the file as distributed (facelib does not convert it), so
  a fetched file is checked against it before it is installed;
* yaleb: the published zip's checksum is not known (`YALEB_ZIP_SHA256` is None: not checked);
  after conversion the arrays decided by the archive's file names (label, subject_id, azimuth,
  elevation, filename) must match the reference conversion's digest (strict), and the pixel arrays
  are compared with the reference conversion (reported, not required: the resampling of another
  library version may round differently);
* lfw: sha256 of the three pair lists (strict; they equal the published files' sha256 that
  scikit-learn's fetcher records), and a digest of the image folder (each file's
  path and sha256) of the deep-funneled copy facelib's figures were measured on; scikit-learn
  downloads the 2007 funneled images, which differ from it, so that one is reported, not required;
* olivetti: sha256 of the uint8 array held in ``olivetti_py3.pkz`` (its dtype, shape and bytes),
  not of the file: the file is joblib-compressed, and its bytes depend on the joblib version.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image
from scipy.io import loadmat
from sklearn.datasets import fetch_lfw_pairs, fetch_olivetti_faces
from tqdm.auto import tqdm

from facelib.files import check_writable, file_sha256, folder_lock, pid_alive
from facelib.registry import UnknownNameError

from ._common import CorruptDataError, missing_data
from ._safe_pickle import read_joblib
from .datasets import DATASETS
from .frey import FREY_FILE
from .lfw import LFW_PAIR_FILES
from .paths import data_root
from .yaleb import YALEB_FILE

__all__ = ["FetchError", "KnownFile", "Source", "SOURCES", "FileCheck", "SetStatus", "MIRROR_ENV",
           "YALEB_URL", "FREY_URL", "YALEB_ZIP_SHA256", "fetch", "check", "status", "statuses",
           "source_name", "fetch_command", "download", "convert_cropped_yale", "file_sha256",
           "tree_sha256", "arrays_sha256"]

#: Environment variable replacing the base address of the Yale B and Frey downloads.
MIRROR_ENV = "FACELIB_DATA_MIRROR"
#: The "CroppedYale" release of the Extended Yale Face Database B (the commonly cited address).
YALEB_URL = "http://vision.ucsd.edu/extyaleb/CroppedYaleBZip/CroppedYale.zip"
#: sha256 of the published CroppedYale.zip: not known (it could not be downloaded where this was
#: written), so the download is not checked by sha256; its conversion is (see the module docstring).
YALEB_ZIP_SHA256: str | None = None
#: Sam Roweis's Frey faces.
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
_CHUNK = 1 << 16
_STAGING_PREFIX = ".fetch."


class FetchError(RuntimeError):
    """A download or its conversion failed; nothing was installed. The message says what to do."""


def fetch_command(name: str) -> str:
    """The command that fetches data set `name`."""
    return f"python -m facelib data fetch {name}"


# -- checksums ---------------------------------------------------------------------------------
def tree_sha256(folder: str | os.PathLike) -> str:
    """sha256 over every file under `folder`: its relative path and its sha256, in sorted order."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for rel in files:
        h.update(f"{rel}\0{file_sha256(folder / rel)}\n".encode())
    return h.hexdigest()


def _array_digest(h, name: str, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{name}\0{a.dtype.str}\0{a.shape}\n".encode())
    h.update(a.tobytes())


def arrays_sha256(arrays: dict[str, np.ndarray], keys: Iterable[str]) -> str:
    """sha256 over the named arrays (name, dtype, shape and bytes of each, in `keys`' order)."""
    h = hashlib.sha256()
    for k in keys:
        _array_digest(h, k, arrays[k])
    return h.hexdigest()


def _npz_sha256(path: Path, keys: tuple[str, ...]) -> str:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise KeyError(f"no array {', '.join(missing)}")
        return arrays_sha256({k: z[k] for k in keys}, keys)


def _pkz_sha256(path: Path) -> str:
    raw = read_joblib("olivetti", path, "Fetch it again.")
    if not isinstance(raw, np.ndarray):
        raise ValueError(f"holds a {type(raw).__name__}, not an array")
    return arrays_sha256({"faces": raw}, ("faces",))


@dataclass(frozen=True)
class KnownFile:
    """A file (or folder) of facelib's layout with the checksum it should have.

    `kind`: ``"file"`` sha256 of the bytes; ``"tree"`` `tree_sha256` of a folder; ``"npz"`` the
    `arrays_sha256` of `keys` of an .npz; ``"pkz"`` of the array in a joblib file. `strict`:
    a different value is a MISMATCH (damage, or another version); otherwise it is reported as
    differing from the reference copy (`note` says why that can be fine)."""

    path: str
    sha256: str
    kind: str = "file"
    keys: tuple[str, ...] = ()
    strict: bool = True
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.path} [{', '.join(self.keys)}]" if self.keys else self.path

    def digest(self, root: Path) -> str:
        path = root / self.path
        if self.kind == "file":
            return file_sha256(path)
        if self.kind == "tree":
            return tree_sha256(path)
        if self.kind == "npz":
            return _npz_sha256(path, self.keys)
        if self.kind == "pkz":
            return _pkz_sha256(path)
        raise ValueError(f"unknown checksum kind {self.kind!r}")


@dataclass(frozen=True)
class Source:
    """A fetchable set: the data sets it provides, the paths (relative to the data root) that make
    it present, its known checksums, and how to fetch it into a staging root (`get(stage, mirror,
    progress)`, which leaves the layout's paths under `stage`)."""

    name: str
    datasets: tuple[str, ...]
    paths: tuple[str, ...]
    known: tuple[KnownFile, ...]
    get: Callable[["Source", Path, str | None, bool], None]
    origin: str
    url: str | None = None
    published_sha256: str | None = None


# -- downloading -------------------------------------------------------------------------------
def _mirrored(url: str, mirror: str | None) -> str:
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + url.rsplit("/", 1)[-1]


def download(url: str, folder: str | os.PathLike, sha256: str | None = None, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download `url` into a new file in `folder` (its name the URL's last part) with a progress
    bar; `FetchError` on an HTTP error, an unreachable host, a body shorter (or longer) than its
    Content-Length, or a sha256 other than `sha256` (when given). The file is removed on failure."""
    folder = Path(folder)
    target = folder / url.rsplit("/", 1)[-1]
    again = "try again later, or fetch it through a mirror (--mirror URL or $" + MIRROR_ENV + ")"
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s) addresses only
    except urllib.error.HTTPError as err:
        raise FetchError(f"downloading {url} failed: HTTP {err.code} {err.reason}; {again}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"cannot reach {url} ({reason}); check the internet connection, or {again}") from err
    received = 0
    try:
        try:
            with response, open(target, "wb") as out:
                length = response.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else None
                with tqdm(total=expected, unit="B", unit_scale=True, desc=target.name, disable=not progress,
                          leave=False) as bar:
                    while True:
                        try:
                            block = response.read(_CHUNK)
                        except http.client.IncompleteRead as err:  # the server closed early
                            received += len(err.partial)
                            break
                        if not block:
                            break
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
        except (OSError, http.client.HTTPException) as err:  # a connection reset mid-body, a full disk
            raise FetchError(f"downloading {url} failed after {received} bytes ({err}); nothing was installed; "
                             f"{again}") from err
        if expected is not None and received != expected:
            raise FetchError(f"downloading {url} was cut short: got {received} of the {expected} bytes the server "
                             f"announced; {again}")
        if sha256 is not None:
            got = file_sha256(target)
            if got != sha256:
                raise FetchError(f"{url} has sha256 {got}, expected {sha256}: the download is damaged or another "
                                 f"file; {again}")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


# -- conversions -------------------------------------------------------------------------------
#: A Yale B image in the CroppedYale archive: yaleBxx_P00A±aaaE±ee.pgm ("Ambient" and ".bad"
#: files are not matched, as in the reference conversion).
_YALEB_NAME = re.compile(r"^yaleB(\d{2})_P00A([+-]\d{3})E([+-]\d{2})\.pgm$")
_YALEB_SHAPE = (192, 168)


def convert_cropped_yale(archive: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The CroppedYale zip -> facelib's Yale B .npz (the keys `load("yaleb")` reads): every
    ``yaleBxx_P00A±aaaE±ee.pgm`` (192 x 168 grey) in file-name order; ``images_96x84`` each image
    reduced 2x (box filter), ``images_64x64`` the centre square (rows 12:180) resized with
    Lanczos; ``label`` 0.. by subject, ``subject_id``, ``azimuth``, ``elevation``, ``filename``.
    `FetchError` when the archive is not a zip or holds no such image or a damaged one."""
    archive, out = Path(archive), Path(out)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise FetchError(f"{archive.name} is not a readable zip archive ({err}); the download is damaged or is "
                         "not the CroppedYale release") from err
    with zf:
        members = {}
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if not info.is_dir() and _YALEB_NAME.match(base):
                if base in members:
                    raise FetchError(f"{archive.name} holds {base} twice; it is not the CroppedYale release")
                members[base] = info
        if not members:
            raise FetchError(f"{archive.name} holds no yaleBxx_P00A±aaaE±ee.pgm image; it is not the CroppedYale "
                             "release")
        names = sorted(members)
        n = len(names)
        big = np.empty((n, 96, 84), np.uint8)
        small = np.empty((n, 64, 64), np.uint8)
        for i, base in enumerate(names):
            try:
                with Image.open(BytesIO(zf.read(members[base]))) as im:
                    im.load()
                    if im.mode != "L" or im.size[::-1] != _YALEB_SHAPE:
                        raise ValueError(f"a {im.mode} image of {im.size[1]} x {im.size[0]}, expected grey "
                                         f"{_YALEB_SHAPE[0]} x {_YALEB_SHAPE[1]}")
                    big[i] = np.asarray(im.reduce(2))
                    small[i] = np.asarray(im.crop((0, 12, 168, 180)).resize((64, 64), Image.LANCZOS))
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
                raise FetchError(f"{archive.name}: cannot read {members[base].filename} ({err}); the archive is "
                                 "damaged") from err
    parsed = [_YALEB_NAME.match(b).groups() for b in names]
    subject = np.array([int(s) for s, _, _ in parsed], np.int64)
    _, label = np.unique(subject, return_inverse=True)
    np.savez_compressed(
        out, images_96x84=big, images_64x64=small, label=label.astype(np.int64), subject_id=subject,
        azimuth=np.array([int(a) for _, a, _ in parsed], np.int64),
        elevation=np.array([int(e) for _, _, e in parsed], np.int64), filename=np.array(names))
    return out


def _check_frey(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            ff = loadmat(fh).get("ff")
    except Exception as err:  # noqa: BLE001 - scipy fails in many ways on a file of another format
        raise FetchError(f"{path.name} is not a readable MATLAB file ({type(err).__name__}: {err}); the download "
                         "is damaged or another file") from err
    if not isinstance(ff, np.ndarray) or ff.ndim != 2 or ff.shape[0] != 28 * 20:
        raise FetchError(f"{path.name} holds no 560 x n array 'ff'; it is not the Frey faces file")


# -- the sources -------------------------------------------------------------------------------
def _get_url(source: Source, stage: Path, mirror: str | None, progress: bool) -> None:
    """Yale B and Frey: download (sha256-checked where the published file's is known), convert
    into the layout under `stage`."""
    work = stage / ".download"
    work.mkdir()
    url = _mirrored(source.url, mirror)
    got = download(url, work, source.published_sha256, progress)
    target = stage / source.paths[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.name == "yaleb":
        convert_cropped_yale(got, target)
    else:  # frey: the file as it is
        _check_frey(got)
        os.replace(got, target)
    shutil.rmtree(work)


def _sklearn_failed(source: Source, err: BaseException) -> FetchError:
    return FetchError(f"scikit-learn could not fetch {source.name} ({type(err).__name__}: {err}); check the "
                      "internet connection and try again (scikit-learn downloads from its own addresses; "
                      f"--mirror does not apply to {source.name})")


def _get_lfw(source: Source, stage: Path, mirror: str | None, progress: bool) -> None:
    home = stage / "scikit_learn_data"
    try:  # downloads the three pair lists and the images, then decodes View 2 once
        fetch_lfw_pairs(subset="10_folds", data_home=str(home), download_if_missing=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise _sklearn_failed(source, err) from err


def _get_olivetti(source: Source, stage: Path, mirror: str | None, progress: bool) -> None:
    home = stage / "scikit_learn_data"
    try:
        fetch_olivetti_faces(data_home=str(home), download_if_missing=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise _sklearn_failed(source, err) from err


_LFW_HOME = "scikit_learn_data/lfw_home"
_YALEB_LABEL_KEYS = ("label", "subject_id", "azimuth", "elevation", "filename")
_YALEB_PIXEL_KEYS = ("images_96x84", "images_64x64")

#: The fetchable sets. Every sha256 below was computed from the project's shared data copies in
#: facelib's layout (see the module docstring for what each is of).
SOURCES: dict[str, Source] = {
    "lfw": Source(
        name="lfw", datasets=("lfw-people", "lfw-pairs"),
        paths=tuple(f"{_LFW_HOME}/{f}" for f in LFW_PAIR_FILES.values()) + (f"{_LFW_HOME}/lfw_funneled",),
        known=(
            KnownFile(f"{_LFW_HOME}/pairsDevTrain.txt",
                      "1d454dada7dfeca0e7eab6f65dc4e97a6312d44cf142207be28d688be92aabfa"),
            KnownFile(f"{_LFW_HOME}/pairsDevTest.txt",
                      "7cb06600ea8b2814ac26e946201cdb304296262aad67d046a16a7ec85d0ff87c"),
            KnownFile(f"{_LFW_HOME}/pairs.txt",
                      "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592"),
            KnownFile(f"{_LFW_HOME}/lfw_funneled",
                      "671d2a790a1bc200b41bed03b7b5fd6d4dbf17d75bbc7d88cd3da5c5ed3801af",
                      kind="tree", strict=False,
                      note="not the deep-funneled copy facelib's figures were measured on (scikit-learn fetches "
                           "the 2007 funneled images)"),
        ),
        get=_get_lfw, origin="scikit-learn's fetch_lfw_pairs (its addresses, its checksums of the archives)"),
    "olivetti": Source(
        name="olivetti", datasets=("olivetti",), paths=("scikit_learn_data/olivetti_py3.pkz",),
        known=(KnownFile("scikit_learn_data/olivetti_py3.pkz",
                         "a50d821df81298389de8f05c98693aea92fe119e6a8b5b2f3e020e146b198acc",
                         kind="pkz"),),
        get=_get_olivetti, origin="scikit-learn's fetch_olivetti_faces (its address, its checksum of the .mat)"),
    "yaleb": Source(
        name="yaleb", datasets=("yaleb",), paths=(YALEB_FILE,),
        known=(
            KnownFile(YALEB_FILE, "86bd8df3cd615893219aac5232f6de127da4ef43500c6066ca03caae4a8df690",
                      kind="npz", keys=_YALEB_LABEL_KEYS),
            KnownFile(YALEB_FILE, "e30e2ba6d0c66f487457fa0d1c66643c0891b72edcd7c11746a3c41458df6aa2",
                      kind="npz", keys=_YALEB_PIXEL_KEYS, strict=False,
                      note="pixels differ from the reference conversion (another resampling library may round "
                           "differently); the images, names and lights are the same"),
        ),
        get=_get_url, origin="the CroppedYale zip, converted by facelib", url=YALEB_URL,
        published_sha256=YALEB_ZIP_SHA256),
    "frey": Source(
        name="frey", datasets=("frey",), paths=(FREY_FILE,),
        known=(KnownFile(FREY_FILE, "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64"),),
        get=_get_url, origin="Sam Roweis's frey_rawface.mat, as it is", url=FREY_URL,
        published_sha256="265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64"),
}

#: Registered sets with nothing to fetch: name -> what `list` says.
_NOT_FETCHED = {"synthetic": "rendered by facelib, always present",
                "folder": "your own photos: --data-option path=..."}


def source_name(name: str) -> str:
    """The source that provides data set `name` ("lfw-pairs" -> "lfw"); ValueError for a set
    with nothing to fetch, UnknownNameError for an unknown name."""
    if isinstance(name, str) and name.strip().lower() == "lfw":
        return "lfw"
    try:
        canonical = DATASETS.canonical(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"unknown data set {name!r}; fetchable: {', '.join(SOURCES)} (lfw gives lfw-people "
                               "and lfw-pairs)") from err
    for key, source in SOURCES.items():
        if canonical in source.datasets:
            return key
    what = _NOT_FETCHED.get(canonical, "not downloadable by facelib")
    raise UnknownNameError(f"data set {canonical!r} has nothing to fetch or check ({what}); fetchable: "
                           f"{', '.join(SOURCES)}")


# -- checking ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileCheck:
    """One known file checked: `status` "ok", "MISMATCH", "differs" (a non-strict checksum) or
    "missing" / "unreadable"."""

    known: KnownFile
    status: str
    actual: str | None = None
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("MISMATCH", "unreadable", "missing")


def _check_file(known: KnownFile, root: Path) -> FileCheck:
    path = root / known.path
    if not path.exists():
        return FileCheck(known, "missing")
    try:
        actual = known.digest(root)
    except Exception as err:  # noqa: BLE001 - any read failure is reported as this file's
        return FileCheck(known, "unreadable", detail=f"{type(err).__name__}: {err}")
    if actual == known.sha256:
        return FileCheck(known, "ok", actual)
    return FileCheck(known, "MISMATCH" if known.strict else "differs", actual, known.note)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class SetStatus:
    """What `list` says about one data set."""

    name: str
    present: str                    # "present", "missing", "partial" or what a set without files is
    size: int | None = None          # bytes on disk
    checksum: str = "not checked"    # "ok", "MISMATCH", "ok (differs: ...)", "not checked"
    checks: list[FileCheck] = field(default_factory=list)
    source: str | None = None


def _source_status(source: Source, root: Path, checksums: bool) -> SetStatus:
    there = [(root / p).exists() for p in source.paths]
    st = SetStatus(name=source.name, present="present" if all(there) else "partial" if any(there) else "missing",
                   source=source.name)
    if not any(there):
        return st
    st.size = sum(_size(root / p) for p, ok in zip(source.paths, there) if ok)
    if checksums and all(there):
        st.checks = [_check_file(k, root) for k in source.known]
        bad = [c for c in st.checks if c.failed]
        differs = [c for c in st.checks if c.status == "differs"]
        st.checksum = ("MISMATCH" if bad else "ok") + (" (differs from the reference copy)" if differs else "")
    return st


def statuses(root: str | os.PathLike | None = None, checksums: bool = True) -> list[SetStatus]:
    """One `SetStatus` per registered data set (in registration order), present or missing under
    the data root, with its size and checksum status (`checksums=False`: not computed)."""
    root = data_root(root)
    by_source: dict[str, SetStatus] = {}
    out = []
    for name in DATASETS:
        if name in _NOT_FETCHED:
            out.append(SetStatus(name=name, present=_NOT_FETCHED[name]))
            continue
        key = next((k for k, s in SOURCES.items() if name in s.datasets), None)
        if key is None:
            out.append(SetStatus(name=name, present="registered elsewhere: not known to `data fetch`"))
            continue
        if key not in by_source:
            by_source[key] = _source_status(SOURCES[key], root, checksums)
        st = by_source[key]
        out.append(SetStatus(name, st.present, st.size, st.checksum, st.checks, key))
    return out


def status(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> SetStatus:
    """`SetStatus` of the set that provides data set `name`."""
    source = SOURCES[source_name(name)]
    return _source_status(source, data_root(root), checksums)


def check(name: str, root: str | os.PathLike | None = None) -> SetStatus:
    """Verify every known checksum of data set `name`. `DataNotFoundError` (naming the fetch
    command) when it is missing; `CorruptDataError` naming the first wrong file and how to fetch it
    again. Returns the status (non-strict differences are in its checks)."""
    key = source_name(name)
    source, root = SOURCES[key], data_root(root)
    st = _source_status(source, root, checksums=True)
    if st.present != "present":
        missing = [p for p in source.paths if not (root / p).exists()]
        raise missing_data(name, root / missing[0], root, missing[0])
    for c in st.checks:
        if c.failed:
            what = {"MISMATCH": f"has sha256 {c.actual}, expected {c.known.sha256}",
                    "unreadable": f"cannot be read ({c.detail})", "missing": "is missing"}[c.status]
            raise CorruptDataError(f"data set {name!r}: {root / c.known.label} {what}; it is damaged or another "
                                   f"version: fetch it again with `{fetch_command(key)} --force`")
    return st


# -- fetching ----------------------------------------------------------------------------------
def _clear_stale_staging(root: Path) -> None:
    """Remove staging folders of fetches whose process is gone (killed mid-download)."""
    for p in root.glob(_STAGING_PREFIX + "*"):
        m = re.match(re.escape(_STAGING_PREFIX) + r"[a-z]+\.(\d+)\.", p.name)
        if m and p.is_dir() and not pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)


def _install(stage: Path, root: Path, rel: str) -> None:
    """Move `stage/rel` to `root/rel` in one rename; a replaced folder goes aside first and is
    removed only once the new one is in place."""
    src, dst = stage / rel, root / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_dir() and not dst.is_symlink():
        aside = dst.parent / f".{dst.name}.old.{os.getpid()}"
        os.rename(dst, aside)
        try:
            os.rename(src, dst)
        except BaseException:
            os.rename(aside, dst)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(src, dst)


def fetch(name: str, root: str | os.PathLike | None = None, force: bool = False, mirror: str | None = None,
          progress: bool = True) -> SetStatus:
    """Fetch data set `name` (a data set name or "lfw") into the data root, checked and in the
    layout `load` reads; see the module docstring. A present set is refused unless `force`.
    `FetchError` when the download, its checksum or its conversion fails (nothing installed)."""
    key = source_name(name)
    source, root = SOURCES[key], data_root(root)
    present = [p for p in source.paths if (root / p).exists()]
    if present and not force:
        raise FileExistsError(f"data set {key!r} is already under {root} ({present[0]}); `python -m facelib data "
                              f"check {key}` verifies it, `{fetch_command(key)} --force` replaces it")
    check_writable(root, "data root")
    with folder_lock(root, "data root", holder_hint="another fetch is writing there",
                     remedy="wait for it to finish"):
        _clear_stale_staging(root)
        stage = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{key}.{os.getpid()}.", dir=root))
        try:
            source.get(source, stage, mirror, progress)
            missing = [p for p in source.paths if not (stage / p).exists()]
            if missing:
                raise FetchError(f"fetching {key} gave no {missing[0]}")
            for c in (_check_file(k, stage) for k in source.known):
                if c.failed:
                    raise FetchError(f"fetched {key}, but {c.known.label} {c.status} (sha256 {c.actual}, expected "
                                     f"{c.known.sha256}{'; ' + c.detail if c.detail else ''}): the download is "
                                     "damaged or another version; try again later")
            for rel in source.paths:
                _install(stage, root, rel)
        except FetchError as err:
            raise FetchError(f"{err}; nothing was installed under {root}") from err
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return _source_status(source, root, checksums=False)

