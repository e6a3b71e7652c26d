"""`python -m facelib zoo {list,build,check,figures}`: the shipped models, rebuilt, re-measured or drawn.

Errors rise to `facelib.cli.main` (one line on stderr; exit 2 for an unknown recipe, 1 for a
damaged manifest, a zoo in use or a failed build); `check` reports each model it cannot check on
its own line and exits 1 when any moved or failed.
"""

from __future__ import annotations

import argparse
import json
import sys

from facelib.registry import UnknownNameError

from . import RECIPES, Recipe, ZooError, build, entry, headline_metrics, load, manifest, within_tolerance
from .store import build_dir, write_entry, zoo_dir
from .figures import write_figures

__all__ = ["configure_parser", "main_from_args"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="zoo_command", required=True)
    sub.add_parser("list", help="the zoo's models with their headline metrics")
    b = sub.add_parser("build", help="train a recipe from scratch into a zoo folder (NAME.pt + manifest.json)")
    b.add_argument("names", nargs="+", metavar="NAME", help="recipe name(s), or 'all'")
    b.add_argument("--overwrite", action="store_true", help="replace a model the zoo already has")
    b.add_argument("--work-dir", default="runs/zoo", help="training run folders (resumed if interrupted)")
    b.add_argument("--device", default="auto")
    b.add_argument("--num-threads", type=int, default=None, help="torch CPU threads while training")
    b.add_argument("--folder", default=None,
                   help="zoo folder (default: $FACELIB_ZOO; else facelib/zoo/shipped in a checkout, the user zoo "
                        "~/.local/share/facelib/zoo for an installed facelib, whose shipped zoo is read-only)")
    c = sub.add_parser("check", help="recompute each model's headline metrics from its stored weights")
    c.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all)")
    c.add_argument("--record-new", action="store_true",
                   help="add to the manifest the headline metrics this facelib measures and the entry lacks "
                        "(only for a model whose stored metrics reproduce; stored ones are never changed)")
    f = sub.add_parser("figures", help="the original project's figures (reconstructions per beta, prior samples) "
                                       "of the zoo's LFW models")
    f.add_argument("out", help="folder for zoo_reconstructions.png, zoo_samples.png and zoo_figures.json (e.g. docs/)")


def main_from_args(args: argparse.Namespace) -> int:
    """Run `zoo list | build | check | figures`; 0, or 1 when `check` finds a model moved."""
    if args.zoo_command == "list":
        entries = manifest()  # a damaged manifest raises ZooError naming the file and what to do
        for name in RECIPES:
            e = entries.get(name)
            metrics = (e or {}).get("metrics") or {}
            shown = ("not built" if e is None else
                     ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
                     or "no metrics recorded")
            print(f"{name:26s} {shown}")
        return 0
    if args.zoo_command == "build":
        names = list(RECIPES) if args.names == ["all"] else args.names
        unknown = [n for n in names if n not in RECIPES]
        if unknown:
            raise UnknownNameError(f"unknown recipe(s) {unknown}; known: {', '.join(RECIPES)} (or 'all')")
        folder = build_dir(args.folder)  # the read-only shipped zoo of an installed facelib: refused now
        for name in names:
            record = build(name, folder=folder, work_dir=args.work_dir, overwrite=args.overwrite,
                           device=args.device, num_threads=args.num_threads, progress=True)
            print(f"{name}: {json.dumps(record['metrics'])} ({record['training']['train_seconds']:.0f} s training)")
        if folder.resolve() != zoo_dir().resolve():
            print(f"built into {folder}; zoo.load reads one zoo folder, now {zoo_dir()}: "
                  f"`export FACELIB_ZOO={folder}` to load from it")
        return 0
    if args.zoo_command == "figures":
        for file in write_figures(args.out):
            print(f"wrote {file}")
        return 0
    names = args.names or sorted(manifest())
    failed = 0
    for name in names:
        try:
            stored = entry(name)
            if not isinstance(stored.get("recipe"), dict) or not isinstance(stored.get("metrics"), dict):
                raise ZooError(f"the manifest entry of {name!r} has no recipe or no metrics to check against; "
                               f"rebuild it with `python -m facelib zoo build {name} --overwrite`")
            now = headline_metrics(load(name), Recipe.from_dict(stored["recipe"]))
        except (ZooError, FileNotFoundError, ValueError) as exc:  # the others are still checked
            print(f"facelib zoo check: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        moved = within_tolerance(now, stored["metrics"], stored.get("tolerance"))
        failed += bool(moved)
        shown = "; ".join(f"{k} {why}" for k, why in moved.items())
        print(f"{name}: {'NOT REPRODUCED: ' + shown if moved else 'ok'} {json.dumps(now)}")
        new = {k: v for k, v in now.items() if k not in stored["metrics"]}
        if args.record_new and new and not moved:
            write_entry(name, {**stored, "metrics": {**stored["metrics"], **new}})
            print(f"{name}: recorded {sorted(new)}")
    return 1 if failed else 0
