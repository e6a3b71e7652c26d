"""What a notebook says is what its numbers show.

A sentence in a notebook that states a result is either printed from the numbers (the
`describe_*` helpers build it) or followed by a check cell calling `expect`, which raises
`ClaimError` (an AssertionError, so ``pytest --nbval-lax`` fails) with the claim and the
evidence when the run contradicts it. Claims that hold only for trained models are checked
only where trained models are used (`trained_models`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["ClaimError", "expect", "trend", "describe_trend", "diagonal_dominance", "trained_models"]


class ClaimError(AssertionError):
    """A notebook's stated result does not hold in this run."""


def expect(condition: Any, claim: str, evidence: str = "") -> None:
    """Raise `ClaimError` unless `condition` holds; the message names the claim and the numbers."""
    if not isinstance(claim, str) or not claim:
        raise ValueError("expect needs the claim as a non-empty string, e.g. expect(a > b, 'a beats b', f'{a} vs {b}')")
    if not bool(condition):
        raise ClaimError(
            f"the notebook claims: {claim!r}, but this run does not show it"
            + (f" ({evidence})" if evidence else "")
            + "; change the sentence or find out what changed in the run"
        )


def trend(values: Sequence[float]) -> str:
    """"rises" (strictly increasing), "falls" (strictly decreasing), "is flat" or "is not monotone"."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError(f"trend needs two or more finite numbers in a row, got {values!r}")
    d = np.diff(v)
    if np.all(d > 0):
        return "rises"
    if np.all(d < 0):
        return "falls"
    if np.all(d == 0):
        return "is flat"
    return "is not monotone"


def describe_trend(table: pd.DataFrame, by: str, column: str, label: str, unit: str = "",
                   fmt: str = ".4g") -> str:
    """A sentence such as "As beta goes 1 → 4, the KL falls (12.3 → 8.1 nats)." from `table`
    sorted by `by`: the words come from the numbers, so they cannot contradict them."""
    for name in (by, column):
        if name not in table:
            raise ValueError(f"column {name!r} not in the table (columns: {list(table.columns)})")
    t = table.sort_values(by)
    xs, ys = t[by].tolist(), t[column].astype(float).tolist()
    unit = f" {unit}" if unit else ""
    steps = " → ".join(format(y, fmt) for y in ys)
    return f"As {by} goes {' → '.join(format(x, 'g') for x in xs)}, {label} {trend(ys)} ({steps}{unit})."


def diagonal_dominance(table: pd.DataFrame) -> pd.DataFrame:
    """For each row whose name is also a column: that cell against the row's other shared columns.

    Returns one row per such name with ``own`` (the diagonal cell), ``others`` (mean of the row's
    cells in the other shared columns), ``ratio`` = own / others and ``largest`` (the diagonal
    is the row's maximum over the shared columns). Reads e.g. a "which block spreads when a
    factor varies" table: clamping holds where the varying factor's own block spreads most.
    """
    shared = [r for r in table.index if r in table.columns]
    if len(shared) < 2:
        raise ValueError("diagonal_dominance needs at least two row names that are also column names; "
                         f"rows {list(table.index)}, columns {list(table.columns)}")
    rows = []
    for name in shared:
        cells = table.loc[name, shared].astype(float)
        others = cells.drop(name)
        rows.append({"row": name, "own": cells[name], "others": others.mean(),
                     "ratio": cells[name] / others.mean() if others.mean() > 0 else np.inf,
                     "largest": bool(cells[name] >= cells.max())})
    return pd.DataFrame(rows)


def trained_models(params: Mapping[str, Any]) -> bool:
    """Whether claims about trained models apply: the run uses the model zoo's trained models
    (``models == "zoo"``) or asks for them (``check_trained_claims``, on in the full profile)."""
    return params.get("models") == "zoo" or bool(params.get("check_trained_claims", False))
