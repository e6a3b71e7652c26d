"""Loss terms of facelib.models.losses against references (torch.distributions, closed forms,
brute-force loops, Monte Carlo)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from facelib.models import losses


def _posterior(b=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, d, generator=g, dtype=torch.float64)
    logvar = torch.randn(b, d, generator=g, dtype=torch.float64) * 0.7 - 0.5
    return mu, logvar


def test_kl_closed_form_matches_torch_distributions():
    mu, logvar = _posterior()
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(losses.kl_normal_std(mu, logvar), kl_divergence(q, p))


def test_kl_closed_form_matches_monte_carlo():
    mu, logvar = _posterior(b=3, d=3, seed=1)
    g = torch.Generator().manual_seed(2)
    n = 400_000
    eps = torch.randn(n, *mu.shape, generator=g, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_ratio = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z) - Normal(0.0, 1.0).log_prob(z)
    mc = log_ratio.mean(0)
    se = log_ratio.std(0) / math.sqrt(n)
    exact = losses.kl_normal_std(mu, logvar)
    assert torch.all((mc - exact).abs() < 5 * se + 1e-6), (mc, exact, se)


def test_log_normal_matches_torch():
    mu, logvar = _posterior()
    z = torch.randn_like(mu)
    torch.testing.assert_close(losses.log_normal(z, mu, logvar), Normal(mu, torch.exp(0.5 * logvar)).log_prob(z))
    torch.testing.assert_close(losses.log_standard_normal(z), Normal(0.0, 1.0).log_prob(z))


def test_bernoulli_nll_matches_bernoulli_log_prob():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 8, 8, generator=g) * 3
    x_bin = (torch.rand(4, 1, 8, 8, generator=g) > 0.5).float()
    ref = -Bernoulli(logits=logits).log_prob(x_bin).flatten(1).sum(1)
    torch.testing.assert_close(losses.bernoulli_nll(logits, x_bin), ref)
    # grey levels: the same formula x log p + (1 - x) log(1 - p)
    x = torch.rand(4, 1, 8, 8, generator=g)
    ref = -Bernoulli(logits=logits, validate_args=False).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(losses.bernoulli_nll(logits, x), ref)


def test_gaussian_nll_matches_normal_log_prob():
    g = torch.Generator().manual_seed(0)
    mean = torch.rand(3, 3, 4, 4, generator=g)
    x = torch.rand(3, 3, 4, 4, generator=g)
    for scale in (0.05, 0.3, 1.0):
        ref = -Normal(mean, scale).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(losses.gaussian_nll(mean, x, math.log(scale)), ref)


def _mws_brute_force(z, mu, logvar, n_data):
    """MWS estimates with explicit loops in float64 (Chen et al. 2018, eq. of Sec. 4)."""
    z, mu, logvar = (t.double().numpy() for t in (z, mu, logvar))
    m, d = z.shape
    sd = np.exp(0.5 * logvar)

    def dens(zv, j, k):
        return math.exp(-0.5 * ((zv - mu[j, k]) / sd[j, k]) ** 2) / (sd[j, k] * math.sqrt(2 * math.pi))

    out = {"mi": [], "tc": [], "dim_kl": []}
    for i in range(m):
        log_q_cond = sum(math.log(dens(z[i, k], i, k)) for k in range(d))
        log_qz = math.log(sum(math.prod(dens(z[i, k], j, k) for k in range(d)) for j in range(m)) / (n_data * m))
        log_prod = sum(math.log(sum(dens(z[i, k], j, k) for j in range(m)) / (n_data * m)) for k in range(d))
        log_p = sum(-0.5 * z[i, k] ** 2 - 0.5 * math.log(2 * math.pi) for k in range(d))
        out["mi"].append(log_q_cond - log_qz)
        out["tc"].append(log_qz - log_prod)
        out["dim_kl"].append(log_prod - log_p)
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


def test_tc_decomposition_matches_brute_force_mws():
    mu, logvar = _posterior(b=6, d=3, seed=3)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    got = losses.tc_decomposition(z, mu, logvar, dataset_size=1000)
    ref = _mws_brute_force(z, mu, logvar, 1000)
    for key in ("mi", "tc", "dim_kl"):
        torch.testing.assert_close(got[key], ref[key], rtol=1e-9, atol=1e-9)


def test_tc_terms_sum_to_the_one_sample_kl_and_average_to_the_closed_form():
    mu, logvar = _posterior(b=8, d=4, seed=4)
    q = Normal(mu, torch.exp(0.5 * logvar))
    # exact identity for every sample: mi + tc + dim_kl = log q(z|x) - log p(z)
    z = q.sample()
    parts = losses.tc_decomposition(z, mu, logvar, dataset_size=500)
    one_sample = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1)
    torch.testing.assert_close((parts["mi"] + parts["tc"] + parts["dim_kl"]).double(), one_sample,
                               rtol=1e-5, atol=1e-4)
    # so its average over z ~ q(z|x) is the closed-form KL (Monte Carlo, 5 standard errors)
    torch.manual_seed(5)
    sums = []
    for _ in range(2000):
        z = q.sample()
        p = losses.tc_decomposition(z, mu, logvar, dataset_size=500)
        sums.append(p["mi"] + p["tc"] + p["dim_kl"])
    sums = torch.stack(sums).double()
    exact = losses.kl_normal_std(mu, logvar).sum(1)
    se = sums.std(0) / math.sqrt(sums.shape[0])
    assert torch.all((sums.mean(0) - exact).abs() < 5 * se + 1e-3)


def test_tc_decomposition_needs_a_dataset_size():
    mu, logvar = _posterior()
    with pytest.raises(ValueError, match="dataset_size"):
        losses.tc_decomposition(mu, mu, logvar, dataset_size=None)


def test_permute_dims_shuffles_each_column_independently():
    z = torch.arange(200.0).view(50, 4)  # every value distinct
    g = torch.Generator().manual_seed(0)
    p = losses.permute_dims(z, generator=g)
    for k in range(4):  # each column keeps its values (a permutation) ...
        torch.testing.assert_close(p[:, k].sort().values, z[:, k])
    # ... but rows are mixed: few rows survive intact when columns are shuffled independently
    intact = (p[:, None, :] == z[None, :, :]).all(-1).any(1).float().mean()
    assert intact < 0.2
    assert not torch.equal(p[:, 0].argsort(), p[:, 1].argsort())


def test_capacity_schedule():
    assert losses.capacity(0, 25.0, 100) == 0.0
    assert losses.capacity(50, 25.0, 100) == pytest.approx(12.5)
    assert losses.capacity(100, 25.0, 100) == pytest.approx(25.0)
    assert losses.capacity(10_000, 25.0, 100) == pytest.approx(25.0)


def test_group_mean_matches_pandas_groupby():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(12, 3, generator=g, dtype=torch.float64)
    group = torch.tensor([7, 7, 2, 2, 2, 9, 7, 1, 1, 9, 9, 9])
    df = pd.DataFrame(values.numpy())
    ref = df.groupby(group.numpy()).transform("mean").to_numpy()
    np.testing.assert_allclose(losses.group_mean(values, group).numpy(), ref, rtol=1e-12)
