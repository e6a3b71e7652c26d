"""Loss terms of the VAE family as plain tensor functions.

Everything here is per image (summed over pixels or latents, never averaged over them),
so that a weight such as beta means what the papers mean; the models average over the
batch. Kept free of `nn.Module` state so each term can be checked against a reference
(torch.distributions, a closed form, a brute-force loop) in isolation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "LOG_2PI",
    "kl_normal_std",
    "log_normal",
    "log_standard_normal",
    "bernoulli_nll",
    "gaussian_nll",
    "tc_decomposition",
    "permute_dims",
    "capacity",
    "group_mean",
]

LOG_2PI = math.log(2.0 * math.pi)


def _full(t: torch.Tensor) -> torch.Tensor:
    """At least float32 (autocast may hand us fp16/bf16; float64 stays float64)."""
    return t if t.dtype == torch.float64 else t.float()


def kl_normal_std(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) elementwise (closed form), same shape as mu."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log density of N(mu, exp(logvar)) at z (broadcasting)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """Elementwise log density of N(0, 1) at z."""
    return -0.5 * (LOG_2PI + z.pow(2))


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log Bernoulli(x | sigmoid(logits)) summed over all but the batch dimension, (B,).

    For x in [0, 1] (not only {0, 1}) this is the usual binary cross-entropy, which is what
    beta-VAE papers minimise on grey-level images.
    """
    nll = F.binary_cross_entropy_with_logits(_full(logits), _full(x), reduction="none")
    return nll.flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor | float) -> torch.Tensor:
    """-log N(x | mean, exp(log_scale)^2) summed over all but the batch dimension, (B,)."""
    x, mean = _full(x), _full(mean)
    log_scale = torch.as_tensor(log_scale, dtype=x.dtype, device=x.device)
    d = (x - mean) * torch.exp(-log_scale)
    nll = 0.5 * d.pow(2) + log_scale + 0.5 * LOG_2PI
    return nll.flatten(1).sum(1)


def tc_decomposition(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int
) -> dict[str, torch.Tensor]:
    """beta-TCVAE decomposition of the KL with minibatch-weighted sampling (Chen et al. 2018).

    With M the batch size and N the data-set size, q(z_i) is estimated as
    ``1/(N M) sum_j q(z_i | x_j)`` and q(z_id) likewise per dimension. Returns per-image
    tensors (B,): ``mi`` = log q(z|x) - log q(z), ``tc`` = log q(z) - sum_d log q(z_d),
    ``dim_kl`` = sum_d log q(z_d) - log p(z), so that mi + tc + dim_kl equals the one-sample
    KL estimate ``log q(z|x) - log p(z)`` exactly (the estimator only splits it).
    """
    if dataset_size is None or dataset_size < 1:
        raise ValueError(f"dataset_size must be a positive int, got {dataset_size!r}")
    z, mu, logvar = _full(z), _full(mu), _full(logvar)
    m = z.shape[0]
    log_nm = math.log(float(dataset_size) * m)
    log_qz_cond_x = log_normal(z, mu, logvar).sum(1)
    log_pz = log_standard_normal(z).sum(1)
    # mat[i, j, d] = log q(z_i,d | x_j)
    mat = log_normal(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_qz = torch.logsumexp(mat.sum(2), dim=1) - log_nm
    log_prod_qzd = (torch.logsumexp(mat, dim=1) - log_nm).sum(1)
    return {
        "mi": log_qz_cond_x - log_qz,
        "tc": log_qz - log_prod_qzd,
        "dim_kl": log_prod_qzd - log_pz,
    }


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch (Kim & Mnih 2018, Alg. 1).

    The result is a sample from the product of the batch's marginals, the "fake" class of
    the FactorVAE discriminator.
    """
    b, d = z.shape
    keys = torch.rand(b, d, generator=generator, device="cpu" if generator is not None else z.device)
    perm = keys.to(z.device).argsort(dim=0)
    return torch.gather(z, 0, perm)


def capacity(step: int, c_max: float, c_steps: int) -> float:
    """Burgess et al. 2018 target KL: raised linearly from 0 to c_max over c_steps, then held."""
    if c_steps <= 0:
        return float(c_max)
    return float(c_max) * min(1.0, max(0, int(step)) / float(c_steps))


def group_mean(values: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Each row replaced by the mean of the rows sharing its group id (differentiable), (B, D)."""
    if group.shape != values.shape[:1]:
        raise ValueError(f"group must have shape ({values.shape[0]},), got {tuple(group.shape)}")
    _, inverse = torch.unique(group, return_inverse=True)
    n_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    sums = torch.zeros(n_groups, *values.shape[1:], dtype=values.dtype, device=values.device)
    sums = sums.index_add(0, inverse, values)
    counts = torch.bincount(inverse, minlength=n_groups).to(values.dtype)
    return (sums / counts.view(-1, *([1] * (values.ndim - 1))))[inverse]
