"""Fisher vector encoding of local descriptors (Perronnin, Sánchez & Mensink 2010).

An image described by T local descriptors x_t (here: a patch VAE's latent means at each grid
position, optionally with the position appended, as in Simonyan et al.'s "Fisher vector faces",
2013) becomes one fixed-length vector: the gradient of the descriptors' average log-likelihood
under a diagonal Gaussian mixture (weights w_k, means mu_k, std sigma_k), with respect to the
means and standard deviations, scaled by the Fisher information's diagonal:

    G_mu_k    = 1 / (T sqrt(w_k))   sum_t gamma_t(k) (x_t - mu_k) / sigma_k
    G_sigma_k = 1 / (T sqrt(2 w_k)) sum_t gamma_t(k) [((x_t - mu_k) / sigma_k)^2 - 1]

(gamma_t(k): the posterior of component k). The "improved" Fisher vector then takes the signed
square root of every entry and scales the vector to unit length. The mixture is fitted on the
training images' descriptors only (`fit`), with scikit-learn's `GaussianMixture`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted, validate_data

from .baselines import int_seed

__all__ = ["FisherVectorEncoder"]


class FisherVectorEncoder(TransformerMixin, BaseEstimator):
    """(N, positions x local_dim) local descriptors -> (N, 2 K D) improved Fisher vectors.

    Args:
        local_dim: columns per position (the patch VAE's latents per patch); the input's
            columns are position-major, as `PatchVAEEmbedding.transform` returns them.
        n_components: Gaussians K in the mixture.
        spatial: append each position's (row, column) on a square grid, centred and scaled to
            [-0.5, 0.5] times `spatial_scale`, to its descriptor (D = local_dim + 2), so a
            component also says where on the face it fires.
        power: signed power of every entry (0.5: the signed square root); 1 keeps it.
        normalise: scale each Fisher vector to unit Euclidean length.
        max_descriptors: descriptors drawn (seeded) from the training images to fit the mixture.
        random_state: seeds that draw and the mixture's initialisation (`seed`: its older name).
    """

    def __init__(self, local_dim: int = 12, n_components: int = 32, spatial: bool = True,
                 spatial_scale: float = 1.0, power: float = 0.5, normalise: bool = True,
                 max_descriptors: int = 100_000, max_iter: int = 100, random_state: int | None = 0,
                 seed: int | None = None):
        self.local_dim = local_dim
        self.n_components = n_components
        self.spatial = spatial
        self.spatial_scale = spatial_scale
        self.power = power
        self.normalise = normalise
        self.max_descriptors = max_descriptors
        self.max_iter = max_iter
        self.random_state = random_state
        self.seed = seed  # the older name of random_state

    def _check_params(self) -> None:
        for name in ("local_dim", "n_components", "max_descriptors", "max_iter"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not self.power > 0:
            raise ValueError(f"power must be > 0 (1 keeps the gradient as it is), got {self.power}")

    def descriptors(self, X) -> np.ndarray:
        """(N, T, D) local descriptors of (N, T x local_dim) rows (with positions if `spatial`)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] % self.local_dim:
            raise ValueError(f"expected (N, positions x {self.local_dim}) descriptors, got shape {X.shape}; "
                             "set local_dim to the latents per patch")
        n, t = X.shape[0], X.shape[1] // self.local_dim
        D = X.reshape(n, t, self.local_dim)
        if not self.spatial:
            return D
        side = int(round(np.sqrt(t)))
        if side * side != t:
            raise ValueError(f"spatial=True needs a square grid of positions, got {t}; pass spatial=False")
        r, c = np.divmod(np.arange(t), side)
        pos = self.spatial_scale * (np.c_[r, c] / max(side - 1, 1) - 0.5)
        return np.concatenate([D, np.broadcast_to(pos, (n, t, 2))], axis=2)

    def fit(self, X, y=None) -> "FisherVectorEncoder":
        X = validate_data(self, X, dtype=np.float64)  # scikit-learn's checks and messages; n_features_in_
        self._check_params()
        D = self.descriptors(X)
        flat = D.reshape(-1, D.shape[2])
        seed = int_seed(self)
        if len(flat) > self.max_descriptors:
            rng = np.random.default_rng(seed)
            flat = flat[rng.choice(len(flat), self.max_descriptors, replace=False)]
        if len(flat) < self.n_components:
            raise ValueError(f"{len(flat)} descriptors cannot fit {self.n_components} Gaussians; "
                             "use fewer components or more images")
        self.gmm_ = GaussianMixture(self.n_components, covariance_type="diag", max_iter=self.max_iter,
                                    reg_covar=1e-4, random_state=seed).fit(flat)
        self.n_iter_ = self.gmm_.n_iter_
        return self

    def gradients(self, X) -> np.ndarray:
        """(N, 2 K D) Fisher vectors before the power and length normalisation."""
        D = self.descriptors(X)
        n, t, d = D.shape
        w, mu = self.gmm_.weights_, self.gmm_.means_
        sigma = np.sqrt(self.gmm_.covariances_)
        gamma = self.gmm_.predict_proba(D.reshape(-1, d)).reshape(n, t, -1)  # N, T, K
        u = (D[:, :, None, :] - mu[None, None]) / sigma[None, None]  # N, T, K, D
        g_mu = np.einsum("ntk,ntkd->nkd", gamma, u) / (t * np.sqrt(w))[None, :, None]
        g_sigma = np.einsum("ntk,ntkd->nkd", gamma, u ** 2 - 1) / (t * np.sqrt(2 * w))[None, :, None]
        return np.concatenate([g_mu.reshape(n, -1), g_sigma.reshape(n, -1)], axis=1)

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "gmm_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        out = []
        for start in range(0, len(X), 64):  # bounded memory: N x T x K x D floats per chunk
            F = self.gradients(X[start:start + 64])
            if self.power != 1:
                F = np.sign(F) * np.abs(F) ** self.power
            if self.normalise:
                F /= np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)
            out.append(F)
        return np.concatenate(out)
