"""`python -m facelib lfw select | view2 | report`: LFW developed on View 1, run once on View 2.

    python -m facelib lfw select                  # every candidate on View 1 -> frozen choice
    python -m facelib lfw select --append         # ... only candidates added to the search space since
    python -m facelib lfw view2                   # the frozen choice on all ten View 2 folds
    python -m facelib lfw view2 --test-folds 0 1 2 3 4 --out runs/lfw/a.csv   # split over processes
    python -m facelib lfw report runs/lfw/a.csv runs/lfw/b.csv                # ... and merge them
    python -m facelib lfw roc                     # lfw_view2_roc.csv again from the stored pair scores

`select` writes benchmarks/results/lfw_view1_selection.csv (every candidate's View 1 figures,
the chosen ones marked) and benchmarks/results/lfw_frozen.json; `view2` / `report` write
benchmarks/results/lfw_view2.csv (View 1 choice beside the View 2 mean ± SE), lfw_view2_folds.csv
(every fold's rows), lfw_view2_scores.csv (every test pair's score, one column per system; a part
`--out a.csv` keeps its scores in a.scores.csv beside it) and lfw_view2_roc.csv (the ROC averaged
over the ten folds, computed from those scores; `lfw roc` recomputes it from them). Every output
folder is probed before any work, so a read-only one fails at once, not after a fold is computed.
Needs LFW under $FACELIB_DATA (see data/README or `facelib.data.load("lfw-pairs")`'s error).
Errors rise to `facelib.cli.main` (one line on stderr): exit 2 for a bad option or a part / score
file that is not what the command needs, 1 for a missing file or a refusal to replace the frozen
choice without --overwrite.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from facelib import results as R
from facelib.files import atomic_path, check_writable
from facelib.options import UsageError

from . import selection as L

FROZEN = "lfw_frozen.json"
#: Columns a part written by `lfw view2 --out` must have for `lfw report` to merge it.
PART_COLUMNS = ("method", "representation", "protocol", "fold", "metric", "value", "frozen_sha256")
SCORES = "lfw_view2_scores"


def _results_dir(args) -> Path:
    return Path(args.results) if args.results else R.results_dir()


def scores_path(part: str | Path) -> Path:
    """Where a View 2 part's pair scores live: a.csv -> a.scores.csv beside it."""
    part = Path(part)
    return part.with_name(f"{part.stem}.scores.csv")


class _TestFolds(argparse.Action):
    """--test-folds checked when parsed (View 2 folds, each once), not when its fold is reached."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, L.check_test_folds(values))
        except ValueError as err:
            parser.error(f"argument {option_string}: {err}")


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", help="folder of the results files (default: $FACELIB_RESULTS, else ./benchmarks/results)")
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
    v.add_argument("--test-folds", type=int, nargs="+", metavar="K", action=_TestFolds,
                   help=f"only these folds, each once ({L.VIEW2_FOLDS[0]}-{L.VIEW2_FOLDS[-1]}; needs --out)")
    v.add_argument("--out", help="write the per-fold rows here and the pair scores beside it (PART.scores.csv); "
                                 "merge parts with `lfw report`")
    r = sub.add_parser("report", help="merge per-fold View 2 parts into the results file")
    r.add_argument("parts", nargs="+", help="CSV files written by `lfw view2 --out` (together: each fold once)")
    r.add_argument("--frozen", help=f"the frozen choice (default: <results>/{FROZEN})")
    c = sub.add_parser("roc", help="recompute lfw_view2_roc.csv from the stored View 2 pair scores")
    c.add_argument("--scores", help=f"the pair scores (default: <results>/{SCORES}.csv)")
    c.add_argument("--frozen", help=f"the frozen choice (default: <results>/{FROZEN})")


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
    try:
        table = R.read("lfw_view1_selection", results)
    except FileNotFoundError:
        raise FileNotFoundError(f"select --append: no View 1 file in {results} yet; run `lfw select` first") \
            from None
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
        for b in best:
            print(f"  would freeze: {b.category:36s} {b.describe()}")
        raise FileExistsError(f"the View 1 choice changed (above: what would be frozen); pass --overwrite to "
                              f"freeze it in place of {frozen}")
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


#: The View 2 figures a rerun must repeat for the earlier row to be the same measurement.
VIEW2_FIGURES = ("view2_accuracy", "view2_se", "view2_auc", "view2_eer")


def keep_superseded(results: Path, new: pd.DataFrame) -> int:
    """Before `new` View 2 rows replace lfw_view2.csv: rows there that `new` does not repeat - of
    another frozen choice (a selection since grown), or of the same choice measured with other
    figures (training code changed since) - move to lfw_view2_superseded.csv with their own
    provenance, so every View 2 figure ever measured stays on record. Returns the rows moved."""
    try:
        old = R.read("lfw_view2", results)
    except FileNotFoundError:
        return 0
    key = ["frozen_sha256", "system"]
    again = old[key].merge(new[key + list(VIEW2_FIGURES)], on=key, how="left")
    repeated = np.logical_and.reduce([np.isclose(old[f].to_numpy(float), again[f].to_numpy(float), rtol=0, atol=1e-9)
                                      for f in VIEW2_FIGURES])
    moved = old[~repeated]
    if moved.empty:
        return 0
    try:
        earlier = R.read("lfw_view2_superseded", results)
    except FileNotFoundError:
        earlier = moved.iloc[:0]
    both = pd.concat([earlier, moved], ignore_index=True)
    R.save(both.drop_duplicates(subset=[*key, "commit", "date"], keep="last"), "lfw_view2_superseded", results)
    print(f"lfw: {len(moved)} earlier View 2 row(s) that this run does not repeat kept in "
          f"{results / 'lfw_view2_superseded.csv'}")
    return len(moved)


def check_folds(parts: list[tuple[str, list[int]]]) -> list[int]:
    """The View 2 folds of merged parts ((name, its folds) each, a part given twice twice), refusing
    a fold in two parts (the mean ± SE would count it twice), folds View 2 lacks, and missing folds."""
    where: dict[int, list[str]] = {}
    for name, folds in parts:
        for k in sorted(set(folds)):
            where.setdefault(int(k), []).append(name)
    twice = {k: names for k, names in where.items() if len(names) > 1}
    if twice:
        said = "; ".join(f"fold {k} in {', '.join(names)}" for k, names in sorted(twice.items()))
        raise ValueError(f"fold(s) {sorted(twice)} come from more than one part ({said}); give each part "
                         "once and each fold in one part only")
    unknown = sorted(set(where) - set(L.VIEW2_FOLDS))
    if unknown:
        raise ValueError(f"fold(s) {unknown} are not View 2 folds (View 2 has folds "
                         f"{L.VIEW2_FOLDS[0]}-{L.VIEW2_FOLDS[-1]}); these parts are not View 2 results")
    missing = sorted(set(L.VIEW2_FOLDS) - set(where))
    if missing:
        raise ValueError(f"View 2 fold(s) {missing} are missing (the parts cover {sorted(where)}); all ten are "
                         f"needed: run them with `lfw view2 --test-folds {' '.join(map(str, missing))} --out "
                         "PART.csv` and merge every part with `lfw report`")
    return sorted(where)


def _read_part(part: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, pair scores) of one `lfw view2 --out` part, each checked to be what that writes."""
    path = Path(part)
    if not path.is_file():
        raise FileNotFoundError(f"no part {path}; pass the CSV files written by `lfw view2 --out`")
    rows = pd.read_csv(path)
    missing = [c for c in PART_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; it is not a part written by `lfw view2 --out` "
                         f"(which has {list(PART_COLUMNS)}, ...)")
    sp = scores_path(path)
    if not sp.is_file():
        folds = " ".join(str(k) for k in sorted(rows.fold.unique()))
        raise FileNotFoundError(f"{path} has no pair scores beside it ({sp}); the ROC is computed from them: "
                                f"rerun the part with `lfw view2 --test-folds {folds} --out {path}`")
    scores = pd.read_csv(sp)
    L.check_scores(scores, str(sp))
    if set(scores.fold) != set(rows.fold):
        raise ValueError(f"{sp} holds folds {sorted(set(scores.fold))} but {path} folds {sorted(set(rows.fold))}; "
                         "they were not written together: rerun the part")
    return rows, scores


def _write_view2(rows: pd.DataFrame, scores: pd.DataFrame, frozen: Path, results: Path) -> int:
    """The View 2 results files of one complete run: the summary, every fold's rows, every pair's
    score, and the ROC computed from those scores."""
    check_folds([("the View 2 rows", rows.fold.unique().tolist())])
    check_folds([("the View 2 scores", scores.fold.unique().tolist())])
    table = L.view2_table(rows, frozen)
    roc = L.roc_table_from_scores(scores, frozen)
    keep_superseded(results, table)
    R.write("lfw_view2", table, folder=results)
    R.write("lfw_view2_folds", rows, folder=results)
    R.write(SCORES, scores, folder=results)
    R.write("lfw_view2_roc", roc, folder=results)
    print(table.drop(columns=["frozen_sha256"]).to_string(index=False))
    print("\nPublished anchors (LFW View 2, mean ± SE):")
    for cat, anchors in L.PUBLISHED.items():
        for name, (m, se) in anchors.items():
            print(f"  {cat:36s} {name:46s} {100 * m:.2f} ± {100 * se:.2f}")
    return 0


def _write_part(rows: pd.DataFrame, scores: pd.DataFrame, out: Path) -> None:
    """A part's rows at `out` and its pair scores beside it, each replaced whole."""
    umask = os.umask(0)
    os.umask(umask)
    for frame, path in ((rows, out), (scores, scores_path(out))):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
            tmp.chmod(0o666 & ~umask)  # the temp file is private; the part is as any file written here
        print(f"wrote {path}")


def _check_out(out: str) -> Path:
    """`--out` as a path whose folder can be written (probed now, before any fold is computed)."""
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(f"--out {path} is a folder; give a CSV file name such as {path / 'part.csv'}")
    check_writable(path.parent, "--out")
    return path


def _view2(args, results: Path, frozen: Path) -> int:
    if args.test_folds and not args.out:
        raise UsageError("--test-folds runs part of View 2; add --out PART.csv and merge the parts with "
                         "`lfw report`")
    out = _check_out(args.out) if args.out else None
    if not args.test_folds:  # the whole of View 2 also writes the results files
        check_writable(results, "results")
    rows, scores = L.run_view2(frozen, test_folds=args.test_folds, with_scores=True)
    if out is not None:
        _write_part(rows, scores, out)
        if args.test_folds:
            return 0
    return _write_view2(rows, scores, frozen, results)


def _report(args, results: Path, frozen: Path) -> int:
    check_writable(results, "results")
    _, sha = L.read_frozen(frozen)
    parts = [_read_part(p) for p in args.parts]
    check_folds([(p, rows.fold.unique().tolist()) for p, (rows, _) in zip(args.parts, parts)])
    rows = pd.concat([r for r, _ in parts], ignore_index=True)
    scores = pd.concat([sc.drop(columns=[c for c in R.PROVENANCE if c in sc.columns]) for _, sc in parts],
                       ignore_index=True)
    stale = (set(rows.frozen_sha256) | set(scores.frozen_sha256)) - {sha}
    if stale:
        raise ValueError(f"parts were run from another frozen choice ({sorted(stale)}) than {frozen}; rerun them "
                         "with `lfw view2 --test-folds ... --out PART.csv`")
    return _write_view2(rows, scores, frozen, results)


def _roc(args, results: Path, frozen: Path) -> int:
    """`lfw roc`: lfw_view2_roc.csv recomputed from the stored pair scores (no View 2 run)."""
    path = Path(args.scores) if args.scores else results / f"{SCORES}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no View 2 pair scores at {path}; `lfw view2` (or `lfw report`) stores them")
    check_writable(results, "results")
    try:
        scores = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a table of View 2 pair scores ({' '.join(str(err).split())[:120]}); pass "
                         f"the {SCORES}.csv (or PART.scores.csv) that `lfw view2` writes") from err
    L.check_scores(scores, str(path), L.view2_pair_table())  # whole folds, with View 2's labels
    check_folds([(str(path), scores.fold.unique().tolist())])
    roc = L.roc_table_from_scores(scores, frozen)
    written = R.write("lfw_view2_roc", roc, folder=results)
    print(f"wrote {written} from {path}")
    return 0


def main_from_args(args) -> int:
    results = _results_dir(args)
    frozen = Path(getattr(args, "frozen", None) or results / FROZEN)
    if args.lfw_command == "select":  # the View 1 table and the frozen choice both go to results
        check_writable(results, "results")
    if args.lfw_command == "select" and args.append:
        return _select_append(args, results, frozen)
    if args.lfw_command == "select":
        if frozen.exists() and not args.overwrite:
            raise FileExistsError(f"select: {frozen} exists (a frozen choice is made once); pass --overwrite to "
                                  "replace it")
        view1, best = L.select(L.candidates(args.profile))
        R.write("lfw_view1_selection", _selection_table(view1, best), folder=results)
        return _refreeze(best, view1, frozen)
    if args.lfw_command == "view2":
        return _view2(args, results, frozen)
    if args.lfw_command == "roc":
        return _roc(args, results, frozen)
    return _report(args, results, frozen)
