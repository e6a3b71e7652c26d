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

__all__ = ["check_identity", "check_same", "check_indices", "check_pair_table", "refuse_self_pairs"]


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
                     name: str = "pair_table") -> pd.DataFrame:
    """A copy of `pair_table` with left/right checked as int64 rows of 0..n-1 and same as bool,
    refusing a pair of a row with itself (`refuse_self_pairs`)."""
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
    return table


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
