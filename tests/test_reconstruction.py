"""Reconstruction metrics against references: closed forms for MSE / PSNR, SSIM's known cases,
and PCA against an SVD computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelib.metrics import PCAReconstructor, reconstruction_metrics


def _images(n=12, c=1, side=16, seed=0):
    return torch.randint(0, 256, (n, c, side, side), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_mse_and_psnr_match_their_closed_forms():
    x = _images(c=3)
    noise = torch.full(x.shape, 0.05)
    recon = lambda imgs: (imgs.float() / 255 + noise[: len(imgs)]).clamp(0, 1)  # noqa: E731
    got = reconstruction_metrics(recon, x, batch_size=5)
    xf = x.double() / 255
    err = (recon(x).double() - xf) ** 2
    assert got["mse"] == pytest.approx(float(err.mean()), rel=1e-6)  # the reconstruction is float32
    per_image = err.flatten(1).mean(1)
    assert got["psnr"] == pytest.approx(float((10 * torch.log10(1 / per_image)).mean()), rel=1e-6)


def test_ssim_is_one_for_a_perfect_reconstruction_and_drops_with_noise():
    x = _images(side=32)
    perfect = reconstruction_metrics(lambda imgs: imgs.float() / 255, x)
    assert perfect["mse"] == 0 and perfect["ssim"] == pytest.approx(1.0) and math.isinf(perfect["psnr"])
    flat = reconstruction_metrics(lambda imgs: torch.full(imgs.shape, 0.5), x)
    assert flat["ssim"] < 0.05  # a constant image shares no structure with noise images


def test_a_reconstructor_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        reconstruction_metrics(lambda imgs: torch.zeros(len(imgs), 1, 8, 8), _images())


def test_pca_reconstruction_is_the_projection_on_the_top_k_components():
    train, test = _images(n=60, seed=1), _images(n=10, seed=2)
    pca = PCAReconstructor(5).fit(train)
    xtr = train.double().reshape(60, -1).numpy() / 255
    mean = xtr.mean(0)
    _, _, vt = np.linalg.svd(xtr - mean, full_matrices=False)
    basis = vt[:5]
    xte = test.double().reshape(10, -1).numpy() / 255
    want = (xte - mean) @ basis.T @ basis + mean
    assert np.allclose(pca(test).reshape(10, -1).numpy(), want, atol=1e-5)
    # more components never reconstruct the training images worse
    assert (reconstruction_metrics(PCAReconstructor(20).fit(train), train)["mse"]
            < reconstruction_metrics(pca, train)["mse"])
    with pytest.raises(ValueError, match="more than 60"):
        PCAReconstructor(60).fit(train)
