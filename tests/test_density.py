"""`models.AggregatePosterior` (ex-post density of the codes) and `train.sample(source="aggregate")`,
checked against closed forms and torch's distributions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from facelib.models import AggregatePosterior, build_model
from facelib.train import sample


def _codes(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + 0.5 * np.eye(3)
    mean = np.array([1.0, -2.0, 0.5])
    return rng.multivariate_normal(mean, cov, size=n), mean, cov


def test_the_gaussian_is_the_codes_moments_and_its_kl_to_the_prior_is_the_closed_form():
    z, _, _ = _codes()
    fitted = AggregatePosterior.fit(z, n_components=3)
    np.testing.assert_allclose(fitted.mean, z.mean(0), atol=1e-12)
    np.testing.assert_allclose(fitted.cov, np.cov(z, rowvar=False), atol=1e-12)
    want = kl_divergence(MultivariateNormal(torch.tensor(fitted.mean), torch.tensor(fitted.cov)),
                         MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)))
    mismatch = fitted.prior_mismatch()
    assert mismatch["kl_to_prior"] == pytest.approx(float(want), rel=1e-9)
    assert mismatch["mean_spread"] == pytest.approx(float(np.sqrt(np.diag(fitted.cov)).mean()))
    prior = AggregatePosterior.fit(np.random.default_rng(1).standard_normal((20000, 4)), n_components=2)
    assert prior.prior_mismatch()["kl_to_prior"] < 0.01  # codes that are the prior: no mismatch
    assert prior.prior_mismatch()["mean_spread"] == pytest.approx(1.0, abs=0.02)


def test_the_mixture_finds_separated_clusters_and_samples_from_them():
    rng = np.random.default_rng(0)
    centres = np.array([[-6.0, 0.0], [6.0, 0.0]])
    z = np.concatenate([c + 0.5 * rng.standard_normal((3000, 2)) for c in centres])
    fitted = AggregatePosterior.fit(z, n_components=2, seed=0)
    np.testing.assert_allclose(np.sort(fitted.means[:, 0]), [-6.0, 6.0], atol=0.05)
    np.testing.assert_allclose(fitted.weights, [0.5, 0.5], atol=0.01)
    draws = fitted.sample(4000, seed=3)
    assert np.array_equal(draws, fitted.sample(4000, seed=3)) and not np.array_equal(draws, fitted.sample(4000, seed=4))
    # the mixture puts almost nothing between the clusters, where the single Gaussian puts its centre
    assert (np.abs(draws[:, 0]) < 3).mean() < 0.01
    assert (np.abs(fitted.sample(4000, seed=3, density="gaussian")[:, 0]) < 3).mean() > 0.3
    with pytest.raises(ValueError, match="density must be"):
        fitted.sample(3, density="kde")


def test_round_trip_through_json_and_damaged_entries_are_refused():
    fitted = AggregatePosterior.fit(_codes(500)[0], n_components=4, reference="toy")
    back = AggregatePosterior.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_allclose(back.cov, fitted.cov, atol=1e-6)
    np.testing.assert_allclose(back.sample(5, seed=1), fitted.sample(5, seed=1), atol=1e-4)
    assert back.reference == "toy" and back.n_codes == 500
    broken = fitted.to_dict()
    broken["mixture"]["variances"][0][0] = -1.0
    with pytest.raises(ValueError, match="variances must be > 0"):
        AggregatePosterior.from_dict(broken)
    with pytest.raises(ValueError, match="not a stored density"):
        AggregatePosterior.from_dict({"gaussian": {}})
    with pytest.raises(ValueError, match="n >= 2 d"):
        AggregatePosterior.fit(np.zeros((3, 4)))


def test_sample_from_the_aggregate_decodes_the_densitys_draws():
    torch.manual_seed(0)
    model = build_model("vae", image_size=16, latent_dim=3).eval()
    with pytest.raises(ValueError, match="source='aggregate'.*has none"):
        sample(model, 4, source="aggregate")
    model.aggregate_posterior = AggregatePosterior.fit(_codes(600)[0], n_components=2)
    got = sample(model, 4, seed=7, source="aggregate", density="gaussian", device="cpu")
    z = torch.as_tensor(model.aggregate_posterior.sample(4, seed=7, density="gaussian"), dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(got, model.decode(z))
    assert not torch.equal(got, sample(model, 4, seed=7, device="cpu"))  # the prior's draws differ
    with pytest.raises(ValueError, match="source must be"):
        sample(model, 4, source="posterior")
