"""Mutual Information Gap (Chen et al., NeurIPS 2018), as in disentanglement_lib's mig.py.

Why: for each factor, the gap between the two latent dimensions most informative about it,
normalised by the factor's entropy, is high only when one dimension alone captures it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from .utils import METRICS, as_representation, discrete_entropy, mutual_info_matrix, sample_codes_and_factors

__all__ = ["mig", "mig_from_codes", "mutual_info_table"]


def _normalised_mi(mus: np.ndarray, factors: np.ndarray, num_bins: int) -> np.ndarray:
    """I(discretised mu_j; factor_k) / H(factor_k), (d, K); NaN for a constant factor."""
    h = discrete_entropy(factors)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h > 0, mutual_info_matrix(mus, factors, num_bins) / h, np.nan)


def mig_from_codes(mus: np.ndarray, factors: np.ndarray, num_bins: int = 20,
                   factor_names: list[str] | None = None) -> dict[str, float]:
    """MIG of given codes (n, d) and discrete factors (n, K); needs d >= 2."""
    mus, factors = np.asarray(mus, dtype=np.float64), np.asarray(factors)
    if mus.ndim != 2 or mus.shape[1] < 2:
        raise ValueError(f"MIG needs at least two latent dimensions (a gap between the top two), got shape {mus.shape}")
    top = np.sort(_normalised_mi(mus, factors, num_bins), axis=0)[::-1]  # NaN columns stay NaN
    per_factor = top[0] - top[1]
    if np.isnan(per_factor).all():
        raise ValueError("every factor was constant in the sample; MIG is undefined (sample more points)")
    names = factor_names or [f"f{k}" for k in range(factors.shape[1])]
    out = {"mig": float(np.nanmean(per_factor))}
    out.update({f"mig_{n}": float(v) for n, v in zip(names, per_factor)})
    return out


@METRICS.register("mig")
def mig(representation: Callable, source: Any, *, seed: int = 0, n_train: int = 10000,
        num_bins: int = 20) -> dict[str, float]:
    """Mean over factors of (top - second) discretised MI / H(factor); plus per-factor gaps.

    Defaults are disentanglement_lib's (10,000 points, histogram discretisation, 20 bins).
    Factors that happen to be constant in the sample are skipped.
    """
    rng = np.random.default_rng(seed)
    mus, factors = sample_codes_and_factors(representation, source, n_train, rng)
    return mig_from_codes(mus, factors, num_bins, list(source.factor_names))


def mutual_info_table(representation: Callable, source: Any, *, seed: int = 0, n_train: int = 10000,
                      num_bins: int = 20) -> pd.DataFrame:
    """The matrix MIG summarises: I(latent j; factor k) / H(factor k), latents by factors.

    Why: a low MIG has two opposite causes that the number alone cannot tell apart -- a
    factor no latent carries (its column is low everywhere) or one spread over several
    latents (two or more high entries, so the gap between the top two is small). Same
    sample, discretisation and normalisation as `mig` with the same seed, so the gap of
    column k's top two entries is ``mig_<k>``. Rows ``z0, z1, ...``; columns the factor names.
    A torch model is read through its posterior mean, as `evaluate` reads it.
    """
    representation = as_representation(representation)
    rng = np.random.default_rng(seed)
    mus, factors = sample_codes_and_factors(representation, source, n_train, rng)
    return pd.DataFrame(_normalised_mi(mus, factors, num_bins), index=[f"z{j}" for j in range(mus.shape[1])],
                        columns=list(source.factor_names))
