"""Baseline representations of face images: raw pixels, Eigenfaces, Fisherfaces.

Each is a scikit-learn transformer on flattened images (`flatten_images`), so the
protocols refit it on the training folds' images only, fold by fold. Fisherfaces use
identity labels (of training images), the others use none.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from facelib.data.pixels import to_float

from .features import unique_rows

__all__ = ["flatten_images", "RawPixels", "Eigenfaces", "Fisherfaces", "BASELINES"]


def flatten_images(images) -> np.ndarray:
    """uint8 images N x C x H x W (tensor or array), or N x H x W, -> float32 (N, C*H*W) in [0, 1]."""
    x = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim not in (3, 4):
        raise ValueError(f"images must be N x C x H x W or N x H x W, got shape {tuple(x.shape)}")
    return to_float(x.reshape(x.shape[0], -1)).numpy()


def _matrix(estimator: BaseEstimator, X, fitting: bool) -> np.ndarray:
    """X as float64 (n, pixels), images N x C x H x W flattened first, checked as scikit-learn
    checks input (finite, non-empty, 2-D; at transform time the fitted number of features)."""
    if isinstance(X, torch.Tensor) or (hasattr(X, "ndim") and X.ndim > 2):
        X = flatten_images(X)
    return validate_data(estimator, X, reset=fitting, dtype=np.float64)


def _random_state(estimator: BaseEstimator) -> int | None:
    """`random_state`, or the older name `seed` when a caller still gives it."""
    return estimator.random_state if estimator.seed is None else estimator.seed


def int_seed(estimator: BaseEstimator) -> int:
    """The estimator's `random_state` (or `seed`) as the int seed torch and NumPy generators take:
    an int as it is, None or a RandomState drawn from (scikit-learn's meaning of them)."""
    state = _random_state(estimator)
    if isinstance(state, (int, np.integer)):
        return int(state)
    return int(check_random_state(state).randint(np.iinfo(np.int32).max))


class RawPixels(TransformerMixin, BaseEstimator):
    """Pixels as they are (optionally centred on the training mean); learns nothing else."""

    labels = "none"

    def __init__(self, center: bool = True):
        self.center = center

    def fit(self, X, y=None):
        X = _matrix(self, X, fitting=True)
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(X.shape[1])
        return self

    def transform(self, X):
        check_is_fitted(self, "mean_")
        return _matrix(self, X, fitting=False) - self.mean_


class Eigenfaces(TransformerMixin, BaseEstimator):
    """PCA of training images (Turk & Pentland 1991); `whiten` divides by the component sd."""

    labels = "none"

    def __init__(self, n_components: int | float = 100, whiten: bool = True, random_state: int | None = 0,
                 seed: int | None = None):
        self.n_components = n_components
        self.whiten = whiten
        self.random_state = random_state
        self.seed = seed  # the older name of random_state

    def fit(self, X, y=None):
        X = unique_rows(_matrix(self, X, fitting=True))
        n = self.n_components
        if isinstance(n, int) and n > min(X.shape):
            raise ValueError(f"n_components={n} exceeds min(n_images={X.shape[0]}, pixels={X.shape[1]})")
        # "auto": exact for small data, seeded randomized SVD for image-sized data
        self.pca_ = PCA(n_components=n, whiten=self.whiten, svd_solver="auto",
                        random_state=_random_state(self)).fit(X)
        return self

    def transform(self, X):
        check_is_fitted(self, "pca_")
        return self.pca_.transform(_matrix(self, X, fitting=False))


class Fisherfaces(TransformerMixin, BaseEstimator):
    """PCA then LDA on identities (Belhumeur et al. 1997); needs identity labels of training images.

    Identities with a single image carry no within-person information and are dropped
    from the LDA fit. The PCA keeps at most N - c components (N images, c people) so the
    within-class scatter is invertible, as in the original method.
    """

    labels = "identities"

    def __init__(self, n_pca: int = 150, n_components: int | None = None, random_state: int | None = 0,
                 seed: int | None = None):
        self.n_pca = n_pca
        self.n_components = n_components
        self.random_state = random_state
        self.seed = seed  # the older name of random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # identity labels
        return tags

    def fit(self, X, y=None):
        if y is None:
            raise ValueError("Fisherfaces requires y to be passed, but the target y is None: give the identity "
                             "labels of the training images, fit(X, identity)")
        X = _matrix(self, X, fitting=True)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"identity must have shape ({X.shape[0]},), got {y.shape}")
        people, counts = np.unique(y[y >= 0], return_counts=True)
        multi = people[counts >= 2]
        keep = np.isin(y, multi)
        if multi.size < 2:
            raise ValueError("Fisherfaces needs at least two identities with two or more images each "
                             f"(got n_samples = {X.shape[0]} of {people.size} identities)")
        Xk, yk = X[keep], y[keep]
        n_pca = int(min(self.n_pca, Xk.shape[0] - multi.size, X.shape[1]))
        if n_pca < 1:
            raise ValueError("too few images per identity for Fisherfaces (need N - c >= 1)")
        self.pca_ = PCA(n_components=n_pca, svd_solver="auto", random_state=_random_state(self)).fit(unique_rows(X))
        n_lda = min(multi.size - 1, n_pca) if self.n_components is None else self.n_components
        self.lda_ = LinearDiscriminantAnalysis(n_components=n_lda, solver="svd").fit(self.pca_.transform(Xk), yk)
        return self

    def transform(self, X):
        check_is_fitted(self, "lda_")
        return self.lda_.transform(self.pca_.transform(_matrix(self, X, fitting=False)))


#: Baseline representations by name (factories with default settings).
BASELINES = {"pixels": RawPixels, "eigenfaces": Eigenfaces, "fisherfaces": Fisherfaces}
