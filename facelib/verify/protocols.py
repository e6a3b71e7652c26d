"""Verification protocols as objects, and the one `evaluate` that runs any of them.

A *protocol* says which pairs are trained and tested on and what labels the training side may use;
it yields its folds (`Fold`: train / test pair tables, the rows the scorers and the representation
are fitted on, "image-restricted" or "unrestricted"). The protocols:

* `Split`: one given train / test split of one set of rows (any fold a caller makes itself);
* `Folds` / `View2`: k-fold, every test fold against all the others (LFW View 2: ten folds);
  `image_folds=person_folds(...)` trains on every image of the other folds' people (unrestricted);
* `View1`: LFW View 1, pairsDevTrain -> pairsDevTest (two sets of rows);
* `HeldOutIdentities` / `AcrossFactor`: a `FaceDataset` split into disjoint people (Olivetti,
  Yale B), the test pairs drawn at random or across a nuisance factor (`LIGHTING`).

`evaluate(representation, methods, protocol)` runs one: per fold, the representation (None: the
protocol's rows as they are, raw pixels for images; a transformer refitted on the fold's training
rows, e.g. `baselines.Eigenfaces`; or a callable rows -> (n, d) array, fixed) and every method
(a `scores.PairScorer`, a registered scorer's name in `scores.SCORERS`, or a pair classifier -- a
`Pipeline`/`GridSearchCV` over pair arrays, `features.make_pipeline`) are fitted on the fold's
training side only -- representation, PCA, scaler, classifier, covariances and the accept
threshold; the test pairs are only scored. It returns tidy rows (`roc.RESULT_COLUMNS`), or with
`return_details=True` a `SplitResult` that adds each test pair's score and the fitted stages.

LFW results categories (which number counts as image-restricted, unrestricted, ...) are
`categories.lfw_category`'s.

Unrestricted training images: LFW's ten folds are disjoint in people, so once the names are
used, every image of a training fold's people is training data -- the pairs' images and the
person's other LFW images (`load("lfw-pairs", other_images=True)` appends those).
`facelib.data.pairs.person_folds` gives each row its person's fold; `View2(..., image_folds=...)`
then trains the representation and identity-based scorers on all rows of the other folds' people,
and the results are reported as unrestricted.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from facelib.data.checks import check_disjoint, check_fold_counts, check_identity, check_indices, check_pair_table
from facelib.data.pairs import across_factor_pairs, max_balanced_pairs

from .baselines import RawPixels, flatten_images
from .categories import THRESHOLD_METRICS, lfw_category, method_labels
from .roc import (RESULT_COLUMNS, auc, auc_bootstrap_ci, eer_bootstrap_ci, equal_error_rate, tidy,
                  verification_metrics)
from .scores import SCORERS, CosineScore, as_verifier

__all__ = [
    "Fold",
    "Protocol",
    "Split",
    "Folds",
    "View1",
    "View2",
    "HeldOutIdentities",
    "AcrossFactor",
    "LIGHTING",
    "evaluate",
    "SplitResult",
    "across_factor_table",
    "held_out_pairs",
    "compare_held_out",
    "best_methods",
    "summarize",
]

#: What the training side of a fold may use: pair labels only, or identity labels too.
LABELS = ("image-restricted", "unrestricted")


@dataclass
class SplitResult:
    """A protocol's numbers with what made them (`evaluate(..., return_details=True)`).

    Attributes:
        results: the tidy rows `evaluate` returns otherwise (`roc.RESULT_COLUMNS`).
        scores: one DataFrame per (fold, method) of its test pairs' scores (method,
            representation, fold, pair, score, same), what `plots.roc_overlay` draws.
        fitted: every fitted stage: {(fold, name): method, (fold, name, "threshold"): accept
            threshold, (fold, "representation"): the representation refitted on that fold}.
    """

    results: pd.DataFrame
    scores: list[pd.DataFrame] = field(default_factory=list)
    fitted: dict = field(default_factory=dict)

    @staticmethod
    def concat(parts: list["SplitResult"]) -> "SplitResult":
        return SplitResult(pd.concat([p.results for p in parts], ignore_index=True),
                           [s for p in parts for s in p.scores], {k: v for p in parts for k, v in p.fitted.items()})


# ---------------------------------------------------------------- folds and protocols

@dataclass(frozen=True)
class Fold:
    """One train / test split of a protocol's rows.

    Attributes:
        id: the fold's name in the result rows (a View 2 test fold's number, "test", ...).
        train_pairs, test_pairs: pair tables (left, right, same[, fold]) indexing the protocol's rows.
        train_rows: the rows label-free and identity-based fitting uses (scorers; the representation
            unless `representation_rows` is given).
        representation_rows: the rows a transformer representation is fitted on (None: train_rows).
        labels: "image-restricted" (identity-based scorers are fitted from the training pairs'
            same / different labels) or "unrestricted" (from the identities of `train_rows`).
        representation_labels: the LFW labels that chose the training rows ("identities" when they
            are every image of the training people), or None (the representation's own `labels`).
    """

    id: Any
    train_pairs: pd.DataFrame
    test_pairs: pd.DataFrame
    train_rows: np.ndarray
    representation_rows: np.ndarray | None = None
    labels: str = "image-restricted"
    representation_labels: str | None = None

    @property
    def training(self) -> str:
        """What identity-based scorers are fitted from: "pairs" or "identities"."""
        return "identities" if self.labels == "unrestricted" else "pairs"


class Protocol:
    """A verification protocol: rows (`blocks`, in order; a callable representation is applied to
    each block), their `identity` (None, or -1 where unknown), and `folds()`.

    `name` labels the result rows (column protocol); `images` says the rows are uint8 images
    (N x C x H x W), which `evaluate` flattens for a representation that takes pixel rows and
    reads as raw pixels without one. A new protocol subclasses this and yields its `Fold`s.
    """

    name: str = "protocol"
    blocks: tuple = ()
    identity: np.ndarray | None = None
    images: bool = False
    #: Whether the protocol's training and test sides are disjoint in people (checked where
    #: `identity` is known), beside the images every protocol keeps apart.
    disjoint_people: bool = False

    def folds(self) -> Iterator[Fold]:
        raise NotImplementedError

    def check_fold(self, fold: Fold) -> None:
        """Refuse a fold whose training and test pairs share an image (or, where the protocol's
        sides are disjoint in people, a known person); `evaluate` runs it on every fold."""
        check_disjoint(fold.train_pairs, fold.test_pairs, f"{self.name} fold {fold.id!r}",
                       self.identity if self.disjoint_people else None)

    @property
    def n_rows(self) -> int:
        return sum(_len(b) for b in self.blocks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.n_rows} rows)"


def _check_labels(labels: str) -> str:
    if labels not in LABELS:
        raise ValueError(f"labels must be 'image-restricted' (pair labels only) or 'unrestricted' (identity "
                         f"labels of the training images), got {labels!r}")
    return labels


def _check_table(pair_table: pd.DataFrame, n: int, columns=("left", "right", "same", "fold"), name="pair_table",
                 **checks) -> pd.DataFrame:
    """The one pair-table validation every protocol runs (`data.checks.check_pair_table`: indices,
    labels, self pairs, repeated pairs; with identity, contradicting labels, people in two folds)."""
    return check_pair_table(pair_table, n, columns, name, **checks)


def _pair_rows(pairs: pd.DataFrame) -> np.ndarray:
    """The distinct rows (images) that the pairs of `pairs` refer to, sorted."""
    return np.unique(pairs[["left", "right"]].to_numpy())


def _len(data) -> int:
    return int(data.shape[0])


def _rows(data, idx):
    if isinstance(data, torch.Tensor):
        return data[torch.as_tensor(idx)]
    return np.asarray(data)[idx]


def _concat(blocks):
    if len(blocks) == 1:
        return blocks[0]
    if isinstance(blocks[0], torch.Tensor):
        return torch.cat([blocks[0], *(torch.as_tensor(b) for b in blocks[1:])])
    return np.concatenate([np.asarray(b) for b in blocks])


def _is_images(data) -> bool:
    return isinstance(data, torch.Tensor) and data.ndim == 4


class Split(Protocol):
    """One given split of one set of rows: train on `train_pairs`, test on `test_pairs`.

    train_rows: rows for label-free / identity-based fitting (default: the training pairs' images);
    representation_rows: rows a transformer representation is fitted on (default: train_rows), e.g.
    only the training pairs' images while identity-based scorers use every training image.
    labels: "image-restricted" or "unrestricted" (identity-based scorers fitted from `identity`).
    """

    def __init__(self, data, train_pairs: pd.DataFrame, test_pairs: pd.DataFrame, *, identity=None,
                 labels: str = "image-restricted", train_rows=None, representation_rows=None, fold: Any = 0,
                 name: str = "split"):
        n = _len(data)
        self.blocks, self.name, self.images = (data,), name, _is_images(data)
        self.labels = _check_labels(labels)
        self.identity = None if identity is None else check_identity(identity, n)
        _needs_identity(self.labels, self.identity)
        self.train_pairs = _check_table(train_pairs, n, ("left", "right", "same"), "train_pairs",
                                        identity=self.identity).set_axis(train_pairs.index)
        self.test_pairs = _check_table(test_pairs, n, ("left", "right", "same"), "test_pairs",
                                       identity=self.identity).set_axis(test_pairs.index)
        self.train_rows = _pair_rows(self.train_pairs) if train_rows is None else check_indices(train_rows, n, "train_rows")
        self.representation_rows = None if representation_rows is None else check_indices(
            representation_rows, n, "representation_rows")
        self.fold = fold

    def folds(self) -> Iterator[Fold]:
        yield Fold(self.fold, self.train_pairs, self.test_pairs, self.train_rows, self.representation_rows, self.labels)


def _needs_identity(labels: str, identity) -> None:
    if labels == "unrestricted" and identity is None:
        raise ValueError("labels='unrestricted' fits identity-based scorers on identity labels of the training "
                         "images: pass identity= (or train_identity=), or use labels='image-restricted'")


class Folds(Protocol):
    """K-fold: for each test fold k, train on the pairs of all other folds, test on fold k.

    pair_table: (left, right, same, fold) over the rows of `data`; test_folds: the folds tested
        (default: every fold).
    labels: "image-restricted" (default) or "unrestricted"; with `image_folds`, "unrestricted".
    image_folds: optional (N,) fold of every row (`person_folds`; -1: never trained on). Given, the
        training rows of test fold k are all rows of the other folds' people -- the unrestricted
        setting, which needs `identity`.
    representation_on: with image_folds, what a transformer representation is fitted on: "all"
        training rows, or "pairs": only the training pairs' images (as image-restricted), while
        identity-based scorers still use every image of the training people.
    """

    def __init__(self, data, pair_table: pd.DataFrame, *, identity=None, labels: str | None = None,
                 test_folds: Sequence | None = None, image_folds=None, representation_on: str = "all",
                 name: str = "lfw-view2", disjoint_people: bool = False):
        n = _len(data)
        self.blocks, self.name, self.images = (data,), name, _is_images(data)
        self.labels = _check_labels(labels or ("unrestricted" if image_folds is not None else "image-restricted"))
        self.identity = None if identity is None else check_identity(identity, n)
        self.disjoint_people = disjoint_people
        self.table = _check_table(pair_table, n, identity=self.identity, people_in_one_fold=disjoint_people)
        if len(np.unique(self.table["fold"])) < 2:
            raise ValueError("pair_table has a single fold; a fold protocol needs at least two")
        self.test_folds = np.unique(self.table["fold"].to_numpy()) if test_folds is None else list(test_folds)
        if image_folds is not None:
            image_folds = np.asarray(image_folds)
            if image_folds.shape != (n,):
                raise ValueError(f"image_folds must give one fold per row ({n},), got {image_folds.shape}")
            if self.labels != "unrestricted" or self.identity is None:
                raise ValueError("image_folds picks training images by person, the unrestricted setting: pass "
                                 "identity= and labels='unrestricted' (or leave image_folds out for image-restricted)")
            if representation_on not in ("all", "pairs"):
                raise ValueError(f"representation_on must be 'all' or 'pairs', got {representation_on!r}")
        _needs_identity(self.labels, self.identity)
        self.image_folds, self.representation_on = image_folds, representation_on

    def folds(self) -> Iterator[Fold]:
        table = self.table
        for k in self.test_folds:
            test = table[table["fold"] == k]
            train = table[table["fold"] != k]
            if test.empty:
                raise ValueError(f"fold {k!r} has no pairs; the table's folds are {sorted(table['fold'].unique())}")
            train_rows, rep_rows, rep_labels = _pair_rows(train), None, None
            if self.image_folds is not None:
                train_rows = np.flatnonzero((self.image_folds >= 0) & (self.image_folds != k))
                if np.isin(self.identity[train_rows], self.identity[_pair_rows(test)]).any():
                    raise ValueError(f"image_folds puts images of fold {k!r}'s test people into its training images")
                if self.representation_on == "pairs":
                    rep_rows = _pair_rows(train)
                rep_labels = "identities"  # the names chose the training images
            yield Fold(k, train, test, train_rows, rep_rows, self.labels, rep_labels)


class View2(Folds):
    """LFW View 2: ten folds, every stage fitted on the other nine (see `Folds`). Its folds are
    disjoint in people (checked where `identity` is given) and hold equal numbers of same and of
    different pairs (LFW: 300 + 300)."""

    def __init__(self, data, pair_table: pd.DataFrame, *, identity=None, labels: str | None = None,
                 test_folds: Sequence | None = None, image_folds=None, representation_on: str = "all"):
        super().__init__(data, pair_table, identity=identity, labels=labels, test_folds=test_folds,
                         image_folds=image_folds, representation_on=representation_on, name="lfw-view2",
                         disjoint_people=True)
        check_fold_counts(self.table, "lfw-view2 pair_table")
        n_folds = self.table["fold"].nunique()
        if n_folds != 10:
            warnings.warn(f"LFW View 2 has 10 folds; this pair table has {n_folds}", stacklevel=2)


class _TwoSets(Protocol):
    """Train on one set of rows and test on another (their pair tables index each set); one fold, "test"."""

    def _setup(self, train_data, train_pairs, test_data, test_pairs, train_identity, labels, name):
        n_train = _len(train_data)
        self.blocks, self.name = (train_data, test_data), name
        self.images = _is_images(train_data) and _is_images(test_data)
        self.labels = _check_labels(labels)
        ids = None if train_identity is None else check_identity(train_identity, n_train, "train_identity")
        self.train_pairs = _check_table(train_pairs, n_train, name="train pair table", identity=ids).copy()
        self.test_pairs = _check_table(test_pairs, _len(test_data), name="test pair table").copy()
        self.test_pairs[["left", "right"]] += n_train
        self.identity = None
        if train_identity is not None:
            self.identity = np.r_[check_identity(train_identity, n_train, "train_identity"),
                                  np.full(_len(test_data), -1)]
        _needs_identity(self.labels, self.identity)
        self.n_train = n_train


class View1(_TwoSets):
    """LFW View 1 (development): fit on the pairsDevTrain pairs, test on pairsDevTest.

    The two sets come as separate rows (e.g. two `load("lfw-pairs", split=...)` datasets, or
    their embeddings). labels="unrestricted" fits identity-based scorers on every row of the
    training set (with `other_images=True`, every LFW image of its people) by `train_identity`;
    representation_on="pairs" keeps a transformer representation on the training pairs' images.
    """

    def __init__(self, train_data, train_table: pd.DataFrame, test_data, test_table: pd.DataFrame, *,
                 train_identity=None, labels: str = "image-restricted", representation_on: str = "all"):
        self._setup(train_data, train_table, test_data, test_table, train_identity, labels, "lfw-view1")
        if representation_on not in ("all", "pairs"):
            raise ValueError(f"representation_on must be 'all' or 'pairs', got {representation_on!r}")
        self.representation_on = representation_on

    def folds(self) -> Iterator[Fold]:
        pair_rows = _pair_rows(self.train_pairs)
        train_rows = np.arange(self.n_train) if self.labels == "unrestricted" else pair_rows
        rep_rows = pair_rows if self.representation_on == "pairs" else None
        yield Fold("test", self.train_pairs, self.test_pairs, train_rows, rep_rows, self.labels)


def held_out_pairs(dataset, *, n_train_pairs: int = 1000, n_test_pairs: int = 1000, test_fraction: float = 0.25,
                   seed: int = 0, across: tuple[str, ...] | None = None):
    """(train set, test set, train pairs, test pairs, protocol name) of the held-out identity protocol.

    The split and the pairs every held-out comparison must share (`HeldOutIdentities`, notebook
    07's siamese CNN). Pair counts are capped at the balanced pairs a side has: a small set
    (Olivetti's 32 training people x 10 images) has fewer same-person pairs than a profile may ask for.
    """
    train, test = dataset.split_by_identity(test_fraction=test_fraction, seed=seed)
    train_pairs = train.pairs(min(n_train_pairs, max_balanced_pairs(train.identity)), seed=seed)
    n_test_pairs = min(n_test_pairs, max_balanced_pairs(test.identity))
    if across:
        test_pairs = across_factor_pairs(test, n_test_pairs, factors=across, seed=seed + 1)
        protocol = "held-out-identities, across " + "/".join(across)
    else:
        test_pairs = test.pairs(n_test_pairs, seed=seed + 1)
        protocol = "held-out-identities"
    return train, test, train_pairs, test_pairs, protocol


class HeldOutIdentities(_TwoSets):
    """Verification on people absent from training, on a `FaceDataset` (Olivetti, Yale B): the
    people split by `split_by_identity(test_fraction, seed)`, balanced training pairs of the
    training people, test pairs of the held-out ones (`held_out_pairs`). The rows are the images;
    a transformer representation is fitted on every training image, and identity-based scorers
    use the training people's identities (labels="unrestricted", the default)."""

    across: tuple[str, ...] | None = None

    def __init__(self, dataset, *, n_train_pairs: int = 1000, n_test_pairs: int = 1000, test_fraction: float = 0.25,
                 seed: int = 0, labels: str = "unrestricted"):
        self.train_set, self.test_set, train_pairs, test_pairs, name = held_out_pairs(
            dataset, n_train_pairs=n_train_pairs, n_test_pairs=n_test_pairs, test_fraction=test_fraction,
            seed=seed, across=self.across)
        self._setup(self.train_set.images, train_pairs, self.test_set.images, test_pairs, self.train_set.identity,
                    labels, name)

    def folds(self) -> Iterator[Fold]:
        yield Fold("test", self.train_pairs, self.test_pairs, np.arange(self.n_train), None, self.labels)


#: The factors of the across-lighting protocol: same-person test pairs differ in light,
#: different-person pairs share it (Extended Yale B's columns).
LIGHTING = ("azimuth", "elevation")


class AcrossFactor(HeldOutIdentities):
    """`HeldOutIdentities` whose test pairs are `across_factor_pairs`: same-person pairs differ in
    `factors`, different-person pairs share them (Yale B across lighting: `LIGHTING`)."""

    def __init__(self, dataset, factors: Sequence[str] = LIGHTING, *, n_train_pairs: int = 1000,
                 n_test_pairs: int = 1000, test_fraction: float = 0.25, seed: int = 0, labels: str = "unrestricted"):
        if isinstance(factors, str) or not factors:
            raise ValueError(f"factors must be a non-empty tuple of factor names such as {LIGHTING}, got {factors!r}")
        self.across = tuple(factors)
        super().__init__(dataset, n_train_pairs=n_train_pairs, n_test_pairs=n_test_pairs,
                         test_fraction=test_fraction, seed=seed, labels=labels)


# ---------------------------------------------------------------- the one runner

def _checked(protocol: Protocol) -> Iterator[Fold]:
    for fold in protocol.folds():
        protocol.check_fold(fold)
        yield fold


def evaluate(representation: Any, methods: Any, protocol: Protocol, *, representation_name: str = "embedding",
             representation_labels: str | None = None, outside_data: str | None = None,
             saw_test_images: bool = False, n_boot: int = 0, roc_fars: tuple[float, ...] = (),
             return_details: bool = False) -> "pd.DataFrame | SplitResult":
    """Run `protocol`: per fold, fit the representation and every method on the fold's training
    side, score its test pairs; tidy rows (`roc.RESULT_COLUMNS`) of every fold.

    Args:
        representation: None (the protocol's rows are the embeddings; raw pixels when they are
            images), a transformer (fit / transform) refitted on each fold's training rows, or a
            callable rows -> (n, d) array applied once to each block of rows (a trained model's
            `facelib.train.representation`).
        methods: name -> pair classifier or PairScorer (cloned, never modified) or a registered
            scorer's name (`scores.SCORERS`, default settings); or a list of registered names.
        protocol: a `Protocol` (`View1`, `View2`, `Folds`, `Split`, `HeldOutIdentities`, `AcrossFactor`).
        representation_name: the representation column of the rows.
        representation_labels, outside_data, saw_test_images: what the representation used, for
            the LFW category (`categories.lfw_category`); representation_labels defaults to the
            representation's own `labels` ("none" for fixed embeddings).
        n_boot: bootstrap resamples of the test metrics' intervals (0: none).
        roc_fars: also report the ROC curve's TAR at these FARs (`roc.tar_curve`, metrics
            roc_tar@far=...), so folds' curves can be averaged from the rows alone.
        return_details: a `SplitResult` (the rows, every test pair's score and the fitted stages).
    """
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a verify.protocols.Protocol (View1, View2, HeldOutIdentities, ...), "
                        f"got {type(protocol).__name__}; build one from the pair tables first")
    methods = _methods(methods)
    data, rep = _representation_input(representation, protocol)
    parts = [_evaluate_fold(data, fold, methods, protocol.identity, rep, protocol.name,
                            representation_name=representation_name, representation_labels=representation_labels,
                            outside_data=outside_data, saw_test_images=saw_test_images, n_boot=n_boot,
                            roc_fars=roc_fars)
             for fold in _checked(protocol)]
    result = SplitResult.concat(parts)
    return result if return_details else result.results


def _methods(methods: Any) -> dict:
    """{name: method}: registered scorer names become default instances (`scores.SCORERS`)."""
    if isinstance(methods, str) or (isinstance(methods, Sequence) and not isinstance(methods, Mapping)):
        methods = {m: m for m in ([methods] if isinstance(methods, str) else methods)}
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("no methods given; pass a dict name -> classifier pipeline, PairScorer or registered "
                         f"scorer name (known: {SCORERS.known()})")
    return {name: SCORERS[m]() if isinstance(m, str) else m for name, m in methods.items()}


def _representation_input(representation: Any, protocol: Protocol):
    """(the protocol's rows as the representation takes them, the transformer refitted per fold or None)."""
    blocks = protocol.blocks
    if representation is None and protocol.images:
        representation = RawPixels()
    if representation is None:
        return _concat(blocks), None
    if _is_transformer(representation):
        as_input = (lambda x: x) if _takes_images(representation) else flatten_images
        return _concat([as_input(b) if _is_images(b) else b for b in blocks]), representation
    if not callable(representation):
        raise TypeError("representation must be None, a transformer with fit/transform, or a callable "
                        f"rows -> (n, d) array; got {type(representation).__name__}")
    return _concat([np.asarray(representation(b)) for b in blocks]), None


def _is_transformer(rep: Any) -> bool:
    return hasattr(rep, "fit") and hasattr(rep, "transform")


def _fit_method(method, E, train_pairs, train_images, identity, training):
    """Clone and fit one method (as a pair scorer) on training data; returns it fitted."""
    m = clone(as_verifier(method))
    if m.labels == "none":
        m.fit(E[train_images])
    elif m.labels == "identities" and training == "identities":
        if identity is None:
            raise ValueError("labels='unrestricted' needs identity labels of the training images; pass identity=")
        m.fit(E[train_images], identity[train_images])
    else:
        m.fit_pairs(*_sides(E, train_pairs), train_pairs["same"].to_numpy())
    return m


def _sides(E, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return E[pairs["left"].to_numpy()], E[pairs["right"].to_numpy()]


def _evaluate_fold(data, fold: Fold, methods: Mapping[str, Any], identity, representation, protocol: str, *,
                   representation_name: str, representation_labels: str | None, outside_data: str | None,
                   saw_test_images: bool, n_boot: int, roc_fars: tuple[float, ...]) -> SplitResult:
    """One fold: fit the representation and every method on its training side, score its test pairs."""
    n_rows = _len(data)
    train_pairs = _check_table(fold.train_pairs, n_rows, ("left", "right", "same")).set_axis(fold.train_pairs.index)
    test_pairs = _check_table(fold.test_pairs, n_rows, ("left", "right", "same")).set_axis(fold.test_pairs.index)
    train_images = check_indices(fold.train_rows, n_rows, "train_rows")
    ids = None if identity is None else check_identity(identity, n_rows)
    training, k = fold.training, fold.id

    fitted: dict = {}
    rep_rows = train_images if fold.representation_rows is None else check_indices(
        fold.representation_rows, n_rows, "representation_rows")
    if representation is not None:
        rep = clone(representation)
        rep_labels = getattr(rep, "labels", "none")
        if rep_labels == "identities":
            if ids is None:
                raise ValueError(f"{type(rep).__name__} needs identity labels; pass identity= to the protocol")
            rep.fit(_rows(data, rep_rows), ids[rep_rows])
        else:
            rep.fit(_rows(data, rep_rows))
        needed = np.unique(np.r_[train_images, rep_rows, _pair_rows(train_pairs), _pair_rows(test_pairs)])
        Z = rep.transform(_rows(data, needed))
        E = np.zeros((n_rows, Z.shape[1]))
        E[needed] = Z
        fitted[(k, "representation")] = rep
        rep_labels_used = rep_labels
    else:
        E = np.asarray(data, dtype=np.float64)
        if E.ndim != 2:
            raise ValueError(f"embeddings must be (N, d), got shape {E.shape}; or pass a representation")
        rep_labels_used = "none"
    rep_labels_used = representation_labels or fold.representation_labels or rep_labels_used

    out, scores = [], []
    y_train = train_pairs["same"].to_numpy().astype(bool)
    y_test = test_pairs["same"].to_numpy().astype(bool)
    for name, method in methods.items():
        m = _fit_method(method, E, train_pairs, train_images, ids, training)
        s_train = m.score_pairs(*_sides(E, train_pairs))
        s_test = m.score_pairs(*_sides(E, test_pairs))
        metrics = verification_metrics(y_test, s_test, y_train, s_train, n_boot=n_boot, seed=0, roc_fars=roc_fars)
        if hasattr(m, "predict_pairs"):  # a classifier's own decision, beside the chosen threshold's
            metrics["accuracy_clf"] = float(np.mean(m.predict_pairs(*_sides(E, test_pairs)) == y_test))
        fitted[(k, name)] = m
        fitted[(k, name, "threshold")] = metrics["threshold"]
        scores.append(pd.DataFrame({"method": name, "representation": representation_name,
                                    "fold": k, "pair": test_pairs.index.to_numpy(),
                                    "score": s_test, "same": y_test}))
        labels = method_labels(method, training)
        rows = tidy(metrics, name, representation_name, protocol, k,
                    category=lfw_category(labels, rep_labels_used, outside_data, saw_test_images))
        if labels == "none":  # an accept threshold chosen on training pairs' labels is not unsupervised
            rows.loc[rows.metric.isin(THRESHOLD_METRICS), "category"] = lfw_category(
                "pairs", rep_labels_used, outside_data, saw_test_images)
        out.append(rows)
    return SplitResult(pd.concat(out, ignore_index=True), scores, fitted)


def compare_held_out(dataset, representations: Mapping[str, tuple[Any, Mapping[str, Any]]], *,
                     across: Any = "auto", dataset_name: str | None = None, test_fraction: float = 0.25,
                     seed: int = 0, n_train_pairs: int = 1000, n_test_pairs: int = 1000) -> SplitResult:
    """Every representation, each with its methods, under each held-out protocol of one data set:
    one `SplitResult` whose rows and test-pair scores carry `dataset` and `protocol` columns.

    representations: {name: (representation, methods)}, each as `evaluate` takes them; all of them
        meet the same pairs (one protocol object per factor choice), so their numbers compare.
    across: the protocols: None (`HeldOutIdentities`) and factor tuples (`AcrossFactor`); "auto"
        is held-out identities, plus across lighting (`LIGHTING`) when the data has its factors.
    test_fraction, seed, n_train_pairs, n_test_pairs: the people split and pairs (`HeldOutIdentities`).
    """
    name = dataset_name or getattr(dataset, "name", "data")
    if isinstance(across, str):
        if across != "auto":
            raise ValueError(f"across must be 'auto' or a list of None / factor tuples, got {across!r}")
        factors = getattr(dataset, "factors", None)
        across = [None] + ([LIGHTING] if factors is not None and set(LIGHTING) <= set(factors.columns) else [])
    split = dict(test_fraction=test_fraction, seed=seed, n_train_pairs=n_train_pairs, n_test_pairs=n_test_pairs)
    parts = []
    for factors in across:
        protocol = HeldOutIdentities(dataset, **split) if not factors else AcrossFactor(dataset, factors, **split)
        for rep_name, (rep, methods) in representations.items():
            run = evaluate(rep, methods, protocol, representation_name=rep_name, return_details=True)
            parts.append(SplitResult(run.results.assign(dataset=name)[["dataset", *run.results.columns]],
                                     [f.assign(dataset=name, protocol=protocol.name) for f in run.scores],
                                     {(name, protocol.name, rep_name, *k): v for k, v in run.fitted.items()}))
    return SplitResult.concat(parts)


def best_methods(results: pd.DataFrame, scores: pd.DataFrame, representation: str, *, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """The method of highest test AUC per (dataset, protocol) for one representation, with a
    percentile bootstrap interval of that AUC from its test pairs' scores (`auc_bootstrap_ci`).
    `results` and `scores` as `compare_held_out` gives them (scores: its frames concatenated)."""
    keys = {"dataset", "protocol", "representation", "method"}
    missing = (keys | {"metric", "value"}) - set(results.columns) | (keys | {"same", "score"}) - set(scores.columns)
    if missing:
        raise ValueError(f"results / scores lack columns {sorted(missing)}; pass compare_held_out's tables")
    auc = results[(results["representation"] == representation) & (results["metric"] == "auc")]
    if auc.empty:
        raise ValueError(f"no AUC rows for representation {representation!r}; "
                         f"available: {sorted(results['representation'].unique())}")
    best = auc.sort_values("value", ascending=False, kind="stable").groupby(["dataset", "protocol"], sort=False).head(1)
    rows = []
    for r in best.itertuples(index=False):
        s = scores[(scores["dataset"] == r.dataset) & (scores["protocol"] == r.protocol)
                   & (scores["representation"] == representation) & (scores["method"] == r.method)]
        lo, hi = auc_bootstrap_ci(s["same"].to_numpy(), s["score"].to_numpy(), n_boot=n_boot, level=level, seed=seed)
        rows.append({"dataset": r.dataset, "protocol": r.protocol, "best method": r.method, "AUC": r.value,
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def _takes_images(rep) -> bool:
    """Whether a transformer (a Pipeline's first step, every part of a FeatureUnion) wants
    N x C x H x W images rather than pixel rows."""
    first = rep.steps[0][1] if hasattr(rep, "steps") else rep
    if hasattr(first, "transformer_list"):  # a FeatureUnion: all its parts must take images
        return all(_takes_images(t) for _, t in first.transformer_list)
    return bool(getattr(first, "takes_images", False))


def summarize(results: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Mean and standard error of one metric over folds, per method/representation/protocol.

    SE = sample sd (ddof=1) / sqrt(n_folds), LFW's "mean classification accuracy and
    standard error of the mean" (for View 2, sd over the ten folds divided by sqrt(10)).
    """
    missing = set(RESULT_COLUMNS) - set(results.columns)
    if missing:
        raise ValueError(f"results lack columns {sorted(missing)}; pass the frame a protocol returned")
    sub = results[results["metric"] == metric]
    if sub.empty:
        raise ValueError(f"no rows for metric {metric!r}; available: {sorted(results['metric'].unique())}")
    keys = ["method", "representation", "protocol"] + (["category"] if "category" in sub else [])
    g = sub.groupby(keys, sort=False)["value"]
    out = g.agg(mean="mean", sd=lambda v: v.std(ddof=1) if v.size > 1 else np.nan, n_folds="size").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_folds"])
    out["metric"] = metric
    return out


def across_factor_table(train, test, representations: Mapping[str, Any], *,
                        factors: tuple[str, ...] = ("azimuth", "elevation"), n_pairs: int = 1000, seed: int = 0,
                        n_boot: int = 1000, level: float = 0.95) -> pd.DataFrame:
    """Verification of held-out people across a nuisance factor, one row per representation.

    The test pairs are `data.pairs.across_factor_pairs` of `test` (Yale B: same-person pairs under
    another light, different-person pairs under the same light), so a representation that encodes
    the light more than the person scores below chance (AUC < 0.5). Each representation is a
    callable images -> (N, d) array (a trained model's `facelib.train.representation`, a block of
    it) or a scikit-learn transformer fitted here on `train`'s images and identities (`RawPixels`,
    `Eigenfaces`, `Fisherfaces`). Every pair is scored by the cosine of the two embeddings centred
    on the training images' mean (`CosineScore(center=True)`), the same score for every row.
    Columns: representation, auc, eer, each with a percentile bootstrap interval over pairs
    (`roc.auc_bootstrap_ci` / `eer_bootstrap_ci`: stratified, one resampling), n_pairs, protocol.
    """
    if not representations:
        raise ValueError("across_factor_table needs at least one representation (name -> callable or transformer)")
    n_pairs = min(int(n_pairs), max_balanced_pairs(test.identity))
    pairs = across_factor_pairs(test, n_pairs - n_pairs % 2, factors=factors, seed=seed)
    same = pairs["same"].to_numpy(dtype=bool)
    rows = []
    for name, rep in representations.items():
        if _is_transformer(rep):
            rep = clone(rep)
            as_input = (lambda x: x) if _takes_images(rep) else flatten_images
            e_train = rep.fit(as_input(train.images), train.identity).transform(as_input(train.images))
            e_test = rep.transform(as_input(test.images))
        elif callable(rep):
            e_train, e_test = np.asarray(rep(train.images)), np.asarray(rep(test.images))
        else:
            raise TypeError(f"representation {name!r} must be a callable images -> array or a transformer, "
                            f"got {type(rep).__name__}")
        scorer = CosineScore(center=True).fit(e_train)
        scores = scorer.score_pairs(e_test[pairs["left"].to_numpy()], e_test[pairs["right"].to_numpy()])
        auc_lo, auc_hi = auc_bootstrap_ci(same, scores, n_boot=n_boot, level=level, seed=seed)
        eer_lo, eer_hi = eer_bootstrap_ci(same, scores, n_boot=n_boot, level=level, seed=seed)
        rows.append({"representation": name, "dims": int(e_test.shape[1]), "auc": auc(same, scores),
                     "auc_lo": auc_lo, "auc_hi": auc_hi, "eer": equal_error_rate(same, scores),
                     "eer_lo": eer_lo, "eer_hi": eer_hi, "n_pairs": int(len(pairs)),
                     "protocol": "held-out identities, across " + "/".join(factors)})
    return pd.DataFrame(rows)
