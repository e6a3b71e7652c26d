"""beta-VAE score (Higgins et al., ICLR 2017), as in disentanglement_lib's beta_vae.py.

Why: a disentangled code keeps the dimension(s) of a factor still when that factor is
held fixed, so a *linear* classifier can tell, from the mean absolute difference of codes
over pairs sharing a factor, which factor it was.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .sources import check_source, sample_fixed
from .utils import METRICS, check_positive, represent_codes, sklearn_seed

__all__ = ["beta_vae_score", "beta_vae_features"]


def beta_vae_features(representation: Callable, source: Any, n: int, batch_size: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (feature, label) points: label k uniform, feature = mean_b |z(x1_b) - z(x2_b)|
    over ``batch_size`` pairs that share factor k (each pair its own value of k)."""
    check_source(source)
    check_positive(n=n, batch_size=batch_size)
    K = len(source.factor_sizes)
    per_chunk = max(1, 2048 // batch_size)
    feats, labels = [], []
    for start in range(0, n, per_chunk):
        m = min(per_chunk, n - start)
        ks = rng.integers(0, K, size=m)
        f1 = np.asarray(source.sample_factors(m * batch_size, rng), dtype=np.int64)
        f2 = np.empty_like(f1)
        k_rows = np.repeat(ks, batch_size)
        for k in np.unique(k_rows):
            rows = np.flatnonzero(k_rows == k)
            f2[rows] = sample_fixed(source, int(k), f1[rows, k], rows.size, rng)
        z1 = represent_codes(representation, source, f1, rng)
        z2 = represent_codes(representation, source, f2, rng)
        feats.append(np.abs(z1 - z2).reshape(m, batch_size, -1).mean(axis=1))
        labels.append(ks)
    return np.concatenate(feats), np.concatenate(labels)


@METRICS.register("beta_vae")
def beta_vae_score(representation: Callable, source: Any, *, seed: int = 0, n_train: int = 10000,
                   n_eval: int = 5000, batch_size: int = 64, max_iter: int = 1000) -> dict[str, float]:
    """Train/eval accuracy of a logistic regression predicting the fixed factor.

    Defaults are disentanglement_lib's (batch 64, 10,000 train, 5,000 eval points; sklearn
    LogisticRegression with default settings, here with ``max_iter`` raised so it converges).
    Chance is 1 / number of factors.
    """
    rng = np.random.default_rng(seed)
    x_train, y_train = beta_vae_features(representation, source, n_train, batch_size, rng)
    x_eval, y_eval = beta_vae_features(representation, source, n_eval, batch_size, rng)
    model = LogisticRegression(random_state=sklearn_seed(rng), max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }
