"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams, ICLR 2018).

Why: regress each factor on the code and read off an importance matrix R (codes x factors).
Disentanglement: each code matters for one factor only (1 - entropy of its row, base K,
weighted by the code's share of total importance). Completeness: each factor is captured by
one code (1 - entropy of its column, base d, weighted by factor importance).
Informativeness: how well the code predicts the factors.

``model="gbt"`` is disentanglement_lib's dci.py (one sklearn GradientBoostingClassifier per
factor, default settings, importances = feature_importances_, informativeness = accuracy).
``model="lasso"`` is the paper's linear variant: codes and factors standardised, one Lasso per
factor, importances = |coefficients|, informativeness = R^2 (and the paper's NRMSE).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import Lasso, LassoCV

from .utils import METRICS, check_positive, sample_train_test, sklearn_seed

__all__ = ["dci", "dci_from_importance", "importance_gbt", "importance_lasso",
           "disentanglement_per_code", "completeness_per_factor"]


def disentanglement_per_code(R: np.ndarray) -> np.ndarray:
    """1 - H_K(row) for each code (row of R, codes x factors)."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape[1] < 2:
        return np.ones(R.shape[0])  # with one factor every code is trivially specific
    return 1.0 - scipy.stats.entropy(R.T + 1e-11, base=R.shape[1])


def completeness_per_factor(R: np.ndarray) -> np.ndarray:
    """1 - H_d(column) for each factor (column of R, codes x factors)."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape[0] < 2:
        return np.ones(R.shape[1])
    return 1.0 - scipy.stats.entropy(R + 1e-11, base=R.shape[0])


def dci_from_importance(R: np.ndarray) -> dict[str, float]:
    """Disentanglement and completeness of an importance matrix R (codes x factors, >= 0)."""
    R = np.abs(np.asarray(R, dtype=np.float64))
    if R.ndim != 2:
        raise ValueError(f"importance matrix must be 2-D (codes x factors), got shape {R.shape}")
    W = R if R.sum() > 0 else np.ones_like(R)
    code_w = W.sum(axis=1) / W.sum()
    factor_w = W.sum(axis=0) / W.sum()
    return {
        "disentanglement": float(np.sum(disentanglement_per_code(R) * code_w)),
        "completeness": float(np.sum(completeness_per_factor(R) * factor_w)),
    }


def importance_gbt(x_train, y_train, x_test, y_test, rng: np.random.Generator):
    """(R, train accuracy, test accuracy) from one GradientBoostingClassifier per factor."""
    d, K = x_train.shape[1], y_train.shape[1]
    R = np.zeros((d, K))
    train_acc, test_acc = [], []
    for k in range(K):
        if np.unique(y_train[:, k]).size < 2:
            train_acc.append(1.0)  # a constant factor is predicted perfectly and needs no code
            test_acc.append(float(np.mean(y_test[:, k] == y_train[0, k])))
            continue
        model = GradientBoostingClassifier(random_state=sklearn_seed(rng))
        model.fit(x_train, y_train[:, k])
        R[:, k] = np.abs(model.feature_importances_)
        train_acc.append(float(np.mean(model.predict(x_train) == y_train[:, k])))
        test_acc.append(float(np.mean(model.predict(x_test) == y_test[:, k])))
    return R, float(np.mean(train_acc)), float(np.mean(test_acc))


def importance_lasso(x_train, y_train, x_test, y_test, rng: np.random.Generator, alpha: float | None = 0.02):
    """(R, train R^2, test R^2, test NRMSE) from one Lasso per standardised factor.

    Codes are standardised with training statistics (constant codes left at 0), so |coef|
    compares dimensions on one scale. ``alpha=None`` picks the penalty by 5-fold LassoCV.
    """
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    xs_train, xs_test = (x_train - mu) / sd, (x_test - mu) / sd
    d, K = x_train.shape[1], y_train.shape[1]
    R = np.zeros((d, K))
    r2_train, r2_test, nrmse = [], [], []
    for k in range(K):
        ym, ysd = y_train[:, k].mean(), y_train[:, k].std()
        ysd = ysd if ysd > 1e-12 else 1.0
        yt, ye = (y_train[:, k] - ym) / ysd, (y_test[:, k] - ym) / ysd
        model = LassoCV(cv=5, random_state=sklearn_seed(rng)) if alpha is None else Lasso(alpha=alpha)
        model.fit(xs_train, yt)
        R[:, k] = np.abs(model.coef_)
        pt, pe = model.predict(xs_train), model.predict(xs_test)

        def r2(y, p):
            ss = np.sum((y - y.mean()) ** 2)
            return float(1 - np.sum((y - p) ** 2) / ss) if ss > 0 else float(np.allclose(y, p))

        r2_train.append(r2(yt, pt))
        r2_test.append(r2(ye, pe))
        nrmse.append(float(np.sqrt(np.mean((ye - pe) ** 2)) / max(ye.std(), 1e-12)))
    return R, float(np.mean(r2_train)), float(np.mean(r2_test)), float(np.mean(nrmse))


@METRICS.register("dci")
def dci(representation: Callable, source: Any, *, seed: int = 0, n_train: int = 10000, n_eval: int = 5000,
        model: str = "gbt", lasso_alpha: float | None = 0.02, return_importance: bool = False) -> dict[str, Any]:
    """DCI scores: disentanglement, completeness, informativeness_train / informativeness_test.

    Defaults are disentanglement_lib's (10,000 train, 5,000 test points, gradient boosted
    trees). ``model="lasso"`` gives the paper's linear variant (informativeness = R^2, plus
    ``nrmse_test``). ``return_importance=True`` adds the matrix under ``importance``.
    GBT on 10,000 points is slow on few cores (minutes); that is the published setting.
    On a fixed data set the test points are images the predictors never saw (`sample_train_test`).
    """
    check_positive(n_train=n_train, n_eval=n_eval)
    if model not in ("gbt", "lasso"):
        raise ValueError(f"model must be 'gbt' or 'lasso', got {model!r}")
    rng = np.random.default_rng(seed)
    x_train, y_train, x_test, y_test = sample_train_test(representation, source, n_train, n_eval, rng)
    if model == "gbt":
        R, info_train, info_test = importance_gbt(x_train, y_train, x_test, y_test, rng)
        extra = {}
    else:
        R, info_train, info_test, nrmse = importance_lasso(x_train, y_train, x_test, y_test, rng, lasso_alpha)
        extra = {"nrmse_test": nrmse}
    out: dict[str, Any] = dci_from_importance(R)
    out.update({"informativeness_train": info_train, "informativeness_test": info_test}, **extra)
    if return_importance:
        out["importance"] = R
    return out
