"""facelib.models.activity: counting active latents against a hand-checked case."""

import numpy as np
import pytest
import torch

from facelib.models import ACTIVE_KL_NATS, active_latents, build_model, count_active


def test_threshold_is_strict_and_a_parameter():
    kl = np.array([0.0, 0.05, ACTIVE_KL_NATS, 0.11, 3.0])
    assert active_latents(kl).tolist() == [3, 4]  # exactly at the threshold is not active
    assert count_active(kl) == 2
    assert count_active(kl, threshold=0.01) == 4
    assert count_active(torch.tensor(kl)) == 2


def test_counts_a_models_latents_through_kl_per_dim():
    torch.manual_seed(0)
    m = build_model("vae", image_size=32, channels=1, latent_dim=3, hidden_channels=4, hidden_dim=8).eval()
    x = torch.rand(4, 1, 32, 32)
    kl = m.kl_per_dim(x)
    assert count_active(kl) == int((kl > ACTIVE_KL_NATS).sum())


@pytest.mark.parametrize("bad, match", [
    (np.ones((2, 3)), "one KL value per latent"),
    (np.array([0.2, np.nan]), "finite and >= 0"),
    (np.array([0.2, -1.0]), "finite and >= 0"),
])
def test_bad_kl_is_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        count_active(bad)


def test_bad_threshold_is_refused():
    with pytest.raises(ValueError, match="threshold must be"):
        count_active([1.0], threshold=-1)
