"""`python -m facelib lfw select | view2 | report`: LFW developed on View 1, run once on View 2.

    python -m facelib lfw select                  # every candidate on View 1 -> frozen choice
    python -m facelib lfw select --append         # ... only candidates added to the search space since
    python -m facelib lfw view2                   # the frozen choice on all ten View 2 folds
    python -m facelib lfw view2 --test-folds 0 1 2 3 4 --out runs/lfw/a.csv   # split over processes
    python -m facelib lfw report runs/lfw/a.csv runs/lfw/b.csv                # ... and merge them

`select` writes benchmarks/results/lfw_view1_selection.csv (every candidate's View 1 figures,
the chosen ones marked) and benchmarks/results/lfw_frozen.json; `view2` / `report` write
benchmarks/results/lfw_view2.csv (View 1 choice beside the View 2 mean ± SE), lfw_view2_folds.csv
(every fold's rows) and lfw_view2_roc.csv (the ROC averaged over the ten folds). Needs LFW under
$FACELIB_DATA (see data/README or `facelib.data.load("lfw-pairs")`'s error for how to get it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from . import selection as L

FROZEN = "lfw_frozen.json"


def _results_dir(args) -> Path:
    from facelib.results import results_dir

    return Path(args.results) if args.results else results_dir()


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", help="folder of the results files (default: benchmarks/results)")
    sub = p.add_subparsers(dest="lfw_command", required=True)
    s = sub.add_parser("select", help="score every candidate setting on View 1 and freeze the best")
    s.add_argument("--profile", choices=("full", "quick"), default="full",
                   help="the search space (quick: a smoke run of every family)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing frozen choice")
    s.add_argument("--append", action="store_true",
                   help="score only the candidates the View 1 file lacks (a search space grown since), "
                        "add them to it and choose again over every candidate; a changed choice "
                        "replaces the frozen file only with --overwrite")
    v = sub.add_parser("view2", help="run the frozen settings once on LFW View 2")
    v.add_argument("--frozen", help=f"the frozen choice (default: <results>/{FROZEN})")
    v.add_argument("--test-folds", type=int, nargs="+", metavar="K", help="only these folds (needs --out)")
    v.add_argument("--out", help="write the per-fold rows here (merge parts with `lfw report`)")
    r = sub.add_parser("report", help="merge per-fold View 2 parts into the results file")
    r.add_argument("parts", nargs="+", help="CSV files written by `lfw view2 --out`")
    r.add_argument("--frozen", help=f"the frozen choice (default: <results>/{FROZEN})")


def _selection_table(view1: pd.DataFrame, best) -> pd.DataFrame:
    wide = view1.pivot_table(index=["family", "setting", "category", "representation", "method", "setting_json"],
                             columns="metric", values="value", sort=False).reset_index()
    chosen = {b.key() for b in best}
    wide["chosen"] = wide["setting_json"].isin(chosen)
    return wide[["family", "setting", "category", "representation", "method", "accuracy", "auc", "eer",
                 "chosen", "setting_json"]]


_ID = ["family", "setting", "category", "representation", "method", "setting_json"]


def _select_append(args, results: Path, frozen: Path) -> int:
    """`select --append`: the View 1 file grows by the candidates it lacks; the choice is made
    again over all of them (every candidate's figures measured on View 1 by the same code)."""
    from facelib import results as R

    try:
        table = R.read("lfw_view1_selection", results)
    except FileNotFoundError:
        print(f"lfw select --append: no View 1 file in {results} yet; run `lfw select` first")
        return 2
    scored = set(table.setting_json)
    todo = [c for c in L.candidates(args.profile) if c.key() not in scored]
    print(f"lfw select --append: {len(todo)} new candidate(s) of {len(table) + len(todo)}")
    if todo:
        new = _selection_table(L.evaluate_view1(todo), [])
        R.append("lfw_view1_selection", new, key="setting_json", folder=results)
        table = R.read("lfw_view1_selection", results)
    tidy = table.melt(id_vars=_ID, value_vars=["accuracy", "auc", "eer"], var_name="metric", value_name="value")
    best = L.choose(tidy)
    before = ({L.LFWSetting.from_dict(e["setting"]).key() for e in L.read_frozen(frozen)[0]["frozen"]}
              if frozen.exists() else set())
    if {b.key() for b in best} == before:
        print(f"the choice is unchanged; {frozen} stays as it is")
        return 0
    if frozen.exists() and not args.overwrite:
        print(f"the View 1 choice changed; pass --overwrite to freeze it in place of {frozen}")
        for b in best:
            print(f"  would freeze: {b.category:36s} {b.describe()}")
        return 2
    table["chosen"] = table.setting_json.isin({b.key() for b in best})
    R.save(table, "lfw_view1_selection", results)
    return _refreeze(best, tidy, frozen)


def _refreeze(best, view1: pd.DataFrame, frozen: Path) -> int:
    """Replace the frozen file by `best` (the caller has checked --overwrite) and say so."""
    if frozen.exists():
        frozen.unlink()
    L.freeze(best, view1, frozen)
    for b in best:
        print(f"frozen: {b.category:36s} {b.describe()}; run `lfw view2` for it")
    return 0


def keep_superseded(results: Path, sha: str) -> int:
    """Before View 2 rows of the frozen file `sha` replace lfw_view2.csv: rows there of another
    frozen choice (a selection since grown) move to lfw_view2_superseded.csv with their own
    provenance, so every View 2 figure ever measured stays on record. Returns the rows moved."""
    from facelib import results as R

    try:
        old = R.read("lfw_view2", results)
    except FileNotFoundError:
        return 0
    moved = old[old.frozen_sha256 != sha]
    if moved.empty:
        return 0
    try:
        earlier = R.read("lfw_view2_superseded", results)
    except FileNotFoundError:
        earlier = moved.iloc[:0]
    both = pd.concat([earlier, moved], ignore_index=True)
    R.save(both.drop_duplicates(subset=["frozen_sha256", "system"], keep="last"), "lfw_view2_superseded", results)
    print(f"lfw: {len(moved)} View 2 row(s) of an earlier frozen choice kept in {results / 'lfw_view2_superseded.csv'}")
    return len(moved)


def _write_view2(rows: pd.DataFrame, frozen: Path, results: Path) -> int:
    from facelib import results as R

    folds = sorted(rows.fold.unique())
    if len(folds) != 10:
        print(f"lfw: the View 2 rows cover folds {folds}; all ten are needed for the results file "
              "(run the missing folds with --test-folds ... --out and merge with `lfw report`)")
        return 2
    table = L.view2_table(rows, frozen)
    keep_superseded(results, table.frozen_sha256.iloc[0])
    R.write("lfw_view2", table, folder=results)
    R.write("lfw_view2_folds", rows, folder=results)
    R.write("lfw_view2_roc", L.roc_table(rows, frozen), folder=results)
    print(table.drop(columns=["frozen_sha256"]).to_string(index=False))
    print("\nPublished anchors (LFW View 2, mean ± SE):")
    for cat, anchors in L.PUBLISHED.items():
        for name, (m, se) in anchors.items():
            print(f"  {cat:36s} {name:46s} {100 * m:.2f} ± {100 * se:.2f}")
    return 0


def main_from_args(args) -> int:
    from facelib.data import DataNotFoundError

    results = _results_dir(args)
    frozen = Path(getattr(args, "frozen", None) or results / FROZEN)
    try:
        if args.lfw_command == "select" and args.append:
            return _select_append(args, results, frozen)
        if args.lfw_command == "select":
            if frozen.exists() and not args.overwrite:
                print(f"lfw select: {frozen} exists (a frozen choice is made once); pass --overwrite to replace it")
                return 2
            view1, best = L.select(L.candidates(args.profile))
            from facelib import results as R

            R.write("lfw_view1_selection", _selection_table(view1, best), folder=results)
            return _refreeze(best, view1, frozen)
        if args.lfw_command == "view2":
            if args.test_folds and not args.out:
                print("lfw view2: --test-folds runs part of View 2; add --out PART.csv and merge with `lfw report`")
                return 2
            rows = L.run_view2(frozen, test_folds=args.test_folds)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                rows.to_csv(args.out, index=False)
                print(f"wrote {args.out}")
                return 0 if args.test_folds else _write_view2(rows, frozen, results)
            return _write_view2(rows, frozen, results)
        rows = pd.concat([pd.read_csv(p) for p in args.parts], ignore_index=True)
        doc, sha = L.read_frozen(frozen)
        stale = set(rows.frozen_sha256) - {sha}
        if stale:
            print(f"lfw report: parts were run from another frozen choice ({sorted(stale)}); rerun them")
            return 2
        return _write_view2(rows, frozen, results)
    except (DataNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"lfw {args.lfw_command}: {err}")
        return 2
