"""Distance and likelihood-ratio pair scores: cosine, Euclidean, Mahalanobis, two-covariance (PLDA).

Each scorer is an estimator with `fit(embeddings, identity)` (identity labels of training
images), `fit_pairs(left, right, same)` (only same/different labels of training pairs, as
LFW's image-restricted setting allows) and `score_pairs(left, right)`; higher scores mean
"more likely the same person". `labels` says what a scorer needs when fitted:
"none" (nothing, or only unlabelled images), "identities" or "pairs".

That is the one interface every verification method has for the protocols: `labels`,
`fit_pairs`, `score_pairs` (and `fit` unless `labels == "pairs"`), optionally `predict_pairs`
(a classifier's own same/different decision). A pair classifier (a scikit-learn Pipeline over
pair arrays, `features.make_pipeline`) gets it from `PairClassifier` (`as_verifier` wraps one),
and the siamese CNN (`siamese.SiameseVerifier`) has it on images.

`SCORERS` is the registry of scorers by name (`facelib.registry.Registry`: lookup forgives case,
spaces and ``_`` / ``-``; an unknown name lists the known ones). A scorer registers itself with
``@SCORERS.register("name")`` on its class, in its own module (see DEVELOPING.md, "Add a scorer");
the LFW selection (`selection.LFWSetting.scorer`) and `protocols.evaluate` take any registered name.

The covariance estimates behind Mahalanobis and PLDA are `covariances`', shrunk towards a
scaled identity (default ``shrinkage=0.05``), so they are invertible with few identities or
many latents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from facelib.registry import Registry

from .covariances import (_as_matrix, pair_covariances, quadratic_forms, shrink, two_covariance_em,
                          within_between_covariance)
from .features import pair_scores, unique_row_index, unique_rows
from facelib.data.checks import check_identity, check_same

__all__ = [
    "PairScorer",
    "PairClassifier",
    "as_verifier",
    "CosineScore",
    "EuclideanScore",
    "MahalanobisScore",
    "TwoCovarianceScore",
    "SCORERS",
]


#: Scorers by name: classes whose no-argument instances are scorers with default settings.
SCORERS: Registry[type] = Registry("scorer", hint="register one with @SCORERS.register(name) on a PairScorer "
                                   "class (facelib.verify.scores), in a module imported before the lookup")


class PairScorer(BaseEstimator):
    """Base: optional PCA (on training images) then a score of two embeddings."""

    labels = "none"

    def _fit_pca(self, X: np.ndarray) -> np.ndarray:
        n = getattr(self, "n_components", None)
        length_norm = getattr(self, "length_norm", False)
        if n is None and not length_norm:
            self.pca_ = None
            return X
        rows = unique_rows(X)
        limit = min(rows.shape)
        if n is not None and not isinstance(n, float) and n > limit:
            raise ValueError(f"{type(self).__name__}(n_components={n}) asks for more components than the "
                             f"training embeddings have ({rows.shape[0]} distinct rows x {X.shape[1]} dimensions); "
                             f"use n_components <= {limit}, a fraction such as 0.95, or None for no PCA")
        self.pca_ = PCA(n_components=n, whiten=length_norm, svd_solver="auto", random_state=0).fit(rows)
        return self._project(X)

    def _project(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "pca_", None) is None:
            return X
        Z = self.pca_.transform(X)
        if getattr(self, "length_norm", False):
            Z /= np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
        return Z

    def fit(self, embeddings, identity=None):
        """Fit from single embeddings (with identity labels where the score needs them).

        An image listed more than once (LFW's pair lists reuse images) is one observation:
        counted twice, its copies would look like zero within-person variation.
        """
        X = _as_matrix(embeddings, "embeddings")
        if identity is not None:
            identity = check_identity(identity, X.shape[0])
            codes = np.unique(identity, return_inverse=True)[1].reshape(-1)
            first = unique_row_index(np.column_stack([X, codes]))
            n_rows = X.shape[0]
            X, identity = X[first], identity[first]
            counts = np.unique(identity[identity >= 0], return_counts=True)[1]
            if len(first) < n_rows and counts.size and counts.max() < 2:
                raise ValueError(
                    f"{n_rows - len(first)} of the {n_rows} embeddings repeat another of the same person's exactly "
                    "(a repeated image counts once), which leaves no person with two different embeddings: "
                    "there is no within-person variation and the covariance is singular. Check the "
                    "representation (a constant or collapsed code?)")
        X = self._fit_pca(X)
        self.dim_ = X.shape[1]
        self._fit_stats(X, identity)
        return self

    def fit_pairs(self, left, right, same):
        """Fit from training pairs only (image-restricted): images are the pairs' images."""
        L, R = _as_matrix(left, "left"), _as_matrix(right, "right")
        both = self._fit_pca(np.concatenate([L, R]))
        L, R = both[: L.shape[0]], both[L.shape[0]:]
        self.dim_ = L.shape[1]
        self._fit_pair_stats(L, R, check_same(same, L.shape[0]))
        return self

    def _fit_stats(self, X, identity) -> None:
        self.mean_ = X.mean(axis=0)

    def _fit_pair_stats(self, L, R, same) -> None:
        self._fit_stats(unique_rows(np.concatenate([L, R])), None)

    def _prepare(self, left, right):
        check_is_fitted(self, "dim_")
        L, R = _as_matrix(left, "left"), _as_matrix(right, "right")
        if L.shape != R.shape:
            raise ValueError(f"left and right must have the same shape, got {L.shape} and {R.shape}")
        L, R = self._project(L), self._project(R)
        if L.shape[1] != self.dim_:
            raise ValueError(f"embeddings have dimension {L.shape[1]}, scorer was fitted on {self.dim_}")
        return L, R

    def score_pairs(self, left, right) -> np.ndarray:
        raise NotImplementedError


class PairClassifier(PairScorer):
    """A pair classifier (Pipeline / GridSearchCV over (n, 2, d) pair arrays) as a pair scorer:
    fitted on the training pairs' labels, scored by `features.pair_scores`."""

    labels = "pairs"

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def fit_pairs(self, left, right, same):
        self.estimator_ = clone(self.estimator).fit(_stack(left, right), check_same(same, len(left)))
        return self

    def score_pairs(self, left, right) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return pair_scores(self.estimator_, _stack(left, right))

    def predict_pairs(self, left, right) -> np.ndarray:
        """The classifier's own same/different decision (its `predict`)."""
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict(_stack(left, right))).astype(bool)


def _stack(left, right) -> np.ndarray:
    return np.stack([_as_matrix(left, "left"), _as_matrix(right, "right")], axis=1)


def as_verifier(method: Any) -> Any:
    """`method` with the pair-scorer interface: a scorer (anything with `score_pairs`) as it is,
    a pair classifier wrapped in `PairClassifier`."""
    return method if hasattr(method, "score_pairs") else PairClassifier(method)


@SCORERS.register("cosine")
class CosineScore(PairScorer):
    """Cosine similarity; `center=True` subtracts the training mean first (label-free)."""

    def __init__(self, center: bool = False, n_components: int | float | None = None):
        self.center = center
        self.n_components = n_components

    def score_pairs(self, left, right):
        L, R = self._prepare(left, right)
        if self.center:
            L, R = L - self.mean_, R - self.mean_
        num = np.sum(L * R, axis=1)
        den = np.linalg.norm(L, axis=1) * np.linalg.norm(R, axis=1)
        return num / np.maximum(den, 1e-12)


@SCORERS.register("euclidean")
class EuclideanScore(PairScorer):
    """Minus the Euclidean distance."""

    def __init__(self, n_components: int | float | None = None):
        self.n_components = n_components

    def score_pairs(self, left, right):
        L, R = self._prepare(left, right)
        return -np.linalg.norm(L - R, axis=1)


@SCORERS.register("mahalanobis")
class MahalanobisScore(PairScorer):
    """Minus the Mahalanobis distance under the pooled within-identity covariance.

    Directions in which images of one person vary a lot (lighting, pose) count little.
    """

    labels = "identities"

    def __init__(self, shrinkage: float = 0.05, n_components: int | float | None = None):
        self.shrinkage = shrinkage
        self.n_components = n_components

    def _set_cov(self, Sw):
        self.within_cov_ = shrink(Sw, self.shrinkage)
        self.precision_ = np.linalg.inv(self.within_cov_)

    def _fit_stats(self, X, identity):
        if identity is None:
            raise ValueError("MahalanobisScore.fit needs identity labels; use fit_pairs with pair labels instead")
        Sw, _, self.mean_, self.df_ = within_between_covariance(X, identity)
        self._set_cov(Sw)

    def _fit_pair_stats(self, L, R, same):
        Sw, _, self.mean_, self.df_ = pair_covariances(L, R, same)
        self._set_cov(Sw)

    def score_pairs(self, left, right):
        L, R = self._prepare(left, right)
        D = L - R
        return -np.sqrt(np.maximum(quadratic_forms(D, self.precision_), 0.0))


@SCORERS.register("plda")
class TwoCovarianceScore(PairScorer):
    """Two-covariance (PLDA / Joint Bayesian) log-likelihood ratio of same vs different person.

    Model: x = mu + a + e with identity a ~ N(0, Sb) and image noise e ~ N(0, Sw)
    (Ioffe 2006; Prince & Elder 2007; Chen et al. 2012). With T = Sb + Sw,
    same person: [x; y] ~ N(0, [[T, Sb], [Sb, T]]); different: N(0, [[T, 0], [0, T]]).
    The score is log N_same(x, y) - log N_diff(x, y), a closed-form quadratic
    -1/2 [x'(P - T^-1)x + y'(P - T^-1)y + 2 x'Q y] - 1/2 [log|M| - 2 log|T|]
    where [[P, Q], [Q, P]] is the inverse of the same-person covariance M.
    Sw and Sb are estimated by moments (`within_between_covariance`), or with
    ``estimator="em"`` by maximum likelihood (`two_covariance_em`; needs identity labels),
    then shrunk.

    ``length_norm=True`` whitens the training embeddings (after the optional PCA) and
    scales every embedding to unit length before the model sees it (Garcia-Romero &
    Espy-Wilson 2011): heavy-tailed embeddings come closer to the Gaussians the model
    assumes. `max_iter` caps the EM iterations; the fitted model
    keeps the log-likelihood per iteration in `loglik_`.
    """

    labels = "identities"

    def __init__(self, shrinkage: float = 0.05, n_components: int | float | None = None,
                 estimator: str = "moments", length_norm: bool = False, max_iter: int = 200):
        self.shrinkage = shrinkage
        self.n_components = n_components
        self.estimator = estimator
        self.length_norm = length_norm
        self.max_iter = max_iter

    def _check_estimator(self):
        if self.estimator not in ("moments", "em"):
            raise ValueError(f"estimator must be 'moments' or 'em', got {self.estimator!r}")

    def _set_model(self, Sw, Sb, mu):
        d = Sw.shape[0]
        Sw = shrink(Sw, self.shrinkage)
        # Sb may be rank-deficient (fewer identities than dimensions); a small ridge keeps M invertible.
        Sb = shrink(Sb, self.shrinkage) if np.trace(Sb) > 0 else np.zeros((d, d))
        self.within_cov_, self.between_cov_, self.mean_ = Sw, Sb, mu
        T = Sb + Sw
        # M = [[T, Sb], [Sb, T]] is block-symmetric: with U = [[I, I], [I, -I]] / sqrt(2),
        # M = U diag(T + Sb, T - Sb) U', so its inverse and log-determinant come from two
        # d x d problems instead of one 2d x 2d (8x fewer flops; raw 64x64 pixels: d = 4096).
        T_plus = T + Sb                                           # and T - Sb = Sw
        plus, minus = np.linalg.inv(T_plus), np.linalg.inv(Sw)
        Tinv = np.linalg.inv(T)
        P, Q = (plus + minus) / 2, (plus - minus) / 2
        self.A_ = (P - Tinv + (P - Tinv).T) / 2
        self.G_ = (Q + Q.T) / 2
        _, logdet_plus = np.linalg.slogdet(T_plus)
        _, logdet_minus = np.linalg.slogdet(Sw)
        _, logdet_t = np.linalg.slogdet(T)
        self.const_ = -0.5 * (logdet_plus + logdet_minus - 2.0 * logdet_t)

    def _fit_stats(self, X, identity):
        if identity is None:
            raise ValueError("TwoCovarianceScore.fit needs identity labels; use fit_pairs with pair labels instead")
        self._check_estimator()
        Sw, Sb, mu, self.df_ = within_between_covariance(X, identity)
        if self.estimator == "em":
            Sw, Sb, mu, self.loglik_ = two_covariance_em(X, identity, max_iter=self.max_iter)
        self._set_model(Sw, Sb, mu)

    def _fit_pair_stats(self, L, R, same):
        self._check_estimator()
        if self.estimator == "em":
            raise ValueError("estimator='em' needs identity labels (fit with identities, training='identities'); "
                             "pair labels only give the moment estimates: use estimator='moments'")
        Sw, Sb, mu, self.df_ = pair_covariances(L, R, same)
        self._set_model(Sw, Sb, mu)

    def score_pairs(self, left, right):
        L, R = self._prepare(left, right)
        L, R = L - self.mean_, R - self.mean_
        quad = (quadratic_forms(L, self.A_) + quadratic_forms(R, self.A_)
                + 2.0 * quadratic_forms(L, self.G_, R))
        return -0.5 * quad + self.const_

