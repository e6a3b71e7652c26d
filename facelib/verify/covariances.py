"""Covariance estimates of identity and noise: within / between identity, from identities or pairs.

Two-covariance model: an image is x = mu + y + e with identity y ~ N(0, Sb) and noise
e ~ N(0, Sw). `within_between_covariance` estimates (Sw, Sb) by moments from identity labels,
`pair_covariances` from same/different pair labels only (image-restricted), `two_covariance_em`
by maximum likelihood; `shrink` pulls an estimate towards a scaled identity,
``S <- (1 - shrinkage) S + shrinkage * tr(S)/d * I``, so it is invertible with few identities
or many latents. The scorers of `scores` and the tests of `hotelling` are built on these.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .features import unique_rows
from facelib.data.checks import check_identity, check_same

__all__ = [
    "within_between_covariance",
    "pair_covariances",
    "two_covariance_em",
    "two_covariance_loglik",
    "shrink",
    "quadratic_forms",
]


def _as_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n x d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def quadratic_forms(x: np.ndarray, matrix: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Row-wise x_i' M y_i (y = x when not given), through one BLAS matmul.

    np.einsum("ij,jk,ik->i") computes the same without BLAS; on raw 64x64 pixels
    (d = 4096) it took minutes where this takes a fraction of a second.
    """
    return np.sum((x @ matrix) * (x if y is None else y), axis=1)


def shrink(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    """(1 - a) S + a tr(S)/d I: keeps S positive definite when it is estimated from few samples."""
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    d = cov.shape[0]
    target = np.trace(cov) / d if np.trace(cov) > 0 else 1.0
    return (1.0 - shrinkage) * cov + shrinkage * target * np.eye(d)


def _psd(cov: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Nearest symmetric matrix with eigenvalues >= floor (method-of-moments can go negative)."""
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return (v * np.maximum(w, floor)) @ v.T


def _identity_sums(X: np.ndarray, identity) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labelled rows (identity >= 0), each row's person index, and each person's row sum and image count."""
    ids = check_identity(identity, X.shape[0])
    keep = ids >= 0
    X = X[keep]
    _, inverse, counts = np.unique(ids[keep], return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size, X.shape[1]))
    inverse = inverse.reshape(-1)
    np.add.at(sums, inverse, X)
    return X, inverse, sums, counts


def within_between_covariance(embeddings, identity) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Pooled within-identity covariance Sw, between-identity covariance Sb, mean, within df.

    Sw = sum_i sum_j (x_ij - m_i)(x_ij - m_i)^T / (N - K) over identities with >= 2 images.
    Sb by moments: the covariance of identity means equals Sb + mean(1/n_i) Sw, so
    Sb = cov(means) - mean(1/n_i) Sw, projected to the positive semi-definite cone.
    """
    return _moment_estimates(*_identity_sums(_as_matrix(embeddings, "embeddings"), identity))


def _moment_estimates(X, inverse, sums, counts) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`within_between_covariance` from `_identity_sums`' output (EM starts here too)."""
    if counts.size < 2:
        raise ValueError(f"need at least two identities to estimate covariances, got {counts.size}")
    multi = counts >= 2
    if not multi.any():
        raise ValueError("no identity has two images, so the within-identity covariance is undefined")
    means = sums / counts[:, None]
    in_multi = multi[inverse]
    R = X[in_multi] - means[inverse[in_multi]]
    df = int(in_multi.sum() - multi.sum())
    Sw = R.T @ R / df
    mu = means.mean(axis=0)
    M = means - mu
    Sb = _psd(M.T @ M / (counts.size - 1) - np.mean(1.0 / counts) * Sw)
    return Sw, Sb, mu, df


def pair_covariances(left, right, same) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sw, Sb, mean, df from pair labels only (no identities): image-restricted estimates.

    For a same-person pair x - y = e1 - e2, so Cov(x - y) = 2 Sw (mean zero by symmetry);
    the total covariance of the (distinct) training images is Sb + Sw.
    """
    L, R = _as_matrix(left, "left"), _as_matrix(right, "right")
    s = check_same(same)
    if L.shape != R.shape or s.shape != (L.shape[0],):
        raise ValueError(f"left {L.shape}, right {R.shape} and same {s.shape} do not match")
    if s.sum() < 2:
        raise ValueError("need at least two same-person pairs to estimate the within covariance")
    D = L[s] - R[s]
    Sw = D.T @ D / (2.0 * D.shape[0])
    singles = unique_rows(np.concatenate([L, R]))
    mu = singles.mean(axis=0)
    C = singles - mu
    T = C.T @ C / max(singles.shape[0] - 1, 1)
    return Sw, _psd(T - Sw), mu, int(D.shape[0])


def two_covariance_loglik(embeddings, identity, Sw, Sb, mu) -> float:
    """Log-likelihood of labelled embeddings under the two-covariance model x = y_i + e.

    A person's n images are independent given y_i ~ N(mu, Sb), e ~ N(0, Sw); rotating them
    by an orthonormal Helmert basis splits the density into sqrt(n) * mean ~ N(sqrt(n) mu,
    n Sb + Sw) and n - 1 contrasts ~ N(0, Sw) whose scatter is the within-person scatter, so
    no nd x nd covariance is ever formed. Rows labelled < 0 are left out.
    """
    X, _, sums, counts = _identity_sums(_as_matrix(embeddings, "embeddings"), identity)
    return _loglik(sums / counts[:, None], counts, _within_scatter(X, sums, counts),
                   np.asarray(Sw, float), np.asarray(Sb, float), np.asarray(mu, float))


def _within_scatter(X, sums, counts) -> np.ndarray:
    """sum_i sum_j (x_ij - m_i)(x_ij - m_i)' over people i and their images j."""
    return X.T @ X - (sums / counts[:, None]).T @ sums


def _loglik(means, counts, scatter, Sw, Sb, mu) -> float:
    """The two-covariance log-likelihood from per-person means and counts and the within
    scatter, which do not change while EM updates Sw, Sb and mu."""
    d = means.shape[1]
    _, logdet_w = np.linalg.slogdet(Sw)
    total = 0.0
    for n in np.unique(counts):
        sel = counts == n
        C = n * Sb + Sw
        _, logdet_c = np.linalg.slogdet(C)
        total -= 0.5 * (sel.sum() * (d * np.log(2 * np.pi) + logdet_c)
                        + n * np.sum(quadratic_forms(means[sel] - mu, np.linalg.inv(C))))
        total -= 0.5 * sel.sum() * (n - 1) * (d * np.log(2 * np.pi) + logdet_w)
    return float(total - 0.5 * np.sum(np.linalg.inv(Sw) * scatter))


def two_covariance_em(embeddings, identity, max_iter: int = 200, tol: float = 1e-6):
    """Maximum-likelihood Sw, Sb, mu of the two-covariance model by EM (Sizov et al. 2014;
    the Joint Bayesian EM of Chen et al. 2012).

    The moment estimates (`within_between_covariance`) weight every person's mean alike
    whether it rests on one image or fifty; maximum likelihood weights each by what it
    knows, which matters when most people have one or two images (LFW: 4,069 of 5,749 have
    one). People with one image count (they inform Sb + Sw); rows labelled < 0 do not.
    EM starts from the moments and stops when the log-likelihood gains less than `tol`
    (relative) in an iteration, with a ConvergenceWarning if `max_iter` comes first (LFW's
    patch-VAE embeddings, 100 dimensions: 125 iterations, and the scores settle after 30).
    Returns Sw, Sb, mu and the log-likelihood per iteration (never decreasing: a check on
    the updates).
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    X, inverse, sums, counts = _identity_sums(_as_matrix(embeddings, "embeddings"), identity)
    Sw, Sb, mu, _ = _moment_estimates(X, inverse, sums, counts)
    d, K, N = X.shape[1], counts.size, X.shape[0]
    ridge = 1e-6 * np.trace(Sw) / d
    Sw, Sb = Sw + ridge * np.eye(d), Sb + ridge * np.eye(d)  # the moments' Sb can be singular
    XX = X.T @ X
    means, scatter = sums / counts[:, None], _within_scatter(X, sums, counts)
    history = [_loglik(means, counts, scatter, Sw, Sb, mu)]
    for _ in range(max_iter):
        W, B = np.linalg.inv(Sw), np.linalg.inv(Sb)
        Ey = np.zeros((K, d))
        post_cov = np.zeros((d, d))       # sum_i Cov(y_i | x)
        post_cov_n = np.zeros((d, d))     # sum_i n_i Cov(y_i | x)
        for n in np.unique(counts):
            sel = counts == n
            L_inv = np.linalg.inv(B + n * W)
            L_inv = (L_inv + L_inv.T) / 2
            Ey[sel] = (sums[sel] @ W + B @ mu) @ L_inv
            post_cov += sel.sum() * L_inv
            post_cov_n += sel.sum() * n * L_inv
        mu = Ey.mean(axis=0)
        Sb = (post_cov + Ey.T @ Ey) / K - np.outer(mu, mu)
        cross = sums.T @ Ey                 # sum_ij x_ij E[y_i]'
        Sw = (XX - cross - cross.T + post_cov_n + (Ey * counts[:, None]).T @ Ey) / N
        Sw, Sb = (Sw + Sw.T) / 2, (Sb + Sb.T) / 2
        history.append(_loglik(means, counts, scatter, Sw, Sb, mu))
        if abs(history[-1] - history[-2]) <= tol * abs(history[-2]):
            break
    else:
        warnings.warn(f"two-covariance EM stopped at max_iter={max_iter} before the log-likelihood settled "
                      f"(last relative gain {abs(history[-1] - history[-2]) / abs(history[-2]):.1e} > tol {tol:g}); "
                      "raise max_iter", ConvergenceWarning, stacklevel=2)
    return Sw, Sb, mu, np.asarray(history)
