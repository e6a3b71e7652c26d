"""Fisher vectors (facelib.verify.fisher) against the gradient of scikit-learn's mixture likelihood."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from facelib.verify.fisher import FisherVectorEncoder


def _avg_loglik(gmm, X, means=None, sigma=None):
    """scikit-learn's average log-likelihood of X with the means / stds replaced."""
    import copy

    g = copy.deepcopy(gmm)
    if means is not None:
        g.means_ = means
    if sigma is not None:
        g.covariances_ = sigma ** 2
        g.precisions_cholesky_ = 1.0 / sigma
    return g.score(X)


def test_fisher_vector_is_the_scaled_gradient_of_the_average_log_likelihood():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 9 * 3))  # 40 images, 9 positions x 3 latents
    enc = FisherVectorEncoder(local_dim=3, n_components=3, spatial=True, seed=0).fit(X)
    gmm = enc.gmm_
    image = X[:1]
    T = enc.descriptors(image)[0]  # 9 x 5 (3 latents + row, column)
    G = enc.gradients(image)[0]
    K, D = gmm.means_.shape
    w, mu, sigma = gmm.weights_, gmm.means_, np.sqrt(gmm.covariances_)
    h = 1e-6
    num_mu, num_sigma = np.zeros((K, D)), np.zeros((K, D))
    for k in range(K):
        for d in range(D):
            e = np.zeros((K, D))
            e[k, d] = h
            num_mu[k, d] = (_avg_loglik(gmm, T, means=mu + e) - _avg_loglik(gmm, T, means=mu - e)) / (2 * h)
            num_sigma[k, d] = (_avg_loglik(gmm, T, sigma=sigma + e) - _avg_loglik(gmm, T, sigma=sigma - e)) / (2 * h)
    expected = np.r_[(sigma / np.sqrt(w)[:, None] * num_mu).ravel(),
                     (sigma / np.sqrt(2 * w)[:, None] * num_sigma).ravel()]
    np.testing.assert_allclose(G, expected, rtol=1e-4, atol=1e-7)


def test_improved_fisher_vector_is_signed_root_and_unit_length():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 16 * 2))
    enc = FisherVectorEncoder(local_dim=2, n_components=4, spatial=False).fit(X)
    F = enc.transform(X[:5])
    assert F.shape == (5, 2 * 4 * 2)
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1.0)
    raw = enc.gradients(X[:5])
    root = np.sign(raw) * np.sqrt(np.abs(raw))
    np.testing.assert_allclose(F, root / np.linalg.norm(root, axis=1, keepdims=True))
    plain = FisherVectorEncoder(local_dim=2, n_components=4, spatial=False, power=1, normalise=False).fit(X)
    np.testing.assert_allclose(plain.transform(X[:5]), plain.gradients(X[:5]))


def test_spatial_descriptors_append_the_grid_position():
    enc = FisherVectorEncoder(local_dim=1, spatial=True)
    D = enc.descriptors(np.arange(9.0)[None])
    np.testing.assert_allclose(D[0, :, 0], np.arange(9.0))
    np.testing.assert_allclose(D[0, :, 1], np.repeat([-0.5, 0, 0.5], 3))
    np.testing.assert_allclose(D[0, :, 2], np.tile([-0.5, 0, 0.5], 3))


@pytest.mark.parametrize("kw, X, match", [
    ({"local_dim": 5}, np.zeros((4, 12)), "positions x 5"),
    ({"local_dim": 2, "spatial": True}, np.zeros((4, 6)), "square grid"),
    ({"n_components": 0}, np.zeros((4, 12)), "n_components must be"),
    ({"local_dim": 3, "n_components": 50, "spatial": False}, np.random.default_rng(0).normal(size=(2, 12)),
     "cannot fit 50 Gaussians"),
])
def test_bad_input_says_what_to_do(kw, X, match):
    with pytest.raises(ValueError, match=match):
        FisherVectorEncoder(**kw).fit(X)


def test_transform_before_fit_says_so():
    with pytest.raises(NotFittedError, match="not fitted"):
        FisherVectorEncoder().transform(np.zeros((1, 12)))
