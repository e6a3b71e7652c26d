"""Which latents a model uses: the active-latent count behind tables and claims.

A latent is *active* when its mean KL(q(z_j|x) || p(z_j)) over a set of images exceeds a
threshold: a switched-off latent has a posterior equal to the prior for every image (KL 0),
so anything carrying information about x rises clearly above it. The threshold of
`ACTIVE_KL_NATS` (0.1 nats, about 0.14 bits) is the usual one for "collapsed" latents and is
a parameter wherever latents are counted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ACTIVE_KL_NATS", "active_latents", "count_active"]

#: Default threshold (nats of mean KL per latent) above which a latent counts as active.
ACTIVE_KL_NATS = 0.1


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number of nats >= 0, got {threshold!r}")
    return float(threshold)


def active_latents(kl_per_latent: Any, threshold: float = ACTIVE_KL_NATS) -> np.ndarray:
    """Indices of the latents whose mean KL (nats, one value per latent) exceeds `threshold`."""
    threshold = _check_threshold(threshold)
    if hasattr(kl_per_latent, "detach"):
        kl_per_latent = kl_per_latent.detach().cpu().numpy()
    kl = np.asarray(kl_per_latent, dtype=float)
    if kl.ndim != 1:
        raise ValueError(f"expected one KL value per latent (a 1-d array), got shape {kl.shape}; "
                         "average over images first, e.g. model.kl_per_dim(x)")
    if not np.all(np.isfinite(kl)) or np.any(kl < -1e-6):
        raise ValueError("KL per latent must be finite and >= 0; got " + np.array2string(kl, precision=3))
    return np.flatnonzero(kl > threshold)


def count_active(kl_per_latent: Any, threshold: float = ACTIVE_KL_NATS) -> int:
    """Number of active latents (see `active_latents`)."""
    return int(active_latents(kl_per_latent, threshold).size)
