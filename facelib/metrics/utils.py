"""Shared pieces of the metrics: representing images, sampling (code, factor) sets, discrete MI.

Mirrors disentanglement_lib's evaluation/metrics/utils.py in behaviour (histogram
discretisation with 20 bins, discrete mutual information), written independently.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from facelib.registry import Registry
from facelib.train.inference import representation as posterior_mean

from .sources import check_source, render

__all__ = [
    "METRICS",
    "as_representation",
    "represent",
    "sample_codes_and_factors",
    "sample_train_test",
    "histogram_discretize",
    "discrete_mutual_info",
    "discrete_entropy",
    "mutual_info_matrix",
    "sklearn_seed",
    "check_positive",
]

#: name -> metric function (each takes representation, source, *, seed, ...); a metric module
#: registers its function with ``@METRICS.register("name")``.
METRICS: Registry = Registry("metric", "A metric is a function (representation, source, *, seed, ...) -> dict, "
                                       "decorated with @facelib.metrics.METRICS.register(name)")

#: Images rendered and represented per call: only a compute batch, never changes a result.
CHUNK = 1024


def sklearn_seed(rng: np.random.Generator) -> int:
    """An int random_state for scikit-learn drawn from the metric's generator."""
    return int(rng.integers(0, 2**31 - 1))


def check_positive(**values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def as_representation(model_or_representation: Any, device: str | torch.device | None = None) -> Callable:
    """What every metric takes: a torch model is read through its posterior mean
    (`facelib.train.representation`, on `device`, by default where the model is); a callable
    (uint8 images -> (N, d) array) is returned as is."""
    if isinstance(model_or_representation, torch.nn.Module):
        return posterior_mean(model_or_representation, device=device)
    if callable(model_or_representation):
        return model_or_representation
    raise TypeError(
        f"expected a torch model or a representation callable (uint8 images -> (N, d) array), "
        f"got {type(model_or_representation).__name__}; pass the model itself or "
        "facelib.train.representation(model)"
    )


def represent(representation: Any, images: torch.Tensor) -> np.ndarray:
    """``representation(images)`` as a finite float64 (N, d) array, in chunks of `CHUNK`; a torch
    model stands for its posterior mean (`as_representation`)."""
    representation = as_representation(representation)
    outs = []
    for start in range(0, images.shape[0], CHUNK):
        batch = images[start:start + CHUNK]
        z = representation(batch)
        if isinstance(z, torch.Tensor):
            z = z.detach().cpu().numpy()
        z = np.asarray(z, dtype=np.float64)
        if z.ndim == 1:
            z = z[:, None]
        if z.ndim != 2 or z.shape[0] != batch.shape[0]:
            raise ValueError(
                f"a representation must map N images to an (N, d) array; got shape {z.shape} for "
                f"N={batch.shape[0]} (use facelib.train.representation(model) for a model)"
            )
        if not np.isfinite(z).all():
            raise ValueError("the representation returned NaN or inf; check the model (diverged training?)")
        outs.append(z)
    return np.concatenate(outs, axis=0)


def represent_codes(representation, source, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render ``codes`` with ``source`` and represent them, chunk by chunk (bounded memory)."""
    outs = []
    for start in range(0, codes.shape[0], CHUNK):
        images = render(source, codes[start:start + CHUNK], rng)
        outs.append(represent(representation, images))
    return np.concatenate(outs, axis=0)


def sample_codes_and_factors(representation, source, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. factor codes and their representations: (mus (n, d), factors (n, K))."""
    check_source(source)
    check_positive(n=n)
    factors = np.asarray(source.sample_factors(n, rng), dtype=np.int64)
    if factors.shape != (n, len(source.factor_sizes)):
        raise ValueError(f"sample_factors({n}) returned shape {factors.shape}, expected ({n}, {len(source.factor_sizes)})")
    return represent_codes(representation, source, factors, rng), factors


def sample_train_test(representation, source, n_train: int, n_eval: int, rng: np.random.Generator):
    """Training and test points for the metrics that fit a predictor (DCI, SAP):
    (x_train, y_train, x_test, y_test).

    A renderer (an unbounded source) gives two independent i.i.d. samples. A fixed data set
    (a source with ``disjoint_rows``, e.g. Extended Yale B) is split so that no test image is a
    training image; the samples may then be smaller than asked (see `DatasetSource.disjoint_rows`).
    """
    check_source(source)
    check_positive(n_train=n_train, n_eval=n_eval)
    if hasattr(source, "disjoint_rows"):
        train_rows, test_rows = source.disjoint_rows(n_train, n_eval, rng)
        return (represent(representation, source.images[torch.as_tensor(train_rows)]), source.codes[train_rows].copy(),
                represent(representation, source.images[torch.as_tensor(test_rows)]), source.codes[test_rows].copy())
    x_train, y_train = sample_codes_and_factors(representation, source, n_train, rng)
    x_test, y_test = sample_codes_and_factors(representation, source, n_eval, rng)
    return x_train, y_train, x_test, y_test


def histogram_discretize(mus: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column binned into ``num_bins`` equal-width bins over its own range (codes 0..bins-1)."""
    mus = np.asarray(mus, dtype=np.float64)
    check_positive(num_bins=num_bins)
    out = np.empty(mus.shape, dtype=np.int64)
    for j in range(mus.shape[1]):
        edges = np.histogram_bin_edges(mus[:, j], bins=num_bins)
        out[:, j] = np.digitize(mus[:, j], edges[:-1]) - 1
    return out


def _entropy_of_counts(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def discrete_mutual_info_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two discrete label vectors, from their contingency table."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    na, nb = ai.max() + 1, bi.max() + 1
    joint = np.bincount(ai * nb + bi, minlength=na * nb).reshape(na, nb).astype(np.float64)
    n = joint.sum()
    pa, pb = joint.sum(1) / n, joint.sum(0) / n
    nz = joint > 0
    pj = joint[nz] / n
    mi = float((pj * (np.log(pj) - np.log(np.outer(pa, pb)[nz]))).sum())
    return max(mi, 0.0)


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Matrix (d, K) of I(code_j; factor_k) in nats for discrete codes (n, d) and factors (n, K)."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes and factors need the same number of rows, got {codes.shape[0]} and {factors.shape[0]}")
    return np.array([[discrete_mutual_info_1d(codes[:, j], factors[:, k]) for k in range(factors.shape[1])]
                     for j in range(codes.shape[1])])


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each column of a discrete (n, K) array."""
    factors = np.asarray(factors)
    return np.array([_entropy_of_counts(np.unique(factors[:, k], return_counts=True)[1])
                     for k in range(factors.shape[1])])


def mutual_info_matrix(mus: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """I(histogram-discretised mu_j; factor_k), shape (d, K), nats."""
    return discrete_mutual_info(histogram_discretize(mus, num_bins), factors)
