"""Reconstruction metrics against references: closed forms for MSE / PSNR, SSIM's known cases,
and PCA against an SVD computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from facelib.metrics import PCAReconstructor, grid_prominence, high_frequency_energy, reconstruction_metrics
from facelib.models.resnet import _doubling


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


def _bins_beyond(side: int, cutoff: float) -> float:
    """The share of an image's non-constant frequency bins beyond `cutoff` cycles per pixel."""
    f = np.fft.fftfreq(side)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    return float((radius > cutoff).sum() / (side * side - 1))


def test_high_frequency_energy_of_white_noise_is_the_share_of_frequency_bins_beyond_the_cutoff():
    noise = torch.from_numpy(np.random.default_rng(0).normal(0.5, 0.1, (400, 1, 32, 32)))
    for cutoff in (0.1, 0.25, 0.4):
        assert high_frequency_energy(noise, cutoff) == pytest.approx(_bins_beyond(32, cutoff), abs=0.01)


def test_high_frequency_energy_of_gratings_and_a_checkerboard():
    i, j = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    board = ((i + j) % 2).astype(np.float64)  # all its power at (0.5, 0.5)
    slow = 0.5 + 0.4 * np.cos(2 * np.pi * j / 16)  # 1/16 cycle per pixel
    fast = 0.5 + 0.4 * np.cos(2 * np.pi * 3 * j / 8)  # 3/8 cycle per pixel
    as_batch = lambda a: torch.from_numpy(np.stack([a, a, a])[None])  # noqa: E731
    assert high_frequency_energy(as_batch(board)) == pytest.approx(1.0)
    assert high_frequency_energy(as_batch(slow)) == pytest.approx(0.0, abs=1e-12)
    assert high_frequency_energy(as_batch(fast)) == pytest.approx(1.0)
    assert high_frequency_energy(as_batch(fast), cutoff=0.4) == pytest.approx(0.0, abs=1e-12)


def test_high_frequency_energy_falls_with_blur_and_reads_uint8():
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (50, 1, 32, 32), dtype=np.uint8)
    blurred = torch.nn.functional.avg_pool2d(torch.from_numpy(noise).double() / 255, 3, stride=1, padding=1)
    sharp = high_frequency_energy(torch.from_numpy(noise))
    assert sharp == pytest.approx(_bins_beyond(32, 0.25), abs=0.02)
    assert high_frequency_energy(blurred) < 0.5 * sharp


@pytest.mark.parametrize("images, cutoff, said", [
    (torch.zeros(2, 1, 8, 8), 0.25, "flat"),
    (torch.zeros(0, 1, 8, 8), 0.25, "non-empty"),
    (torch.zeros(8, 8), 0.25, "N x C x H x W"),
    (torch.rand(2, 1, 8, 8), 0.0, "cutoff"),
    (torch.rand(2, 1, 8, 8), True, "cutoff"),
])
def test_high_frequency_energy_refuses_what_it_cannot_measure(images, cutoff, said):
    with pytest.raises(ValueError, match=said):
        high_frequency_energy(images, cutoff)


def test_grid_prominence_is_one_for_noise_and_peaks_with_a_checkerboard():
    rng = np.random.default_rng(2)
    noise = torch.from_numpy(rng.normal(0.5, 0.1, (400, 1, 32, 32)))
    assert grid_prominence(noise) == pytest.approx(1.0, abs=0.1)  # every bin's expected power is the same
    i, j = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    board = torch.from_numpy(((i + j) % 2 - 0.5) * 0.05)  # the 2-pixel grid, (0.5, 0.5) cycles per pixel
    assert grid_prominence(noise + board) > 3
    assert grid_prominence(torch.from_numpy(rng.integers(0, 256, (50, 3, 16, 16), dtype=np.uint8))) < 2


def test_a_transposed_conv_paints_a_grid_that_a_resize_conv_does_not():
    """The stride-2 layers of the resnet decoder on smooth inputs: the transposed conv's output
    peaks at the grid frequencies (Odena et al. 2016); nearest resizing then a conv does not."""
    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.randn(64, 8, 4, 4), size=16, mode="bilinear")
    with torch.no_grad():
        gridded = torch.sigmoid(nn.Sequential(*_doubling(8, 3, "transpose"))(smooth))
        resized = torch.sigmoid(nn.Sequential(*_doubling(8, 3, "nearest"))(smooth))
    assert grid_prominence(gridded) > 1.1 > grid_prominence(resized)  # untrained: 1.2-1.3 against 0.7
    with pytest.raises(ValueError, match="at least 8 x 8"):
        grid_prominence(torch.rand(2, 1, 4, 4))
