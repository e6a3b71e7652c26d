"""FactorVAE score (Kim & Mnih, ICML 2018), as in disentanglement_lib's factor_vae.py.

Why: with each dimension scaled by its global std, the dimension that varies least in a
batch with one factor fixed should always be that factor's dimension; a majority vote
(dimension -> factor) then classifies perfectly. Collapsed dimensions (global std < 0.05)
are pruned first, as in the paper, since dividing by a near-zero std would make them win.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .sources import check_source, sample_fixed
from .utils import METRICS, check_positive, represent_codes

__all__ = ["factor_vae_score", "factor_vae_votes"]


def _global_variances(representation, source, n: int, rng) -> np.ndarray:
    codes = np.asarray(source.sample_factors(n, rng), dtype=np.int64)
    z = represent_codes(representation, source, codes, rng)
    return np.var(z, axis=0, ddof=1)


def factor_vae_votes(representation: Callable, source: Any, n: int, batch_size: int,
                     global_variances: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vote counts (K, number of active dims): for ``n`` batches with a uniformly chosen factor k
    fixed (to the value of a random draw), which active dim had the least variance / global variance."""
    K = len(source.factor_sizes)
    votes = np.zeros((K, int(active.sum())), dtype=np.int64)
    per_chunk = max(1, 2048 // batch_size)
    for start in range(0, n, per_chunk):
        m = min(per_chunk, n - start)
        ks = rng.integers(0, K, size=m)
        values = np.asarray(source.sample_factors(m, rng), dtype=np.int64)[np.arange(m), ks]
        codes = np.empty((m * batch_size, K), dtype=np.int64)
        k_rows, v_rows = np.repeat(ks, batch_size), np.repeat(values, batch_size)
        for k in np.unique(k_rows):
            rows = np.flatnonzero(k_rows == k)
            codes[rows] = sample_fixed(source, int(k), v_rows[rows], rows.size, rng)
        z = represent_codes(representation, source, codes, rng).reshape(m, batch_size, -1)
        local = np.var(z, axis=1, ddof=1)[:, active] / global_variances[active]
        np.add.at(votes, (ks, np.argmin(local, axis=1)), 1)
    return votes


@METRICS.register("factor_vae")
def factor_vae_score(representation: Callable, source: Any, *, seed: int = 0, n_train: int = 10000,
                     n_eval: int = 5000, batch_size: int = 64, num_variance_estimate: int = 10000,
                     prune_threshold: float = 0.05) -> dict[str, float]:
    """Train/eval accuracy of the majority-vote classifier, and the number of active dims.

    Defaults are disentanglement_lib's (batch 64, 10,000 train and 5,000 eval votes, global
    variance from 10,000 points, prune dims with std < 0.05). All dims collapsed -> 0 accuracy.
    """
    check_source(source)
    check_positive(n_train=n_train, n_eval=n_eval, num_variance_estimate=num_variance_estimate)
    if batch_size < 2 or num_variance_estimate < 2:
        raise ValueError("batch_size and num_variance_estimate must be >= 2 (a variance needs two points)")
    rng = np.random.default_rng(seed)
    gvar = _global_variances(representation, source, num_variance_estimate, rng)
    active = np.sqrt(gvar) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}
    train_votes = factor_vae_votes(representation, source, n_train, batch_size, gvar, active, rng)
    eval_votes = factor_vae_votes(representation, source, n_eval, batch_size, gvar, active, rng)
    classifier = np.argmax(train_votes, axis=0)  # dim -> factor
    cols = np.arange(train_votes.shape[1])
    return {
        "train_accuracy": float(train_votes[classifier, cols].sum() / train_votes.sum()),
        "eval_accuracy": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
        "num_active_dims": float(active.sum()),
    }
