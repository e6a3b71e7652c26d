"""`python -m facelib data list|fetch|check`: which data sets are under the data root, getting
them, verifying them (`facelib.data.fetch` does the work).

The command raises its errors; `facelib.cli.main` prints them as one line: an unknown set name
is a bad argument, a failed download (`FetchError`), a damaged set (`CorruptDataError`), a
missing one or a present one fetched without ``--force`` are failures at run time.
"""

from __future__ import annotations

import argparse

from . import fetch as _fetch
from .paths import data_root

__all__ = ["configure_parser", "main_from_args"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=None, help="the data root (default: $FACELIB_DATA, else ./data)")
    sub = parser.add_subparsers(dest="data_command", required=True)
    ls = sub.add_parser("list", parents=[common],
                        help="every data set: present or missing under the data root, size, checksum")
    ls.add_argument("--no-checksums", action="store_true",
                    help="skip the checksums (LFW's reads 117 MB of images)")
    f = sub.add_parser("fetch", parents=[common], help="download data sets into the data root, checked and converted to the "
                                     "layout `load` reads")
    f.add_argument("names", nargs="+", metavar="NAME",
                   help=f"data sets to fetch: {', '.join(_fetch.SOURCES)} (or a set they provide: lfw-people, "
                        "lfw-pairs)")
    f.add_argument("--force", action="store_true", help="replace a set that is already there")
    f.add_argument("--mirror", default=None,
                   help=f"base address replacing the Yale B and Frey download sites (default: ${_fetch.MIRROR_ENV}); "
                        "scikit-learn's fetchers (lfw, olivetti) keep their own")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("check", parents=[common], help="verify one data set's files against facelib's checksums")
    c.add_argument("name", metavar="NAME")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"  # pragma: no cover


def _list(args: argparse.Namespace) -> int:
    root = data_root(args.root)
    rows = _fetch.statuses(root, checksums=not args.no_checksums)
    print(f"data root: {root}")
    width = max(len(r.name) for r in rows)
    for r in rows:
        if r.source is None:  # synthetic, folder: no files
            print(f"  {r.name:<{width}}  {r.present}")
            continue
        checksum = r.checksum if r.size is not None else ""
        line = f"  {r.name:<{width}}  {r.present:<8}  {_size(r.size):>9}  {checksum}".rstrip()
        print(line)
        for c in r.checks:
            if c.status != "ok":
                print(f"  {'':<{width}}    {c.known.label}: {c.status}" + (f" ({c.detail})" if c.detail else ""))
    missing = sorted({r.source for r in rows if r.source and r.present != "present"})
    if missing:
        print(f"get a missing set with `python -m facelib data fetch {' '.join(missing)}`")
    bad = sorted({r.source for r in rows if r.source and r.checksum.startswith("MISMATCH")})
    if bad:
        print(f"damaged or other versions: `python -m facelib data check NAME` names the file; "
              f"`python -m facelib data fetch {' '.join(bad)} --force` replaces them")
    return 0


def _fetch_sets(args: argparse.Namespace) -> int:
    root = data_root(args.root)
    keys = list(dict.fromkeys(_fetch.source_name(n) for n in args.names))  # every name checked before any download
    for key in keys:
        st = _fetch.fetch(key, root, force=args.force, mirror=args.mirror, progress=not args.no_progress)
        print(f"{key}: fetched into {root} ({_fetch.SOURCES[key].origin}), {_size(st.size)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    st = _fetch.check(args.name, args.root)
    for c in st.checks:
        print(f"{c.known.label}: {c.status}" + (f" ({c.known.note})" if c.status == "differs" else ""))
    print(f"{st.name}: ok")
    return 0


def main_from_args(args: argparse.Namespace) -> int:
    return {"list": _list, "fetch": _fetch_sets, "check": _check}[args.data_command](args)
