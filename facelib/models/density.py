"""`AggregatePosterior`: a density fitted to a model's latent codes, to sample where the faces are.

A VAE's prior N(0, I) and the codes its encoder gives the training faces (the aggregate posterior)
need not agree: on LFW the codes spread about twice as wide as the prior, so prior draws land in
the codes' centre and decode to average faces. Ex-post density estimation (Ghosh et al. 2020,
"From variational to deterministic autoencoders") fits a density to the codes after training and
samples from it instead. Two densities are kept: a full-covariance Gaussian and a mixture of
`n_components` Gaussians with diagonal covariances (scikit-learn's `GaussianMixture`), both as
plain numbers (`to_dict` / `from_dict`: JSON, no pickle), so a zoo manifest or a checkpoint can
store them and sampling needs no data.

`prior_mismatch()` says how far the codes are from the prior: the KL divergence from the fitted
Gaussian to N(0, I) (nats; 0 when they agree) and the codes' mean standard deviation per latent
(1 for the prior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.mixture import GaussianMixture

__all__ = ["AggregatePosterior", "DENSITIES"]

#: The densities `AggregatePosterior.sample` draws from.
DENSITIES = ("mixture", "gaussian")


def _matrix(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape or not np.isfinite(a).all():
        raise ValueError(f"aggregate posterior: {what} must be a finite array of shape {shape}, got {a.shape}")
    return a


@dataclass(frozen=True)
class AggregatePosterior:
    """The fitted densities (see the module docstring).

    Attributes:
        mean, cov: the full-covariance Gaussian (d,), (d, d).
        weights, means, variances: the diagonal mixture (k,), (k, d), (k, d).
        n_codes: how many codes it was fitted on; reference: which faces they were.
    """

    mean: np.ndarray
    cov: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    n_codes: int
    reference: str = ""

    @classmethod
    def fit(cls, codes: Any, n_components: int = 10, seed: int = 0, reference: str = "") -> "AggregatePosterior":
        """Fit both densities to `codes` (n, d): posterior means of the faces (`train.embed`)."""
        z = np.asarray(codes, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < max(2 * z.shape[1], n_components) or not np.isfinite(z).all():
            raise ValueError(f"fit the aggregate posterior on finite codes (n, d) with n >= 2 d and n >= "
                             f"n_components ({n_components}); got shape {z.shape}")
        mixture = GaussianMixture(n_components=int(n_components), covariance_type="diag", random_state=int(seed),
                                  reg_covar=1e-6).fit(z)
        return cls(mean=z.mean(0), cov=np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1]),
                   weights=mixture.weights_, means=mixture.means_, variances=mixture.covariances_,
                   n_codes=int(z.shape[0]), reference=str(reference))

    @property
    def latent_dim(self) -> int:
        return int(self.mean.shape[0])

    def sample(self, n: int, seed: int = 0, density: str = "mixture") -> np.ndarray:
        """`n` codes (n, d) drawn from the mixture or the Gaussian; the same seed, the same codes."""
        if density not in DENSITIES:
            raise ValueError(f"density must be one of {', '.join(DENSITIES)}, got {density!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        rng = np.random.default_rng(int(seed))
        d = self.latent_dim
        if density == "gaussian":
            return rng.multivariate_normal(self.mean, self.cov, size=n, method="eigh")
        which = rng.choice(len(self.weights), size=n, p=self.weights / self.weights.sum())
        return self.means[which] + np.sqrt(self.variances[which]) * rng.standard_normal((n, d))

    def prior_mismatch(self) -> dict[str, float]:
        """How far the codes are from N(0, I): `kl_to_prior` = KL(N(mean, cov) || N(0, I)) in nats
        (0 when they agree), `mean_spread` = the codes' standard deviation averaged over latents
        (1 for the prior), `mean_offset` = the norm of their mean (0 for the prior)."""
        d = self.latent_dim
        sign, logdet = np.linalg.slogdet(self.cov)
        kl = 0.5 * (np.trace(self.cov) + float(self.mean @ self.mean) - d - logdet) if sign > 0 else math.inf
        return {"kl_to_prior": float(kl), "mean_spread": float(np.sqrt(np.diag(self.cov)).mean()),
                "mean_offset": float(np.linalg.norm(self.mean))}

    # -- storage ---------------------------------------------------------------------------------
    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        """Plain JSON numbers (rounded to `digits` significant-ish decimals)."""
        def r(a: np.ndarray):
            return np.round(np.asarray(a, dtype=np.float64), digits).tolist()
        return {"gaussian": {"mean": r(self.mean), "cov": r(self.cov)},
                "mixture": {"weights": r(self.weights), "means": r(self.means), "variances": r(self.variances)},
                "n_codes": self.n_codes, "reference": self.reference}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AggregatePosterior":
        """Rebuild from `to_dict` output, checking every shape (a damaged entry is a clear error)."""
        try:
            g, m = data["gaussian"], data["mixture"]
            mean = np.asarray(g["mean"], dtype=np.float64)
            d, k = mean.shape[0], len(m["weights"])
            weights = _matrix(m["weights"], (k,), "mixture weights")
            if (weights < 0).any() or not weights.sum() > 0:
                raise ValueError("aggregate posterior: mixture weights must be >= 0 and not all 0")
            variances = _matrix(m["variances"], (k, d), "mixture variances")
            if not (variances > 0).all():
                raise ValueError("aggregate posterior: mixture variances must be > 0")
            return cls(mean=_matrix(mean, (d,), "mean"), cov=_matrix(g["cov"], (d, d), "cov"), weights=weights,
                       means=_matrix(m["means"], (k, d), "mixture means"), variances=variances,
                       n_codes=int(data.get("n_codes", 0)), reference=str(data.get("reference", "")))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"aggregate posterior: not a stored density ({type(exc).__name__}: {exc}); "
                             "refit it with AggregatePosterior.fit") from None
