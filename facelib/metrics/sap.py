"""SAP, the Separated Attribute Predictability score (Kumar et al., ICLR 2018).

Why: for each factor, the gap in predictability between the best and second-best single
latent dimension; large only if one dimension alone predicts the factor.
As disentanglement_lib's sap_score.py: with discrete factors (the default) the score of
(dim j, factor k) is the test accuracy of a LinearSVC(C=0.01, class_weight="balanced") fitted
on that one dimension; with ``continuous_factors=True`` it is the squared correlation (R^2 of
a linear fit) on the training points.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from .utils import METRICS, check_positive, sample_train_test, sklearn_seed

__all__ = ["sap", "sap_score_matrix", "avg_gap_top_two"]


def sap_score_matrix(mus, ys, mus_test, ys_test, continuous_factors: bool = False,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """Predictability of each factor from each single dimension, shape (d, K)."""
    rng = rng or np.random.default_rng(0)
    d, K = mus.shape[1], ys.shape[1]
    S = np.zeros((d, K))
    for j in range(d):
        for k in range(K):
            if continuous_factors:
                c = np.cov(mus[:, j], ys[:, k], ddof=1)
                S[j, k] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 and c[1, 1] > 1e-12 else 0.0
            elif np.unique(ys[:, k]).size < 2:
                S[j, k] = float(np.mean(ys_test[:, k] == ys[0, k]))
            else:
                clf = LinearSVC(C=0.01, class_weight="balanced", random_state=sklearn_seed(rng))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    clf.fit(mus[:, [j]], ys[:, k])
                S[j, k] = float(np.mean(clf.predict(mus_test[:, [j]]) == ys_test[:, k]))
    return S


def avg_gap_top_two(S: np.ndarray) -> float:
    """Mean over factors (columns) of the top minus the second-best score."""
    S = np.sort(np.asarray(S), axis=0)
    if S.shape[0] < 2:
        raise ValueError("SAP needs at least two latent dimensions (a gap between the top two)")
    return float(np.mean(S[-1] - S[-2]))


@METRICS.register("sap")
def sap(representation: Callable, source: Any, *, seed: int = 0, n_train: int = 10000, n_eval: int = 5000,
        continuous_factors: bool = False) -> dict[str, float]:
    """SAP score; defaults are disentanglement_lib's (10,000 train, 5,000 test, discrete factors).
    On a fixed data set the test points are images the classifiers never saw (`sample_train_test`)."""
    check_positive(n_train=n_train, n_eval=n_eval)
    rng = np.random.default_rng(seed)
    mus, ys, mus_test, ys_test = sample_train_test(representation, source, n_train, n_eval, rng)
    S = sap_score_matrix(mus, ys, mus_test, ys_test, continuous_factors, rng)
    return {"sap": avg_gap_top_two(S)}
