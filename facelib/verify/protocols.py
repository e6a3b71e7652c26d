"""Verification protocols: LFW View 1 / View 2 (10-fold), and held-out identities.

A *method* is either a pair classifier (a `Pipeline`/`GridSearchCV` over pair arrays, see
`features.make_pipeline`) or a `scores.PairScorer`. A *representation* is either fixed
embeddings (an (N, d) array) or a transformer (e.g. `baselines.Eigenfaces`) that is refitted
on each split's training images. For every split, every fitted stage -- representation,
PCA, scaler, classifier, covariances and the accept threshold -- sees training data only;
the test pairs are only scored. Every protocol returns tidy rows (`roc.RESULT_COLUMNS`), or
with `return_details=True` a `SplitResult` that adds each test pair's score and the fitted stages.

LFW results categories (which number counts as image-restricted, unrestricted, ...) are
`categories.lfw_category`'s.

Unrestricted training images: LFW's ten folds are disjoint in people, so once the names are
used, every image of a training fold's people is training data -- the pairs' images and the
person's other LFW images (`load("lfw-pairs", other_images=True)` appends those).
`facelib.data.pairs.person_folds` gives each row its person's fold; `evaluate_folds(...,
image_folds=...)` then trains the representation and identity-based scorers on all rows of
the other folds' people, and the results are reported as unrestricted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from facelib.data.pairs import across_factor_pairs, max_balanced_pairs

from .baselines import RawPixels, flatten_images
from .categories import THRESHOLD_METRICS, lfw_category, method_labels
from .roc import (RESULT_COLUMNS, auc, auc_bootstrap_ci, eer_bootstrap_ci, equal_error_rate, tidy,
                  verification_metrics)
from .scores import CosineScore, as_verifier
from facelib.data.checks import check_identity, check_indices, check_pair_table

__all__ = [
    "across_factor_table",
    "SplitResult",
    "evaluate_split",
    "evaluate_folds",
    "view1",
    "view2",
    "held_out_identity",
    "held_out_protocol",
    "held_out_pairs",
    "compare_held_out",
    "best_methods",
    "summarize",
]


@dataclass
class SplitResult:
    """A protocol's numbers with what made them (`return_details=True`).

    Attributes:
        results: the tidy rows the protocol returns otherwise (`roc.RESULT_COLUMNS`).
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


def _is_transformer(rep: Any) -> bool:
    return hasattr(rep, "fit") and hasattr(rep, "transform")


def _fit_method(method, E, train_pairs, train_images, identity, training):
    """Clone and fit one method (as a pair scorer) on training data; returns it fitted."""
    m = clone(as_verifier(method))
    if m.labels == "none":
        m.fit(E[train_images])
    elif m.labels == "identities" and training == "identities":
        if identity is None:
            raise ValueError("training='identities' needs identity labels of the training images")
        m.fit(E[train_images], identity[train_images])
    else:
        m.fit_pairs(*_sides(E, train_pairs), train_pairs["same"].to_numpy())
    return m


def _sides(E, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return E[pairs["left"].to_numpy()], E[pairs["right"].to_numpy()]


def _pair_rows(pairs: pd.DataFrame) -> np.ndarray:
    """The distinct rows (images) that the pairs of `pairs` refer to, sorted."""
    return np.unique(pairs[["left", "right"]].to_numpy())


def _check_table(pair_table: pd.DataFrame, n: int, columns=("left", "right", "same", "fold")) -> pd.DataFrame:
    return check_pair_table(pair_table, n, columns)


def evaluate_split(data, train_pairs: pd.DataFrame, test_pairs: pd.DataFrame,
                   methods: Mapping[str, Any], *, train_images=None, identity=None,
                   representation=None, training: str = "pairs", representation_name: str = "embedding",
                   protocol: str = "split", fold: Any = 0, representation_labels: str | None = None,
                   outside_data: str | None = None, saw_test_images: bool = False, n_boot: int = 0,
                   representation_images=None, return_details: bool = False,
                   roc_fars: tuple[float, ...] = ()) -> "pd.DataFrame | SplitResult":
    """Fit every method on the training pairs/images, score the test pairs, return tidy rows.

    Args:
        data: (N, d) embeddings, or images / pixel rows when `representation` is a transformer.
        train_pairs, test_pairs: pair tables (left, right, same[, fold]) indexing rows of `data`.
        methods: name -> pair classifier or PairScorer (cloned, never modified).
        train_images: rows used for unsupervised/identity fitting (representation, scorers);
            default: the images of the training pairs.
        identity: (N,) identity labels (only training rows are ever read).
        representation: None (data are embeddings) or a transformer refitted on training images.
        representation_images: rows the representation is fitted on (default: train_images),
            e.g. only the training pairs' images while identity scorers use every training image.
        training: "pairs" (image-restricted: identity-based scorers are fitted from pair labels)
            or "identities" (unrestricted: from identity labels of training images).
        return_details: return a `SplitResult` (the rows, every test pair's score and the
            fitted stages) instead of the rows alone.
        roc_fars: also report the ROC curve's TAR at these FARs (`roc.tar_curve`, metrics
            roc_tar@far=...), so folds' curves can be averaged from the rows alone.
    """
    if training not in ("pairs", "identities"):
        raise ValueError(f"training must be 'pairs' or 'identities', got {training!r}")
    if not methods:
        raise ValueError("no methods given; pass a dict name -> classifier pipeline or PairScorer")
    n_rows = _len(data)
    train_pairs = _check_table(train_pairs, n_rows, ("left", "right", "same")).set_axis(train_pairs.index)
    test_pairs = _check_table(test_pairs, n_rows, ("left", "right", "same")).set_axis(test_pairs.index)
    if train_images is None:
        train_images = _pair_rows(train_pairs)
    train_images = check_indices(train_images, n_rows, "train_images")
    ids = None if identity is None else check_identity(identity, n_rows)

    fitted: dict = {}
    rep_rows = train_images if representation_images is None else check_indices(
        representation_images, n_rows, "representation_images")
    if representation is not None and _is_transformer(representation):
        rep = clone(representation)
        rep_labels = getattr(rep, "labels", "none")
        if rep_labels == "identities":
            if ids is None:
                raise ValueError(f"{type(rep).__name__} needs identity labels; pass identity=")
            rep.fit(_rows(data, rep_rows), ids[rep_rows])
        else:
            rep.fit(_rows(data, rep_rows))
        needed = np.unique(np.r_[train_images, rep_rows, _pair_rows(train_pairs), _pair_rows(test_pairs)])
        Z = rep.transform(_rows(data, needed))
        E = np.zeros((_len(data), Z.shape[1]))
        E[needed] = Z
        fitted[(fold, "representation")] = rep
        rep_labels_used = rep_labels
    else:
        E = np.asarray(data, dtype=np.float64)
        if E.ndim != 2:
            raise ValueError(f"embeddings must be (N, d), got shape {E.shape}; or pass representation=")
        rep_labels_used = "none"
    rep_labels_used = representation_labels or rep_labels_used

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
        fitted[(fold, name)] = m
        fitted[(fold, name, "threshold")] = metrics["threshold"]
        scores.append(pd.DataFrame({"method": name, "representation": representation_name,
                                    "fold": fold, "pair": test_pairs.index.to_numpy(),
                                    "score": s_test, "same": y_test}))
        labels = method_labels(method, training)
        rows = tidy(metrics, name, representation_name, protocol, fold,
                    category=lfw_category(labels, rep_labels_used, outside_data, saw_test_images))
        if labels == "none":  # an accept threshold chosen on training pairs' labels is not unsupervised
            rows.loc[rows.metric.isin(THRESHOLD_METRICS), "category"] = lfw_category(
                "pairs", rep_labels_used, outside_data, saw_test_images)
        out.append(rows)
    result = SplitResult(pd.concat(out, ignore_index=True), scores, fitted)
    return result if return_details else result.results


def _len(data) -> int:
    return int(data.shape[0])


def _rows(data, idx):
    if isinstance(data, torch.Tensor):
        return data[torch.as_tensor(idx)]
    return np.asarray(data)[idx]


def evaluate_folds(data, pair_table: pd.DataFrame, methods: Mapping[str, Any], *,
                   test_folds=None, protocol: str = "lfw-view2", image_folds=None,
                   representation_on: str = "all", return_details: bool = False, **kw) -> "pd.DataFrame | SplitResult":
    """K-fold protocol: for each test fold k, fit on pairs of all other folds, test on fold k.

    image_folds: optional (N,) fold of every row (`person_folds`; -1: never trained on). Given,
        the training images of test fold k are all rows of the other folds -- the unrestricted
        setting, which needs identity labels (`identity=`, `training="identities"`).
    representation_on: with image_folds, what a transformer representation is fitted on: "all"
        training images, or "pairs": only the training pairs' images (as image-restricted),
        while identity-based scorers still use every image of the training people.
    return_details: return a `SplitResult` of all folds (as `evaluate_split`).
    Other keyword arguments go to `evaluate_split` (identity, representation, training, ...).
    """
    table = _check_table(pair_table, _len(data))
    folds = np.unique(table["fold"].to_numpy()) if test_folds is None else list(test_folds)
    if len(np.unique(table["fold"])) < 2:
        raise ValueError("pair_table has a single fold; a fold protocol needs at least two")
    if image_folds is not None:
        image_folds = np.asarray(image_folds)
        if image_folds.shape != (_len(data),):
            raise ValueError(f"image_folds must give one fold per row ({_len(data)},), got {image_folds.shape}")
        if kw.get("training") != "identities" or kw.get("identity") is None:
            raise ValueError("image_folds picks training images by person, the unrestricted setting: pass "
                             "identity= and training='identities' (or leave image_folds out for image-restricted)")
        if "train_images" in kw:
            raise ValueError("pass either image_folds or train_images, not both")
        if representation_on not in ("all", "pairs"):
            raise ValueError(f"representation_on must be 'all' or 'pairs', got {representation_on!r}")
        kw.setdefault("representation_labels", "identities")
        ids = np.asarray(kw["identity"])
    frames = []
    for k in folds:
        test = table[table["fold"] == k]
        train = table[table["fold"] != k]
        if test.empty:
            raise ValueError(f"fold {k!r} has no pairs")
        if image_folds is not None:
            kw["train_images"] = np.flatnonzero((image_folds >= 0) & (image_folds != k))
            if np.isin(ids[kw["train_images"]], ids[_pair_rows(test)]).any():
                raise ValueError(f"image_folds puts images of fold {k!r}'s test people into its training images")
            if representation_on == "pairs":
                kw["representation_images"] = _pair_rows(train)
        frames.append(evaluate_split(data, train, test, methods, protocol=protocol, fold=k, **kw,
                                     return_details=True))
    result = SplitResult.concat(frames)
    return result if return_details else result.results


def view2(embeddings, pair_table: pd.DataFrame, methods: Mapping[str, Any], **kw) -> "pd.DataFrame | SplitResult":
    """LFW View 2: ten folds; every stage fitted on the other nine. See `evaluate_folds`."""
    n_folds = pair_table["fold"].nunique()
    if n_folds != 10:
        import warnings

        warnings.warn(f"LFW View 2 has 10 folds; this pair table has {n_folds}", stacklevel=2)
    return evaluate_folds(embeddings, pair_table, methods, protocol="lfw-view2", **kw)


def view1(train_data, train_table: pd.DataFrame, test_data, test_table: pd.DataFrame,
          methods: Mapping[str, Any], *, train_identity=None, **kw) -> "pd.DataFrame | SplitResult":
    """LFW View 1 (development): fit on the pairsDevTrain pairs, test on pairsDevTest.

    The two sets come as separate data (e.g. two `load("lfw-pairs", split=...)` datasets).
    """
    n_train = _len(train_data)
    data = _concat(train_data, test_data)
    tr = _check_table(train_table, n_train).copy()
    te = _check_table(test_table, _len(test_data)).copy()
    te[["left", "right"]] += n_train
    identity = None
    if train_identity is not None:
        identity = np.r_[check_identity(train_identity, _len(train_data), "train_identity"),
                         np.full(_len(test_data), -1)]
    return evaluate_split(data, tr, te, methods, identity=identity, protocol="lfw-view1",
                          fold="test", **kw)


def _concat(a, b):
    if isinstance(a, torch.Tensor):
        return torch.cat([a, torch.as_tensor(b)])
    return np.concatenate([np.asarray(a), np.asarray(b)])


def held_out_identity(train_data, train_identity, train_pairs: pd.DataFrame, test_data,
                      test_pairs: pd.DataFrame, methods: Mapping[str, Any], *,
                      protocol: str = "held-out-identities", **kw) -> "pd.DataFrame | SplitResult":
    """Verification on people absent from training: fit on the training identities' images
    and pairs, score pairs of the test identities. Identity-based fitting is allowed here
    (`training="identities"` by default)."""
    n_train = _len(train_data)
    data = _concat(train_data, test_data)
    tr = _check_table(train_pairs, n_train).copy()
    te = _check_table(test_pairs, _len(test_data)).copy()
    te[["left", "right"]] += n_train
    identity = np.r_[check_identity(train_identity, n_train, "train_identity"), np.full(_len(test_data), -1)]
    kw.setdefault("training", "identities")
    return evaluate_split(data, tr, te, methods, train_images=np.arange(n_train), identity=identity,
                          protocol=protocol, fold="test", **kw)


def held_out_pairs(dataset, *, n_train_pairs: int = 1000, n_test_pairs: int = 1000, test_fraction: float = 0.25,
                   seed: int = 0, across: tuple[str, ...] | None = None):
    """(train set, test set, train pairs, test pairs, protocol name) of the held-out identity protocol.

    The split and the pairs every held-out comparison must share (notebook 06's methods,
    notebook 07's siamese CNN). Pair counts are capped at the balanced pairs a side has:
    a small set (Olivetti's 32 training people x 10 images) has fewer same-person pairs
    than a profile may ask for.
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


def held_out_protocol(dataset, methods: Mapping[str, Any], representation: Any = None, *,
                      representation_name: str = "embedding", n_train_pairs: int = 1000,
                      n_test_pairs: int = 1000, test_fraction: float = 0.25, seed: int = 0,
                      across: tuple[str, ...] | None = None, **kw) -> "pd.DataFrame | SplitResult":
    """Held-out identity protocol on a `FaceDataset` (Olivetti, Yale B).

    `representation`: a callable images -> (N, d) array (e.g. `facelib.train.representation
    (model)`, already trained), a transformer (e.g. `Eigenfaces()`, fitted on the training
    identities' images), or None (raw pixels). `across=("azimuth", "elevation")` makes the
    test pairs with `across_factor_pairs` (Yale B across lighting).
    """
    train, test, train_pairs, test_pairs, protocol = held_out_pairs(
        dataset, n_train_pairs=n_train_pairs, n_test_pairs=n_test_pairs, test_fraction=test_fraction,
        seed=seed, across=across)
    if representation is None or _is_transformer(representation):
        rep = representation if representation is not None else RawPixels()
        as_input = (lambda x: x) if _takes_images(rep) else flatten_images
        return held_out_identity(as_input(train.images), train.identity, train_pairs,
                                 as_input(test.images), test_pairs, methods, representation=rep,
                                 representation_name=representation_name, protocol=protocol, **kw)
    if not callable(representation):
        raise TypeError("representation must be None, a transformer with fit/transform, or a callable images -> array")
    return held_out_identity(np.asarray(representation(train.images)), train.identity, train_pairs,
                             np.asarray(representation(test.images)), test_pairs, methods,
                             representation_name=representation_name, protocol=protocol, **kw)


#: The factors of the across-lighting protocol: same-person test pairs differ in light,
#: different-person pairs share it (Extended Yale B's columns).
LIGHTING = ("azimuth", "elevation")


def compare_held_out(dataset, representations: Mapping[str, tuple[Any, Mapping[str, Any]]], *,
                     across: Any = "auto", dataset_name: str | None = None, **options: Any) -> SplitResult:
    """Every representation, each with its methods, under each held-out protocol of one data set:
    one `SplitResult` whose rows and test-pair scores carry `dataset` and `protocol` columns.

    representations: {name: (representation, methods)}, each as `held_out_protocol` takes them;
        all of them meet the same pairs (the same `seed`), so their numbers compare.
    across: the protocols: None (held-out identities) and factor tuples (`across_factor_pairs`);
        "auto" is held-out identities, plus across lighting (`LIGHTING`) when the data has its factors.
    options: `held_out_protocol`'s (test_fraction, seed, n_train_pairs, n_test_pairs, ...).
    """
    name = dataset_name or getattr(dataset, "name", "data")
    if isinstance(across, str):
        if across != "auto":
            raise ValueError(f"across must be 'auto' or a list of None / factor tuples, got {across!r}")
        factors = getattr(dataset, "factors", None)
        across = [None] + ([LIGHTING] if factors is not None and set(LIGHTING) <= set(factors.columns) else [])
    parts = []
    for factors in across:
        for rep_name, (rep, methods) in representations.items():
            run = held_out_protocol(dataset, methods, rep, representation_name=rep_name, across=factors,
                                    return_details=True, **options)
            protocol = run.results["protocol"].iloc[0]
            parts.append(SplitResult(run.results.assign(dataset=name)[["dataset", *run.results.columns]],
                                     [f.assign(dataset=name, protocol=protocol) for f in run.scores],
                                     {(name, protocol, rep_name, *k): v for k, v in run.fitted.items()}))
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
