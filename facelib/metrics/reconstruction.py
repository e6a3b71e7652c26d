"""How well a model reconstructs faces it never trained on, beside the linear baseline.

Like the disentanglement metrics these take a function, here a *reconstructor*: uint8 images
N x C x H x W -> float reconstructions in [0, 1] of the same shape (`facelib.train.reconstruct`
of a model with `functools.partial`, or `PCAReconstructor(k).fit(train_images)`). The per-pixel
MSE is on the [0, 1] scale; PSNR and SSIM come from scikit-image
(`skimage.metrics.peak_signal_noise_ratio` / `structural_similarity`, data range 1, the
standard 7x7 window; colour images per channel), averaged over images.
Two more defects of decoded faces are measured on their spectra: blur by `high_frequency_energy`
(the share of each image's power above a spatial frequency, beside the same share for real faces),
and the checkerboard a decoder can paint by `grid_prominence` (a peak of the mean spectrum at the
frequencies of a stride-2 upsampling pattern).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.decomposition import PCA

from facelib.data.pixels import image_batch, to_float

__all__ = ["reconstruction_metrics", "PCAReconstructor", "high_frequency_energy", "grid_prominence", "GRID_FREQUENCIES"]

Reconstructor = Callable[[torch.Tensor], torch.Tensor]


def reconstruction_metrics(reconstruct: Reconstructor, images, batch_size: int = 512) -> dict[str, float]:
    """MSE (per pixel, [0, 1] scale; lower is better), PSNR (dB, mean over images; higher is
    better) and SSIM (mean over images; higher is better) of `reconstruct` on `images`."""
    images = image_batch(images)
    if images.shape[0] == 0:
        raise ValueError("reconstruction_metrics needs at least one image")
    sq, psnr, ssim = 0.0, [], []
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start:start + batch_size]
        x = to_float(chunk).numpy().astype(np.float64)
        r = reconstruct(chunk)
        r = (r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)).astype(np.float64)
        if r.shape != x.shape:
            raise ValueError(f"the reconstructor returned shape {r.shape} for images of shape {x.shape}; it must "
                             "return float images in [0, 1] of the input's shape")
        r = np.clip(r, 0.0, 1.0)
        sq += float(((r - x) ** 2).sum())
        for xi, ri in zip(x, r):
            psnr.append(peak_signal_noise_ratio(xi, ri, data_range=1.0))
            ssim.append(structural_similarity(xi, ri, data_range=1.0, channel_axis=0))
    n_values = images.numel()
    return {"mse": sq / n_values, "psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}


class PCAReconstructor:
    """PCA with `k` components (scikit-learn's) fitted on training images, as a reconstructor:
    the best linear `k`-dimensional code in squared error, the baseline a VAE of `k` latents
    has to beat on held-out faces."""

    def __init__(self, k: int, random_state: int = 0):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k, self.random_state = k, random_state

    def fit(self, images) -> "PCAReconstructor":
        images = image_batch(images)
        if images.shape[0] <= self.k:
            raise ValueError(f"PCA with k={self.k} needs more than {self.k} training images, got {images.shape[0]}")
        self.shape_ = tuple(images.shape[1:])
        x = to_float(images).reshape(images.shape[0], -1).numpy()
        self.pca_ = PCA(self.k, random_state=self.random_state).fit(x)  # scikit-learn picks the solver
        return self

    def __call__(self, images) -> torch.Tensor:
        images = image_batch(images)
        if tuple(images.shape[1:]) != self.shape_:
            raise ValueError(f"PCA was fitted on images {self.shape_}, got {tuple(images.shape[1:])}")
        x = to_float(images).reshape(images.shape[0], -1).numpy()
        r = self.pca_.inverse_transform(self.pca_.transform(x))
        return torch.from_numpy(r.astype(np.float32)).view(images.shape[0], *self.shape_)


def _centred_power(images, what: str) -> np.ndarray:
    """The power spectra (float64, N x C x H x W) of a batch, each channel's mean removed first."""
    x = image_batch(images, what).detach().cpu()
    if x.shape[0] == 0:
        raise ValueError(f"{what} needs a non-empty N x C x H x W batch, got shape {tuple(x.shape)}")
    x = (x.double() / 255 if x.dtype == torch.uint8 else x.double()).numpy()
    return np.abs(np.fft.fft2(x - x.mean(axis=(2, 3), keepdims=True))) ** 2


def high_frequency_energy(images, cutoff: float = 0.25) -> float:
    """The mean over images of the share of spectral power above `cutoff` cycles per pixel.

    Each channel's mean is removed, the 2-D power spectrum taken (`numpy.fft.fft2`), and the
    power at radial frequencies sqrt(fx^2 + fy^2) > `cutoff` (Nyquist is 0.5) divided by the
    total; flat channels carry no power and are skipped. White noise gives the share of
    frequency bins beyond the cutoff, a pixel checkerboard 1.0, a smooth gradient close to 0.
    `images`: uint8 N x C x H x W, or floats in [0, 1].
    """
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not 0.0 < cutoff < 0.5 * 2 ** 0.5:
        raise ValueError(f"cutoff must be a frequency in cycles per pixel between 0 and 0.707, got {cutoff!r}")
    power = _centred_power(images, "high_frequency_energy")
    fy = np.fft.fftfreq(power.shape[2])[:, None]
    fx = np.fft.fftfreq(power.shape[3])[None, :]
    high = np.sqrt(fx ** 2 + fy ** 2) > cutoff
    total = power.sum(axis=(2, 3))
    share = (power * high).sum(axis=(2, 3))[total > 0] / total[total > 0]
    if share.size == 0:
        raise ValueError("high_frequency_energy: every image is flat (no power to share)")
    return float(share.mean())


#: The frequencies (cycles per pixel) where the checkerboard of stride-2 upsampling shows: periods
#: of 2 and 4 pixels along both diagonals (real faces carry JPEG's block peaks on the axes instead).
GRID_FREQUENCIES = ((0.5, 0.5), (0.25, 0.25), (0.25, -0.25))


def grid_prominence(images) -> float:
    """How far the mean power spectrum of `images` peaks at a stride-2 decoder's grid frequencies
    (`GRID_FREQUENCIES`): the power at each over the mean of its 8 neighbours, averaged. About 1
    without a periodic pattern (white noise), below 1 for smooth images (LFW faces: 0.9), well
    above 1 with a checkerboard (the LFW models that upsampled by transposed convolutions: 3.6)."""
    power = _centred_power(images, "grid_prominence").mean(axis=(0, 1))
    h, w = power.shape
    if min(h, w) < 8:
        raise ValueError(f"grid_prominence needs images of at least 8 x 8 px, got {h} x {w}")
    ratios = []
    for fy, fx in GRID_FREQUENCIES:
        i, j = int(round(fy * h)) % h, int(round(fx * w)) % w
        around = [power[(i + a) % h, (j + b) % w] for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)]
        ratios.append(power[i, j] / np.mean(around))
    return float(np.mean(ratios))
