"""Pair features and pair classifiers (the R stage's pre-PCA -> combine -> post-PCA -> classifier).

Everything here is a scikit-learn estimator, so it goes in a `Pipeline` and in
`GridSearchCV`, and every fitted stage (PCA, scaler, classifier) sees training pairs only.

Input convention for pair estimators: ``X`` of shape ``(n_pairs, 2, d)`` (left and right
embedding of each pair), or ``(n_pairs, 2 * d)`` with the left embedding in the first ``d``
columns and the right in the last ``d`` (what a flat CSV of concatenated pairs holds).
`pair_array(embeddings, pair_table)` builds the 3-D form from embeddings and a pair table.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

from facelib.data.checks import check_indices, check_same

__all__ = [
    "COMBINERS",
    "SYMMETRIC_COMBINERS",
    "CLASSIFIERS",
    "PARAM_GRIDS",
    "PairFeatures",
    "pair_array",
    "as_pairs",
    "unique_row_index",
    "unique_rows",
    "make_pipeline",
    "tuned_pipeline",
    "pair_scores",
    "logit_table",
]


# -- input handling ------------------------------------------------------------------------
def pair_array(embeddings: Any, pair_table: pd.DataFrame) -> np.ndarray:
    """(n_pairs, 2, d) array of the embeddings of each pair's left and right image."""
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N images x d), got shape {emb.shape}")
    missing = {"left", "right"} - set(pair_table.columns)
    if missing:
        raise ValueError(f"pair_table lacks columns {sorted(missing)}; it needs left, right, same, fold")
    left = check_indices(pair_table["left"].to_numpy(), emb.shape[0], "pair_table column 'left'")
    right = check_indices(pair_table["right"].to_numpy(), emb.shape[0], "pair_table column 'right'")
    return np.stack([emb[left], emb[right]], axis=1)


def as_pairs(X: Any) -> np.ndarray:
    """Validate and return X as a float (n_pairs, 2, d) array (accepts the flat (n, 2d) form)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        if X.shape[1] % 2:
            raise ValueError(
                f"a flat pair array must have 2*d columns (left then right), got {X.shape[1]} columns"
            )
        X = X.reshape(X.shape[0], 2, X.shape[1] // 2)
    elif X.ndim != 3 or X.shape[1] != 2:
        raise ValueError(
            f"pairs must have shape (n_pairs, 2, d) or (n_pairs, 2*d), got {X.shape}; "
            "build them with facelib.verify.features.pair_array(embeddings, pair_table)"
        )
    if X.shape[0] == 0 or X.shape[2] == 0:
        raise ValueError(f"pairs are empty (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError("pairs contain NaN or infinite values; drop or impute them first")
    return X


def unique_row_index(a: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row of `a`, in order."""
    a = np.ascontiguousarray(a)
    view = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1])))
    _, first = np.unique(view.ravel(), return_index=True)
    return np.sort(first)


def unique_rows(a: np.ndarray) -> np.ndarray:
    """Rows of `a` with exact duplicates removed, first occurrence order.

    LFW pair lists reuse images, so PCA on single embeddings would otherwise weigh an
    image by how many pairs it appears in; each image counts once.
    """
    return np.asarray(a)[unique_row_index(a)]


# -- combiners -----------------------------------------------------------------------------
def _diff(a, b):
    return a - b


def _absdiff(a, b):
    return np.abs(a - b)


def _product(a, b):
    return a * b


def _concat(a, b):
    return np.concatenate([a, b], axis=1)


def _absdiff_product(a, b):
    return np.concatenate([np.abs(a - b), a * b], axis=1)


def _sqdiff(a, b):
    return (a - b) ** 2


#: Pair combiners: (left (n, d), right (n, d)) -> features (n, k).
COMBINERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "diff": _diff,
    "absdiff": _absdiff,
    "sqdiff": _sqdiff,
    "product": _product,
    "concat": _concat,
    "absdiff+product": _absdiff_product,
}
#: Combiners whose features do not change when left and right are swapped.
SYMMETRIC_COMBINERS = frozenset({"absdiff", "sqdiff", "product", "absdiff+product"})


class PairFeatures(TransformerMixin, BaseEstimator):
    """Pairs (n, 2, d) -> pair features: [pre-PCA on single images] -> combine -> [scale] -> [post-PCA].

    Args:
        combine: one of `COMBINERS` ("diff" signed, "absdiff", "sqdiff", "product", "concat",
            "absdiff+product"). Symmetric ones ignore the order of a pair.
        pre_pca: None, an int (components) or a float in (0, 1) (variance kept) for a PCA of
            single embeddings, fitted on the training-pair images with each image counted once.
        post_pca: the same for a PCA of the combined pair features.
        standardize: standardise the pair features (fitted on training pairs) before post-PCA
            and the classifier; LDA does not need it but kNN, SVM and logistic regression do.
        whiten: whiten the pre-PCA components (unit variance per component).
    """

    def __init__(self, combine: str = "absdiff", pre_pca: int | float | None = None,
                 post_pca: int | float | None = None, standardize: bool = True, whiten: bool = False):
        self.combine = combine
        self.pre_pca = pre_pca
        self.post_pca = post_pca
        self.standardize = standardize
        self.whiten = whiten

    def _check_params(self) -> None:
        if self.combine not in COMBINERS:
            raise ValueError(f"unknown combine {self.combine!r}; choose one of {sorted(COMBINERS)}")
        for name in ("pre_pca", "post_pca"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"{name} must be None, an int or a float in (0, 1), got {v!r}")
            if isinstance(v, (float, np.floating)) and not 0.0 < v < 1.0:
                raise ValueError(f"{name} as a float is the variance kept and must be in (0, 1), got {v}")
            if isinstance(v, (int, np.integer)) and v < 1:
                raise ValueError(f"{name} must be >= 1 components, got {v}")

    @staticmethod
    def _pca(n, n_samples: int, n_features: int, whiten: bool) -> PCA:
        if isinstance(n, (int, np.integer)):
            if n > min(n_samples, n_features):
                raise ValueError(
                    f"asked for {n} PCA components but the training data allow at most "
                    f"min(n_samples={n_samples}, n_features={n_features}); use fewer components"
                )
        return PCA(n_components=n, whiten=whiten, svd_solver="auto", random_state=0)

    def fit(self, X, y=None):
        self._check_params()
        P = as_pairs(X)
        self.n_features_in_ = P.shape[1] * P.shape[2]
        self.embedding_dim_ = P.shape[2]
        if self.pre_pca is not None:
            singles = unique_rows(P.reshape(-1, P.shape[2]))
            self.pre_pca_ = self._pca(self.pre_pca, *singles.shape, self.whiten).fit(singles)
        else:
            self.pre_pca_ = None
        F = self._combine(P)
        self.scaler_ = StandardScaler().fit(F) if self.standardize else None
        if self.scaler_ is not None:
            F = self.scaler_.transform(F)
        if self.post_pca is not None:
            self.post_pca_ = self._pca(self.post_pca, *F.shape, False).fit(F)
        else:
            self.post_pca_ = None
        return self

    def _combine(self, P: np.ndarray) -> np.ndarray:
        left, right = P[:, 0, :], P[:, 1, :]
        if self.pre_pca_ is not None:
            left, right = self.pre_pca_.transform(left), self.pre_pca_.transform(right)
        return COMBINERS[self.combine](left, right)

    def transform(self, X):
        check_is_fitted(self, "scaler_")
        P = as_pairs(X)
        if P.shape[2] != self.embedding_dim_:
            raise ValueError(f"pairs have embedding dimension {P.shape[2]}, fitted on {self.embedding_dim_}")
        F = self._combine(P)
        if self.scaler_ is not None:
            F = self.scaler_.transform(F)
        if self.post_pca_ is not None:
            F = self.post_pca_.transform(F)
        return F


# -- classifiers ---------------------------------------------------------------------------
#: Pair classifiers of the R stage, by name; each factory returns a fresh unfitted estimator.
CLASSIFIERS: dict[str, Callable[[], BaseEstimator]] = {
    "lda": lambda: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
    "qda": lambda: QuadraticDiscriminantAnalysis(reg_param=0.1),
    "logistic": lambda: LogisticRegression(C=1.0, max_iter=2000),
    "svm": lambda: SVC(kernel="rbf", C=1.0, gamma="scale"),
    "linear-svm": lambda: SVC(kernel="linear", C=1.0),
    "knn": lambda: KNeighborsClassifier(n_neighbors=15),
}

#: Default GridSearchCV grids per classifier (parameter names of `make_pipeline`'s steps).
PARAM_GRIDS: dict[str, dict[str, list]] = {
    "lda": {},
    "qda": {"clf__reg_param": [0.01, 0.1, 0.5]},
    "logistic": {"clf__C": [0.01, 0.1, 1.0, 10.0]},
    "svm": {"clf__C": [0.1, 1.0, 10.0]},
    "linear-svm": {"clf__C": [0.01, 0.1, 1.0]},
    "knn": {"clf__n_neighbors": [5, 15, 45]},
}


def make_pipeline(classifier: str | BaseEstimator = "lda", combine: str = "absdiff",
                  pre_pca: int | float | None = None, post_pca: int | float | None = None,
                  standardize: bool = True, whiten: bool = False) -> Pipeline:
    """Pipeline(pairs -> PairFeatures -> classifier); steps named "pairs" and "clf"."""
    if isinstance(classifier, str):
        if classifier not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {classifier!r}; choose one of {sorted(CLASSIFIERS)}")
        clf = CLASSIFIERS[classifier]()
    else:
        clf = clone(classifier)
    feats = PairFeatures(combine=combine, pre_pca=pre_pca, post_pca=post_pca,
                         standardize=standardize, whiten=whiten)
    return Pipeline([("pairs", feats), ("clf", clf)])


def tuned_pipeline(classifier: str = "lda", combine: str = "absdiff",
                   param_grid: dict[str, list] | None = None, cv: int = 3, seed: int = 0,
                   scoring: str = "accuracy", n_jobs: int | None = None, **pipeline_kw) -> GridSearchCV:
    """GridSearchCV over a `make_pipeline` pipeline; the CV splits only the data given to fit.

    In the View 2 protocol `fit` receives the nine training folds, so components, k and C
    are chosen without ever seeing the test fold. Default grid: `PARAM_GRIDS[classifier]`
    plus pre-PCA sizes when `pre_pca` is given as a list.
    """
    grid = dict(PARAM_GRIDS.get(classifier, {}) if param_grid is None else param_grid)
    fixed = {}
    for key, value in pipeline_kw.items():
        if isinstance(value, (list, tuple)):
            grid[f"pairs__{key}"] = list(value)
            fixed[key] = value[0]
        else:
            fixed[key] = value
    pipe = make_pipeline(classifier, combine=combine, **fixed)
    splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    return GridSearchCV(pipe, grid or {"clf": [pipe.named_steps["clf"]]}, cv=splitter,
                        scoring=scoring, n_jobs=n_jobs, refit=True)


def pair_scores(estimator, X) -> np.ndarray:
    """Continuous same-person scores of a fitted classifier (higher = more likely same).

    `decision_function` where the estimator has one (LDA, logistic, SVM), else the
    probability of the positive class (QDA, kNN).
    """
    if hasattr(estimator, "decision_function"):
        try:
            s = estimator.decision_function(X)
        except AttributeError:
            s = None
        if s is not None:
            return np.asarray(s, dtype=np.float64).ravel()
    proba = estimator.predict_proba(X)
    classes = list(estimator.classes_)
    pos = classes.index(True) if True in classes else classes.index(1)
    return np.asarray(proba[:, pos], dtype=np.float64)


def logit_table(features, same, names: list[str] | None = None, alpha: float = 0.05,
                add_constant: bool = True) -> pd.DataFrame:
    """statsmodels Logit of same ~ pair features: coef, std err, z, p, confidence interval.

    The coefficient table (as R's `summary(glm(..., family=binomial))`) says which pair
    features move the odds of "same person"; keep the feature count small (post-PCA) or the
    fit separates perfectly and statsmodels raises.
    """
    import statsmodels.api as sm  # here: statsmodels is slow to import; only this fit uses it

    F = np.asarray(features, dtype=np.float64)
    y = check_same(same).astype(np.float64)
    if F.ndim != 2 or F.shape[0] != y.shape[0]:
        raise ValueError(f"features must be (n, k) with n = len(same), got {F.shape} and {y.shape}")
    if names is None:
        names = [f"x{i}" for i in range(F.shape[1])]
    if len(names) != F.shape[1]:
        raise ValueError(f"{len(names)} names for {F.shape[1]} features")
    exog = pd.DataFrame(F, columns=names)
    if add_constant:
        exog = sm.add_constant(exog, has_constant="add")
    fit = sm.Logit(y, exog).fit(disp=0)
    ci = fit.conf_int(alpha=alpha)
    return pd.DataFrame({
        "coef": fit.params, "std_err": fit.bse, "z": fit.tvalues, "p": fit.pvalues,
        "ci_low": ci.iloc[:, 0], "ci_high": ci.iloc[:, 1],
    })
