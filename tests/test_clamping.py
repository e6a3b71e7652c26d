"""ModVAE clamping measures (facelib.metrics.clamping) against statsmodels' one-way ANOVA and
hand-built encoders whose blocks are known to move or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
import torch

from facelib.data import FaceDataset
from facelib.metrics import block_spread, identity_spread, latent_blocks, pooled_within_variance
from facelib.models import build_model


def test_pooled_within_variance_is_the_anova_residual_mean_square():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 7, size=60)
    x = rng.normal(size=(60, 3)) + groups[:, None] * np.array([1.0, 0.0, -2.0])
    ours = pooled_within_variance(x, groups)
    for j in range(3):
        frame = pd.DataFrame({"y": x[:, j], "g": groups})
        fit = smf.ols("y ~ C(g)", data=frame).fit()
        assert ours[j] == pytest.approx(fit.mse_resid, rel=1e-10)
    with pytest.raises(ValueError, match="no within-group degrees of freedom"):
        pooled_within_variance(x[:3], np.arange(3))


class _Encoder(torch.nn.Module):
    """A stand-in model: the posterior mean is a fixed function of the image's pixels, so which
    block moves with which input is known; `block_slices` as a ModVAE has them."""

    name = "stand-in"

    def __init__(self):
        super().__init__()
        self.block_slices = {"identity": slice(0, 2), "other": slice(2, 4)}
        self.latent_dim = 4
        self.w = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        flat = x.flatten(1)
        person = flat[:, :8].mean(1, keepdim=True) * 10  # the "who" pixels
        nuisance = flat[:, 8:].mean(1, keepdim=True) * 10  # everything else
        mu = torch.cat([person, 2 * person, nuisance, -nuisance], 1)
        return mu, torch.zeros_like(mu)


def _faces(n_people=6, per_person=5, seed=0):
    rng = np.random.default_rng(seed)
    imgs, ids = [], []
    for p in range(n_people):
        who = rng.integers(0, 255)
        for _ in range(per_person):
            img = np.zeros((1, 4, 4))
            img.flat[:8] = who
            img.flat[8:] = rng.integers(0, 255)
            imgs.append(img)
            ids.append(p)
    return FaceDataset(images=torch.as_tensor(np.stack(imgs), dtype=torch.uint8), identity=np.array(ids))


def test_identity_spread_sees_a_block_that_is_constant_per_person():
    faces = _faces()
    table = identity_spread(_Encoder(), faces).set_index("block")
    assert table.loc["identity", "within_share"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["other", "within_share"] > 0.5
    # total_sd is the ddof-1 std of the posterior means, within_sd the ANOVA root mean square
    mu = _Encoder().encode(faces.float_images())[0].numpy().astype(np.float64)
    assert table.loc["other", "total_sd"] == pytest.approx(mu[:, 2:].std(0, ddof=1).mean(), rel=1e-6)
    assert table.loc["other", "within_sd"] == pytest.approx(
        np.sqrt(pooled_within_variance(mu, faces.identity)[2:]).mean(), rel=1e-6)
    assert table.attrs == {"people": 6, "images": 30}


def test_identity_spread_ignores_people_with_too_few_images_and_refuses_too_few_people():
    faces = _faces(n_people=2, per_person=3)
    single = FaceDataset(images=faces.images[:4], identity=np.array([0, 0, 0, 1]))
    with pytest.raises(ValueError, match="at least 2 people with >= 2 images"):
        identity_spread(_Encoder(), single)
    assert identity_spread(_Encoder(), faces, min_images=3).attrs["people"] == 2


def test_block_spread_rows_are_batches_columns_blocks():
    faces = _faces(n_people=1, per_person=8)  # one person: only the nuisance pixels move
    table = block_spread(_Encoder(), {"nuisance": faces.images, "fixed": faces.images[:1].repeat(3, 1, 1, 1)})
    assert list(table.columns) == ["identity", "other"] and list(table.index) == ["nuisance", "fixed"]
    assert table.loc["nuisance", "identity"] == 0.0 and table.loc["nuisance", "other"] > 0
    assert (table.loc["fixed"] == 0).all()
    with pytest.raises(ValueError, match="at least 2"):
        block_spread(_Encoder(), {"one": faces.images[:1]})
    with pytest.raises(ValueError, match="batches is empty"):
        block_spread(_Encoder(), {})


def test_latent_blocks_of_a_modvae_and_of_a_model_without_blocks():
    modvae = build_model("modvae", image_size=32, channels=1, latent_dim=6, blocks={"identity": 2, "yaw": 1})
    assert latent_blocks(modvae) == {"identity": slice(0, 2), "yaw": slice(2, 3), "other": slice(3, 6)}
    assert latent_blocks(build_model("vae", image_size=32, channels=1, latent_dim=5)) == {"all": slice(0, 5)}
