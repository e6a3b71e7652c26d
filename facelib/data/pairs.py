"""Verification pairs of a `FaceDataset`: every pair sampler, and each row's LFW fold.

A pair table has the columns of `PAIR_COLUMNS` (left, right: row indices; same: bool; fold).
`balanced_pairs` (what `FaceDataset.pairs` runs) draws n/2 same-person and n/2
different-person pairs; `across_factor_pairs` draws them so that a nuisance factor works
against identity (Yale B lighting); both go through one rejection sampler, so pairs are
distinct, never pair an image with itself and are deterministic for a seed.
`max_balanced_pairs` is how many balanced pairs a set can give; `person_folds` gives every
row its person's fold of an official (person-disjoint) pair list; `person_disjoint_pairs`
picks pairs of a table in which no person appears twice (independent rows for a test);
`refuse_self_pairs` (from `checks`, which runs it on every pair table it checks) is the check every
given pair table (official lists, a FaceDataset's, a protocol's) passes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .checks import check_identity, check_pair_table, refuse_self_pairs

__all__ = ["balanced_pairs", "across_factor_pairs", "max_balanced_pairs", "person_folds", "labelled_people",
           "person_disjoint_pairs", "refuse_self_pairs"]

Pair = tuple[int, int]


def labelled_people(dataset: Any, what: str) -> np.ndarray:
    """The distinct known identities (>= 0) of `dataset`, refusing a set with fewer than two."""
    known = np.unique(dataset.identity[dataset.identity >= 0])
    if known.size < 2:
        raise ValueError(
            f"{dataset.name}: {what} needs identity labels for at least two people, "
            f"found {known.size}; use a labelled set (olivetti, lfw-people, yaleb, synthetic, folder)"
        )
    return known


def max_balanced_pairs(identity: Any) -> int:
    """The largest balanced n a set gives: twice its same-person pairs (unknown identity -1 left out)."""
    identity = np.asarray(identity)
    counts = np.unique(identity[identity >= 0], return_counts=True)[1]
    return 2 * int((counts * (counts - 1) // 2).sum())


def _draw(k: int, propose: Callable[[], Pair | None], seen: set[Pair], max_tries: int, failure: str) -> list[Pair]:
    """`k` pairs from `propose` (None: no pair this try), skipping any already in `seen` (either order)."""
    out: list[Pair] = []
    tries = 0
    while len(out) < k:
        tries += 1
        if tries > max_tries:
            raise RuntimeError(failure)
        pair = propose()
        if pair is None:
            continue
        key = (min(pair), max(pair))
        if key in seen:
            continue
        seen.add(key)
        out.append(pair)
    return out


def _table(same: list[Pair], different: list[Pair], rng: np.random.Generator) -> pd.DataFrame:
    rows = [(a, b, True) for a, b in same] + [(a, b, False) for a, b in different]
    order = rng.permutation(len(rows))
    table = pd.DataFrame([rows[i] for i in order], columns=["left", "right", "same"])
    table["fold"] = 0
    return table


def balanced_pairs(dataset: Any, n: int, seed: int = 0) -> pd.DataFrame:
    """`n` balanced verification pairs (n/2 same person, n/2 different) of a `FaceDataset`.

    fold is always 0 here (official lists such as LFW's keep theirs in `pair_table`);
    rows of unknown identity (-1) are never drawn.
    """
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2 (half same, half different), got {n}")
    people = labelled_people(dataset, "pairs")
    rng = np.random.default_rng(seed)
    by_person = {p: np.flatnonzero(dataset.identity == p) for p in people}
    multi = np.array([p for p in people if by_person[p].size >= 2])
    if multi.size == 0:
        raise ValueError(f"{dataset.name}: no identity has two images, so no same-person pair exists")
    half = n // 2
    max_same = max_balanced_pairs(dataset.identity) // 2
    if half > max_same:
        raise ValueError(f"{dataset.name}: asked for {half} same-person pairs, only {max_same} exist")

    def same() -> Pair:
        p = multi[rng.integers(multi.size)]
        a, b = rng.choice(by_person[p], size=2, replace=False)
        return int(a), int(b)

    def different() -> Pair:
        p, q = rng.choice(people, size=2, replace=False)
        return int(by_person[p][rng.integers(by_person[p].size)]), int(by_person[q][rng.integers(by_person[q].size)])

    seen: set[Pair] = set()
    failure = f"{dataset.name}: could not draw {half} distinct pairs"
    return _table(_draw(half, same, seen, 1000 * half + 10000, failure),
                  _draw(half, different, seen, 1000 * half + 10000, failure), rng)


def across_factor_pairs(dataset: Any, n: int, factors: Sequence[str] = ("azimuth", "elevation"),
                        seed: int = 0) -> pd.DataFrame:
    """Balanced pairs that separate identity from a nuisance factor (e.g. Yale B lighting).

    Same-person pairs differ in the factors (different lighting); different-person pairs
    share them (same lighting), so a representation that encodes lighting rather than
    identity scores below chance.
    """
    if dataset.factors is None or not set(factors) <= set(dataset.factors.columns):
        raise ValueError(f"{dataset.name}: needs factors {list(factors)}; this set has "
                         f"{None if dataset.factors is None else list(dataset.factors.columns)}")
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2, got {n}")
    rng = np.random.default_rng(seed)
    ids = dataset.identity
    key = pd.Series(list(zip(*[dataset.factors[f].to_numpy() for f in factors])))
    lighting = pd.factorize(key)[0]

    def propose(same: bool) -> Pair | None:
        a = int(rng.integers(ids.size))
        if ids[a] < 0:
            return None
        if same:
            cand = np.flatnonzero((ids == ids[a]) & (lighting != lighting[a]))
        else:
            cand = np.flatnonzero((ids != ids[a]) & (ids >= 0) & (lighting == lighting[a]))
        if cand.size == 0:
            return None
        return a, int(cand[rng.integers(cand.size)])

    seen: set[Pair] = set()
    drawn = {same: _draw(n // 2, lambda: propose(same), seen, 200 * n + 10000,
                         f"{dataset.name}: could not draw {n // 2} {'same' if same else 'different'} pairs")
             for same in (True, False)}
    return _table(drawn[True], drawn[False], rng)


def person_folds(identity: Any, pair_table: pd.DataFrame) -> np.ndarray:
    """The fold of each row's person: (N,) int64, -1 for people in no pair.

    LFW builds each fold's pairs from its own people, so a person belongs to one fold; a
    person found in pairs of two folds is an error (such folds cannot give unrestricted
    training images without training on a test person).
    """
    ids = np.asarray(identity)
    table = check_pair_table(pair_table, len(ids))
    ids = check_identity(ids, len(ids))
    rows = np.r_[table["left"].to_numpy(), table["right"].to_numpy()]
    folds = np.r_[table["fold"].to_numpy(), table["fold"].to_numpy()]
    per_person = pd.DataFrame({"person": ids[rows], "fold": folds}).drop_duplicates()
    shared = per_person[per_person["person"].duplicated(keep=False)]
    if len(shared):
        first = shared["person"].iloc[0]
        raise ValueError(
            f"{shared['person'].nunique()} person(s) appear in pairs of more than one fold "
            f"(e.g. identity {first} in folds {sorted(shared.loc[shared['person'] == first, 'fold'])}); "
            "unrestricted training images need person-disjoint folds, as LFW's are"
        )
    lookup = dict(zip(per_person["person"], per_person["fold"]))
    return np.array([lookup.get(i, -1) for i in ids], dtype=np.int64)


def person_disjoint_pairs(pair_table: pd.DataFrame, identity, seed: int = 0) -> np.ndarray:
    """Positions (into `pair_table`) of a maximal set of pairs in which no person appears twice.

    Pairs are visited in a seeded random order and kept when neither of their people is in a
    kept pair, so every pair left out shares a person with a kept one. Same-person pairs use
    one person, different-person pairs two. Rows of such a set share no image and no person,
    the independence a permutation test (or the F approximation) needs.
    """
    ids = np.asarray(identity)
    table = check_pair_table(pair_table, len(ids), ("left", "right", "same"), repeats=True)  # a sample may repeat
    ids = check_identity(ids, len(ids))
    people = np.c_[ids[table["left"].to_numpy()], ids[table["right"].to_numpy()]]
    if (people < 0).any():
        raise ValueError("person_disjoint_pairs needs the identity of every paired image (no -1)")
    used: set[int] = set()
    keep = []
    for i in np.random.default_rng(seed).permutation(len(table)):
        a, b = int(people[i, 0]), int(people[i, 1])
        if a not in used and b not in used:
            keep.append(i)
            used.update((a, b))
    return np.sort(np.asarray(keep, dtype=np.int64))
