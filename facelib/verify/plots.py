"""Seaborn figures for verification: ROC overlay, score distributions, and LFW View 2 results
beside the published anchors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .roc import auc, roc_frame

__all__ = ["roc_overlay", "score_distributions", "anchor_comparison", "anchor_roc"]


def _scores_frame(scores) -> pd.DataFrame:
    """Accepts the `scores` list a protocol fills, a DataFrame (method, score, same),
    or a dict name -> (same, scores)."""
    if isinstance(scores, list):
        scores = pd.concat(scores, ignore_index=True)
    if isinstance(scores, dict):
        scores = pd.concat([pd.DataFrame({"method": k, "same": np.asarray(v[0]).astype(bool),
                                          "score": np.asarray(v[1], dtype=float)})
                            for k, v in scores.items()], ignore_index=True)
    if not isinstance(scores, pd.DataFrame) or not {"method", "score", "same"} <= set(scores.columns):
        raise ValueError("scores must be a DataFrame with method, score, same columns, a list of them, "
                         "or a dict name -> (same, scores)")
    return scores


def roc_overlay(scores, ax=None, log_far: bool = False, title: str | None = None):
    """One ROC curve per method (pooled over folds), AUC in the legend; returns the Axes."""
    import matplotlib.pyplot as plt  # here: the plotting stack loads only when a figure is drawn
    import seaborn as sns  # here: as matplotlib

    df = _scores_frame(scores)
    curves = []
    for name, g in df.groupby("method", sort=False):
        c = roc_frame(g["same"].to_numpy(), g["score"].to_numpy())
        c["method"] = f"{name} (AUC {auc(g['same'].to_numpy(), g['score'].to_numpy()):.3f})"
        curves.append(c)
    curves = pd.concat(curves, ignore_index=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    sns.lineplot(data=curves, x="far", y="tar", hue="method", ax=ax, estimator=None, sort=False, errorbar=None)
    if log_far:
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
    else:
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    if title:
        ax.set_title(title)
    return ax


def score_distributions(scores, method: str | None = None, ax=None, bins: int = 40):
    """Histograms of same-person vs different-person scores for one method; returns the Axes."""
    import matplotlib.pyplot as plt  # here: the plotting stack loads only when a figure is drawn
    import seaborn as sns  # here: as matplotlib

    df = _scores_frame(scores)
    if method is None:
        method = df["method"].iloc[0]
    sub = df[df["method"] == method].copy()
    if sub.empty:
        raise ValueError(f"no scores for method {method!r}; have {sorted(df['method'].unique())}")
    sub["pair"] = np.where(sub["same"].to_numpy().astype(bool), "same person", "different people")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    sns.histplot(data=sub, x="score", hue="pair", bins=bins, stat="density", common_norm=False,
                 element="step", ax=ax)
    ax.set_title(str(method))
    return ax


def anchor_comparison(results: pd.DataFrame, published: dict, ax=None, title: str | None = None):
    """LFW View 2 mean accuracy ± SE of our systems (rows of `results`: system, category,
    view2_accuracy, view2_se, as `selection.view2_table` gives) beside published anchors
    (`published`: category -> name -> (mean, se)), one row each, grouped by LFW category."""
    import matplotlib.pyplot as plt  # here: the plotting stack loads only when a figure is drawn

    need = {"system", "category", "view2_accuracy", "view2_se"}
    if not isinstance(results, pd.DataFrame) or not need <= set(results.columns):
        raise ValueError(f"results must be a DataFrame with columns {sorted(need)} (selection.view2_table)")
    rows = [(r.category, f"facelib: {r.system}", r.view2_accuracy, r.view2_se, True)
            for r in results.itertuples()]
    rows += [(cat, name, m, se, False) for cat, anchors in published.items() for name, (m, se) in anchors.items()]
    rows.sort(key=lambda r: (r[0], r[2]))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1))
    y = np.arange(len(rows))
    for i, (cat, name, m, se, ours) in enumerate(rows):
        ax.errorbar(100 * m, i, xerr=100 * se, fmt="o" if ours else "s", color="C0" if ours else "0.5", capsize=3)
    ax.set_yticks(y, [f"{name[:70]}  [{cat.split(',')[0]}]" for cat, name, *_ in rows], fontsize=7)
    ax.set_xlabel("LFW View 2 accuracy, % (mean ± SE over 10 folds)")
    ax.set_title(title or "LFW View 2: facelib (blue, settings frozen on View 1) and published anchors (grey)")
    return ax


def anchor_roc(roc: pd.DataFrame, published: dict, ax=None, title: str | None = None):
    """LFW View 2 ROC curves of our systems (`roc`: system, category, far, tar[, tar_se], as
    `selection.roc_table` gives: the ten folds' curves averaged at the same FARs) with the
    published anchors' points, one colour per LFW category.

    The anchors publish a mean accuracy, not their curve. On LFW's balanced pairs an accuracy a
    is every operating point with (TAR + 1 - FAR) / 2 = a, the line TAR = FAR + 2a - 1; each
    anchor is drawn on that line (dotted) at its equal-error point (FAR = 1 - a, TAR = a). A
    curve passing above an anchor's point beats that anchor's accuracy at equal error rates."""
    import matplotlib.pyplot as plt  # here: the plotting stack loads only when a figure is drawn

    need = {"system", "category", "far", "tar"}
    if not isinstance(roc, pd.DataFrame) or not need <= set(roc.columns):
        raise ValueError(f"roc must be a DataFrame with columns {sorted(need)} (selection.roc_table)")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 6))
    categories = list(dict.fromkeys(list(roc.category) + list(published)))
    colour = {c: f"C{i}" for i, c in enumerate(categories)}
    styles = ["-", "--", "-.", (0, (5, 1))]
    for i, (system, g) in enumerate(roc.groupby("system", sort=False)):
        g = g.sort_values("far")
        cat = g.category.iloc[0]
        ax.plot(g.far, g.tar, ls=styles[i % len(styles)], color=colour[cat], lw=1.6,
                label=f"facelib: {system[:60]} [{cat.split(',')[0]}]")
        if "tar_se" in g and g.tar_se.notna().any():
            ax.fill_between(g.far, g.tar - g.tar_se, g.tar + g.tar_se, color=colour[cat], alpha=0.15, lw=0)
    far = np.linspace(0, 1, 101)
    for cat, anchors in published.items():
        for name, (a, _) in anchors.items():
            line = far + 2 * a - 1
            keep = (line >= 0) & (line <= 1)
            ax.plot(far[keep], line[keep], ls=":", lw=0.8, color=colour[cat])
            ax.plot(1 - a, a, "s", ms=6, mfc="white", mec=colour[cat],
                    label=f"{name} {100 * a:.1f} % [{cat.split(',')[0]}]")
    ax.plot([0, 1], [1, 0], ls="-", lw=0.5, color="0.7")  # the equal-error diagonal FAR = 1 - TAR
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(title or "LFW View 2 ROC (mean over 10 folds ± SE) and the published anchors' points")
    return ax
