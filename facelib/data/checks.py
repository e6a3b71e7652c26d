"""One validator for the verification inputs every entry point takes.

Identity labels, same/different labels and pair tables arrive as lists, pandas columns or
arrays of any dtype; numpy would quietly turn strings into all-True labels, floats into
truncated indices and a label list of the wrong length into an IndexError far from the
call. Each public function of `facelib.verify` (and the pair helpers of `facelib.data.pairs`)
passes them through here first, so a bad input is refused with the same clear message wherever
it enters. It lives in `facelib.data` so that both can import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_identity", "check_same", "check_indices", "check_pair_table", "refuse_self_pairs",
           "refuse_repeated_pairs", "refuse_contradicting_labels", "refuse_people_in_two_folds",
           "check_fold_counts", "check_disjoint"]


def _show(values: np.ndarray, k: int = 3) -> str:
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:k]) + (" ..." if values.size > k else "")


def check_identity(identity: Any, n: int, name: str = "identity") -> np.ndarray:
    """`identity` as int64 (n,): one integer label per row (-1 = unknown)."""
    ids = np.asarray(identity)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise ValueError(
            f"{name} must give one label per row: expected {n} labels, got shape {ids.shape}; "
            "pass the identity labels of the same images (in the same order) as the data"
        )
    if ids.dtype == bool or not (np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.floating)):
        raise ValueError(f"{name} must be integer labels (-1 for unknown), got dtype {ids.dtype} "
                         f"(e.g. {_show(ids)}); map names to integers first (np.unique(..., return_inverse=True))")
    if np.issubdtype(ids.dtype, np.floating):
        bad = ~np.isfinite(ids) | (ids != np.round(ids))
        if bad.any():
            raise ValueError(f"{name} must be whole numbers (-1 for unknown); rows {_show(np.flatnonzero(bad))} "
                             f"hold {_show(ids[bad])}")
    return ids.astype(np.int64)


def check_same(same: Any, n: int | None = None, name: str = "same") -> np.ndarray:
    """`same` as a bool array: booleans or 0/1 only (strings such as "False" are refused)."""
    s = np.asarray(same)
    if s.ndim != 1 or (n is not None and s.shape[0] != n):
        raise ValueError(f"{name} must be 1-D with one label per pair ({n if n is not None else 'n'}), got shape {s.shape}")
    if s.dtype == bool:
        return s
    if s.dtype == object:  # a pandas column of Python bools / ints, or of strings
        if any(isinstance(v, (str, bytes)) for v in s):
            raise ValueError(f"{name} must be True/False (or 1/0), got strings such as {_show(s)}; "
                             "strings are not labels: convert them, e.g. same == 'yes'")
        try:
            s = s.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be True/False (or 1/0), got values such as {_show(s)}; "
                             "convert them, e.g. same == 'yes'") from None
    if not (np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)):
        raise ValueError(f"{name} must be True/False (or 1/0), got dtype {s.dtype} (e.g. {_show(s)}); "
                         "strings are not labels: convert them, e.g. same == 'yes'")
    bad = ~np.isin(s, [0, 1])
    if bad.any():
        raise ValueError(f"{name} must be True/False (or 1/0); pairs {_show(np.flatnonzero(bad))} hold "
                         f"{_show(s[bad])}")
    return s.astype(bool)


def check_indices(idx: Any, n: int, name: str) -> np.ndarray:
    """Row indices as int64 within 0..n-1 (whole-number floats allowed, NaN and fractions not)."""
    a = np.asarray(idx)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must hold integer row numbers, got dtype {a.dtype} (e.g. {_show(a.ravel())})")
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            raise ValueError(f"{name} must hold whole row numbers; entries {_show(np.flatnonzero(bad.ravel()))} "
                             f"hold {_show(a[bad])}; drop or fix those pairs")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        out = a[(a < 0) | (a >= n)]
        raise IndexError(f"{name} refers to rows outside 0..{n - 1} (e.g. {_show(out)}); the pair table and "
                         "the embeddings must come from the same dataset")
    return a


def check_pair_table(pair_table: Any, n: int, columns: tuple[str, ...] = ("left", "right", "same", "fold"),
                     name: str = "pair_table", *, identity: Any = None, people_in_one_fold: bool = False,
                     repeats: bool = False) -> pd.DataFrame:
    """A copy of `pair_table` with left/right checked as int64 rows of 0..n-1 and same as bool,
    refusing a pair of a row with itself (`refuse_self_pairs`) and a pair given twice, in one
    fold or in two (`refuse_repeated_pairs`; `repeats=True` allows them, for a helper that only
    selects from a sample of pairs, as `pairs.person_disjoint_pairs`). With `identity` (one label per row, -1 unknown),
    `same` labels that contradict it are refused (`refuse_contradicting_labels`), and with
    `people_in_one_fold` a person whose pairs lie in two folds (`refuse_people_in_two_folds`)."""
    if not isinstance(pair_table, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame with columns {', '.join(columns)}, got {type(pair_table).__name__}")
    missing = [c for c in columns if c not in pair_table.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; it needs {', '.join(columns)} "
                         "(FaceDataset.pairs or pair_table give such a table)")
    table = pair_table.reset_index(drop=True).copy()
    for col in ("left", "right"):
        if col in table:
            table[col] = check_indices(table[col].to_numpy(), n, f"{name} column {col!r}")
    if "left" in table and "right" in table:
        refuse_self_pairs(table.set_axis(pair_table.index), name)
    if "same" in table:
        table["same"] = check_same(table["same"].to_numpy(), len(table), f"{name} column 'same'")
    shown = table.set_axis(pair_table.index)
    if "left" in table and "right" in table:
        if not repeats:
            refuse_repeated_pairs(shown, name)
        if identity is not None:
            ids = check_identity(identity, n)
            if "same" in table:
                refuse_contradicting_labels(shown, ids, name)
            if people_in_one_fold and "fold" in table:
                refuse_people_in_two_folds(shown, ids, name)
    return table


def _item(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _pairs_text(table: pd.DataFrame, where: np.ndarray, k: int = 5) -> str:
    return ", ".join(f"pair {table.index[i]} ({table['left'].iat[i]}, {table['right'].iat[i]}"
                     + (f", fold {_item(table['fold'].iat[i])!r}" if "fold" in table else "") + ")"
                     for i in where[:k]) + (" ..." if len(where) > k else "")


def refuse_repeated_pairs(table: pd.DataFrame, what: str) -> None:
    """ValueError naming the pairs (by the table's index) that repeat an earlier pair of the same
    two images (in either order), in one fold or across folds: a repeated pair counts twice, and
    across folds it is tested on a fold that trained on it."""
    left, right = np.asarray(table["left"]), np.asarray(table["right"])
    key = pd.Series(list(zip(np.minimum(left, right), np.maximum(left, right))))
    dup = np.flatnonzero(key.duplicated(keep=False).to_numpy())
    if dup.size:
        raise ValueError(f"{what}: {dup.size} pairs repeat the same two images: {_pairs_text(table, dup, 6)}; a pair "
                         "counts once - remove the repeats (a pair in two folds is tested on a fold trained on it)")


def refuse_contradicting_labels(table: pd.DataFrame, identity: np.ndarray, what: str) -> None:
    """ValueError naming the pairs whose `same` label contradicts the known identities of their images."""
    left, right = np.asarray(table["left"]), np.asarray(table["right"])
    a, b = identity[left], identity[right]
    known = (a >= 0) & (b >= 0)
    bad = np.flatnonzero(known & (np.asarray(table["same"], dtype=bool) != (a == b)))
    if bad.size:
        said = ", ".join(f"pair {table.index[i]} (rows {left[i]}, {right[i]}: people {a[i]}, {b[i]}, same="
                         f"{bool(table['same'].iat[i])})" for i in bad[:5]) + (" ..." if bad.size > 5 else "")
        raise ValueError(f"{what}: {bad.size} pair(s) have a same label that contradicts the identities: {said}; fix "
                         "the labels (or the identities) - the same label must say whether the two people are one")


def refuse_people_in_two_folds(table: pd.DataFrame, identity: np.ndarray, what: str) -> None:
    """ValueError naming the people (known identities) whose pairs lie in more than one fold, for
    protocols whose folds are disjoint in people (LFW View 2)."""
    rows = np.r_[np.asarray(table["left"]), np.asarray(table["right"])]
    folds = np.r_[np.asarray(table["fold"]), np.asarray(table["fold"])]
    people = pd.DataFrame({"person": identity[rows], "fold": folds})
    people = people[people["person"] >= 0].drop_duplicates()
    counts = people.groupby("person")["fold"].apply(lambda f: sorted(f.tolist()))
    bad = counts[counts.apply(len) > 1]
    if len(bad):
        said = ", ".join(f"person {p} in folds {[_item(x) for x in f]}" for p, f in list(bad.items())[:5]) + (" ..." if len(bad) > 5 else "")
        raise ValueError(f"{what}: {len(bad)} person(s) appear in more than one fold: {said}; this protocol's folds "
                         "are disjoint in people (a fold must never test a person it trained on) - move each "
                         "person's pairs into one fold")


def check_fold_counts(table: pd.DataFrame, what: str, expected: tuple[int, int] | None = None) -> None:
    """Every fold holds the same numbers of same and of different pairs (`expected`: (same,
    different) per fold, else those of the largest fold); ValueError naming the folds that do not."""
    counts = table.groupby("fold")["same"].agg(same="sum", total="size")
    counts["different"] = counts["total"] - counts["same"]
    want = expected if expected is not None else (int(counts["same"].max()), int(counts["different"].max()))
    bad = counts[(counts["same"] != want[0]) | (counts["different"] != want[1])]
    if len(bad):
        said = ", ".join(f"fold {_item(k)!r}: {int(r.same)} same + {int(r.different)} different" for k, r in bad.iterrows())
        raise ValueError(f"{what}: folds of other sizes than {want[0]} same + {want[1]} different pairs: {said}; "
                         "every fold of the protocol holds as many - a fold was cut, duplicated or relabelled: "
                         "use the protocol's whole pair table")


def check_disjoint(train_pairs: pd.DataFrame, test_pairs: pd.DataFrame, what: str, identity: Any = None) -> None:
    """ValueError when training and test pairs share an image (row) - or, with `identity`, a
    known person - naming the test pairs and the images or people involved."""
    train_rows = np.unique(np.r_[np.asarray(train_pairs["left"]), np.asarray(train_pairs["right"])])
    tl, tr = np.asarray(test_pairs["left"]), np.asarray(test_pairs["right"])
    shared = np.isin(tl, train_rows) | np.isin(tr, train_rows)
    if shared.any():
        rows = np.intersect1d(np.r_[tl, tr], train_rows)
        where = np.flatnonzero(shared)
        said = ", ".join(f"pair {test_pairs.index[i]} ({tl[i]}, {tr[i]})" for i in where[:5]) + \
            (" ..." if where.size > 5 else "")
        raise ValueError(f"{what}: {where.size} test pair(s) use images the training pairs use: {said} (images "
                         f"{_show(rows, 6)}); train and test pairs must be disjoint - test on other images")
    if identity is None:
        return
    ids = np.asarray(identity)
    train_people = np.unique(ids[train_rows])
    train_people = train_people[train_people >= 0]
    a, b = ids[tl], ids[tr]
    shared = np.isin(a, train_people) | np.isin(b, train_people)
    if shared.any():
        people = np.intersect1d(np.r_[a, b], train_people)
        where = np.flatnonzero(shared)
        said = ", ".join(f"pair {test_pairs.index[i]} (people {a[i]}, {b[i]})" for i in where[:5]) + \
            (" ..." if where.size > 5 else "")
        raise ValueError(f"{what}: {where.size} test pair(s) show people the training pairs show: {said} (people "
                         f"{_show(people, 6)}); this protocol tests on people absent from training - split by person")


def refuse_self_pairs(table: pd.DataFrame, what: str) -> None:
    """ValueError naming the pairs (by the table's index) whose left and right are the same image
    row: such a pair scores as a perfect match whatever the model, so it would inflate every
    same-person score. Every pair table passes it: official lists, a FaceDataset's, a protocol's."""
    left, right = np.asarray(table["left"]), np.asarray(table["right"])
    bad = np.flatnonzero(left == right)
    if bad.size:
        shown = ", ".join(f"pair {table.index[i]} (row {left[i]} with itself)" for i in bad[:5]) + \
            (" ..." if bad.size > 5 else "")
        raise ValueError(f"{what}: {bad.size} pair(s) pair an image with itself: {shown}; remove them from the "
                         "pair table (or fix their row indices) before scoring")
