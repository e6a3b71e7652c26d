"""ROC metrics for verification scores: AUC (+ bootstrap CI), EER, TAR at FAR, accuracy.

Scores follow one convention: higher = more likely the same person. `same` is the
boolean (or 0/1) same-person label of each pair.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score, roc_curve

from facelib.data.checks import check_same

__all__ = [
    "RESULT_COLUMNS",
    "roc_frame",
    "auc",
    "auc_bootstrap_ci",
    "bootstrap_ci",
    "eer_bootstrap_ci",
    "equal_error_rate",
    "tar_at_far",
    "ROC_FARS",
    "tar_curve",
    "roc_polyline",
    "best_threshold",
    "accuracy_at",
    "verification_metrics",
    "tidy",
]

#: Columns of the tidy results DataFrame every protocol returns.
RESULT_COLUMNS = ["method", "representation", "protocol", "fold", "metric", "value"]


def _check(same, scores) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"same and scores must be 1-D of equal length, got {y.shape} and {s.shape}")
    y = check_same(y)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values; check the scorer's inputs")
    if y.all() or not y.any():
        raise ValueError("ROC metrics need both same-person and different-person pairs")
    return y, s


def roc_frame(same, scores) -> pd.DataFrame:
    """The ROC curve (scikit-learn) as a DataFrame: threshold, far (= fpr), tar (= tpr)."""
    y, s = _check(same, scores)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return pd.DataFrame({"threshold": thr, "far": fpr, "tar": tpr})


def auc(same, scores) -> float:
    """Area under the ROC curve (ties count one half), via scikit-learn."""
    y, s = _check(same, scores)
    return float(roc_auc_score(y, s))


def bootstrap_ci(same, scores, statistic: Callable[[np.ndarray, np.ndarray], float], n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0, stratified: bool = True) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic(same-pair scores, different-pair scores)`, resampling
    pairs (within each class if stratified); the same draws for the same seed and pairs, whatever
    the statistic, so intervals of two statistics of one table come from one resampling."""
    y, s = _check(same, scores)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number of resamples >= 1 (e.g. 1000), got {n_boot!r}")
    rng = np.random.default_rng(seed)
    pos, neg = s[y], s[~y]
    vals = np.empty(n_boot)
    for b in range(n_boot):
        if stratified:
            p = pos[rng.integers(pos.size, size=pos.size)]
            q = neg[rng.integers(neg.size, size=neg.size)]
        else:
            idx = rng.integers(y.size, size=y.size)
            yy, ss = y[idx], s[idx]
            if yy.all() or not yy.any():
                vals[b] = np.nan
                continue
            p, q = ss[yy], ss[~yy]
        vals[b] = statistic(p, q)
    vals = vals[np.isfinite(vals)]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(vals, [alpha, 1 - alpha])
    return float(lo), float(hi)


def auc_bootstrap_ci(same, scores, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                     stratified: bool = True) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC, resampling pairs (within each class if stratified).

    Pairs share images, so this CI is optimistic for LFW; the fold-to-fold standard
    error of View 2 is the protocol's own measure of spread.
    """
    return bootstrap_ci(same, scores, _mann_whitney_auc, n_boot, level, seed, stratified)


def eer_bootstrap_ci(same, scores, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                     stratified: bool = True) -> tuple[float, float]:
    """Percentile bootstrap CI of the equal-error rate, by the draws `auc_bootstrap_ci` makes."""
    def eer(p: np.ndarray, q: np.ndarray) -> float:
        return equal_error_rate(np.r_[np.ones(p.size, bool), np.zeros(q.size, bool)], np.r_[p, q])

    return bootstrap_ci(same, scores, eer, n_boot, level, seed, stratified)


def _mann_whitney_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC as P(pos > neg) + 0.5 P(pos == neg) by ranks (fast inside the bootstrap)."""
    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def equal_error_rate(same, scores) -> float:
    """EER: where the false-accept rate equals the false-reject rate (1 - TAR).

    Linear interpolation between the two ROC points where FAR - FRR changes sign.
    """
    y, s = _check(same, scores)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increases from -1 (fpr 0, fnr 1) to +1
    k = int(np.argmax(diff >= 0))
    if diff[k] == 0 or k == 0:
        return float(fpr[k])
    # crossing between k-1 and k: interpolate along the segment
    t = -diff[k - 1] / (diff[k] - diff[k - 1])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def tar_at_far(same, scores, far: float) -> float:
    """TAR at FAR: the highest true-accept rate of an ROC point whose FAR <= `far`.

    A step (not interpolated) value, so it is attainable by an actual threshold; with n
    different-person pairs FAR below 1/n means accepting none of them.
    """
    y, s = _check(same, scores)
    if not 0 <= far <= 1:
        raise ValueError(f"far must be in [0, 1], got {far}")
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(tpr[fpr <= far + 1e-12].max())


#: False-accept rates at which a protocol can report its ROC per fold (`roc_fars=`): dense
#: where face verification is read (FAR <= 0.1), then every 0.05 up to 1.
ROC_FARS = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075) + tuple(
    round(0.1 + 0.05 * i, 2) for i in range(19))


def tar_curve(same, scores, fars) -> np.ndarray:
    """The ROC curve's TAR at each FAR of `fars`: the ROC polyline read at that FAR.

    Unlike `tar_at_far` (a step value an actual threshold attains), this is the curve itself,
    so curves of several test folds can be averaged at the same FARs (vertical averaging,
    Fawcett 2006): LFW's folds each have their own scores and thresholds. The curve is the
    polyline through scikit-learn's ROC points (`roc_curve(drop_intermediate=False)`):

    * at a FAR that some threshold attains (a vertical step of the curve), the top of the step,
      the highest TAR a threshold reaches with that FAR (= `tar_at_far` there);
    * between two such FARs, the straight line from the top of the lower step to the bottom of
      the next one: flat without ties, diagonal across a tied group of scores (what accepting
      that group at random attains). It never rises above the curve, unlike joining the tops.

    This equals ``np.interp(fars, fpr, tpr)`` on that ROC, computed without relying on how
    np.interp treats repeated FARs.
    """
    y, s = _check(same, scores)
    fars = np.asarray(fars, dtype=np.float64)
    if fars.ndim != 1 or not np.all((fars >= 0) & (fars <= 1)):
        raise ValueError(f"fars must be a 1-D sequence of rates in [0, 1], got {fars!r}")
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return roc_polyline(fpr, tpr, fars)


def roc_polyline(fpr, tpr, fars, tol: float = 1e-12) -> np.ndarray:
    """TAR of the ROC polyline (`fpr`, `tpr`: non-decreasing, from (0, ...) to (1, 1)) at `fars`,
    as `tar_curve` defines it; a FAR within `tol` of a vertex FAR counts as that FAR."""
    fpr, tpr, fars = (np.asarray(a, dtype=np.float64) for a in (fpr, tpr, fars))
    vertex, first = np.unique(fpr, return_index=True)
    last = np.r_[first[1:] - 1, fpr.size - 1]
    bottom, top = tpr[first], tpr[last]  # tpr rises along each vertical step
    k = np.clip(np.searchsorted(vertex, fars + tol, side="right") - 1, 0, vertex.size - 1)
    nxt = np.minimum(k + 1, vertex.size - 1)
    on_step = (fars <= vertex[k] + tol) | (nxt == k)
    width = np.where(on_step, 1.0, vertex[nxt] - vertex[k])
    t = np.where(on_step, 0.0, (fars - vertex[k]) / width)
    return np.where(on_step, top[k], top[k] + t * (bottom[nxt] - top[k]))


def best_threshold(same, scores) -> float:
    """Threshold with the best accuracy on (training) scores: accept when score >= threshold.

    Among equally good cut points, the midpoint between neighbouring distinct scores.
    """
    y, s = _check(same, scores)
    order = np.argsort(s)
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted) > 0) + 1, s.size]  # candidate cut positions
    cuts = np.r_[0, distinct]
    # accuracy when rejecting the first c sorted scores: negatives below + positives at/above
    neg_below = np.r_[0, np.cumsum(~y_sorted)]
    pos_above = y.sum() - np.r_[0, np.cumsum(y_sorted)]
    acc = (neg_below[cuts] + pos_above[cuts]) / s.size
    c = int(cuts[np.argmax(acc)])
    if c == 0:
        return float(s_sorted[0] - 1.0)
    if c == s.size:
        return float(s_sorted[-1] + 1.0)
    return float((s_sorted[c - 1] + s_sorted[c]) / 2)


def accuracy_at(same, scores, threshold: float) -> float:
    """Share of pairs classified correctly when accepting score >= threshold."""
    y, s = _check(same, scores)
    return float(np.mean((s >= threshold) == y))


def verification_metrics(same, scores, train_same=None, train_scores=None,
                         fars: tuple[float, ...] = (0.01, 0.001), n_boot: int = 0,
                         seed: int = 0, roc_fars: tuple[float, ...] = ()) -> dict[str, float]:
    """All metrics of one test set: auc, eer, tar@far=..., and (given training scores)
    the threshold picked on training scores and the test accuracy at it.

    `n_boot > 0` adds auc_ci_low / auc_ci_high (95 % percentile bootstrap); `roc_fars` adds
    the ROC curve at those FARs (`tar_curve`) as roc_tar@far=... (e.g. `ROC_FARS`).
    """
    out = {"auc": auc(same, scores), "eer": equal_error_rate(same, scores)}
    for f in fars:
        out[f"tar@far={f:g}"] = tar_at_far(same, scores, f)
    if len(roc_fars):
        for f, t in zip(roc_fars, tar_curve(same, scores, roc_fars)):
            out[f"roc_tar@far={f:g}"] = float(t)
    if train_scores is not None:
        if train_same is None:
            raise ValueError("train_scores given without train_same")
        thr = best_threshold(train_same, train_scores)
        out["threshold"] = thr
        out["train_accuracy"] = accuracy_at(train_same, train_scores, thr)
        out["accuracy"] = accuracy_at(same, scores, thr)
    if n_boot:
        out["auc_ci_low"], out["auc_ci_high"] = auc_bootstrap_ci(same, scores, n_boot=n_boot, seed=seed)
    return out


def tidy(metrics: dict[str, float], method: str, representation: str, protocol: str,
         fold, **extra) -> pd.DataFrame:
    """Metrics dict -> rows of the tidy results frame (`RESULT_COLUMNS` plus `extra` columns)."""
    rows = pd.DataFrame({"method": method, "representation": representation, "protocol": protocol,
                         "fold": fold, "metric": list(metrics), "value": [float(v) for v in metrics.values()]})
    for k, v in extra.items():
        rows[k] = v
    return rows
