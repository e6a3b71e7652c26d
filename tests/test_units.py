"""facelib.models.units: the 8-bit scale against known answers (uniform noise, scipy's normal)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from facelib.models import build_model, units

D = 32 * 32


def test_a_uniform_density_on_0_1_is_exactly_8_bits_per_dim():
    # log p = 0 everywhere on [0, 1]: every one of the 256 levels has probability 1/256
    nll = units.nll_8bit(0.0, D, "gaussian")
    assert nll == pytest.approx(D * math.log(256))
    assert units.bits_per_dim(-nll, D) == pytest.approx(8.0, abs=1e-12)


def test_a_uniform_discrete_model_is_8_bits_per_dim_for_any_size():
    for n in (1, 3, 64 * 64 * 3):
        log_p = n * math.log(1 / 256)  # log P of n independent uniform 8-bit levels
        assert units.bits_per_dim(log_p, n) == pytest.approx(8.0, abs=1e-12)


def test_gaussian_decoder_matches_scipy_density_and_discretised_likelihood():
    """A decoder returning a known mean: its bits/dim equal scipy's log density minus D log 256
    exactly, and the discretised likelihood (normal CDF over each level's 1/256 bin) to 0.02."""
    torch.manual_seed(0)
    m = build_model("vae", image_size=32, channels=1, latent_dim=2, hidden_channels=4, hidden_dim=8,
                    likelihood="gaussian", gaussian_scale=0.05)
    rng = np.random.default_rng(0)
    mean = rng.uniform(0.2, 0.8, size=(1, 1, 32, 32))
    levels = np.clip(np.round(255 * (mean + rng.normal(0, 0.05, size=mean.shape))), 0, 255)
    x = levels / 255
    logits = torch.logit(torch.tensor(mean, dtype=torch.float64)).float()
    nll = float(m.recon_nll(logits, torch.tensor(x, dtype=torch.float32)))

    log_density = stats.norm.logpdf(x, loc=mean, scale=0.05).sum()
    assert nll == pytest.approx(-log_density + D * math.log(256), rel=1e-5)
    bpd = units.bits_per_dim(-nll, D)
    assert 0 < bpd < 8

    # the 8-bit probability of each level's bin [k/256, (k+1)/256) under the same normal
    lo, hi = levels / 256, (levels + 1) / 256
    p_bin = stats.norm.cdf(hi, mean, 0.05) - stats.norm.cdf(lo, mean, 0.05)
    bpd_discrete = -np.log2(p_bin).sum() / D
    assert bpd == pytest.approx(bpd_discrete, abs=0.02)


def test_bernoulli_is_left_on_its_own_scale_and_says_so():
    assert units.nll_8bit(123.0, D, "bernoulli") == 123.0
    assert "not a likelihood of the 8-bit data" in units.scale_note("bernoulli")
    assert "8-bit" in units.scale_note("gaussian")


def test_bad_input_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        units.nll_8bit(1.0, D, "poisson")
    with pytest.raises(ValueError, match="n_dims must be a positive int"):
        units.bits_per_dim(1.0, 0)
    with pytest.raises(ValueError, match="n_dims must be a positive int"):
        units.nll_8bit(1.0, 3.5, "gaussian")
