"""VAE latents as a per-fold representation: a model trained on the training images only.

LFW's protocols let a representation learn from the training folds' images (View 2: the
other nine folds), never from the test fold. A checkpoint trained once on other images
("outside data") is one honest choice; `VAEEmbedding` is the other: a scikit-learn
transformer that trains a facelib model inside `fit`, so `protocols.view2(images, table,
methods, representation=VAEEmbedding(...))` retrains it for every test fold, exactly as
it refits Eigenfaces. With ``labels="identities"`` and ``model="modvae"`` it trains on
identity groups (image-unrestricted: the training folds' names are used).

``mirror=True`` adds each training image's left-right mirror image (faces are nearly
symmetric, so this doubles the data for free) and embeds an image as the mean of its own
and its mirror image's latent means, so the embedding is exactly flip-invariant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["VAEEmbedding"]

_LABELS = ("none", "identities")


def _images(X: Any) -> torch.Tensor:
    """uint8 N x C x H x W tensor (what the loaders give), with a clear error otherwise."""
    x = torch.as_tensor(np.ascontiguousarray(X)) if not isinstance(X, torch.Tensor) else X
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"VAEEmbedding takes uint8 images N x C x H x W (C = 1 or 3), as facelib's loaders give "
            f"(dataset.images), got {x.dtype} of shape {tuple(x.shape)}; pass images, not flattened pixels"
        )
    return x


class VAEEmbedding(TransformerMixin, BaseEstimator):
    """Train a facelib model on the images given to `fit`; `transform` gives latent means.

    Args:
        model: registered model name ("vae", "beta-vae", "modvae", ...).
        latent_dim: latents of the model.
        epochs, batch_size, lr, seed, device, precision: as in `facelib.train.TrainConfig`.
        mirror: train on the mirror images too and average the two embeddings.
        likelihood, gaussian_scale: the decoder. Gaussian with std 0.05 by default, not the
            models' Bernoulli: on LFW fold 1 (32 px, PLDA) it scored 74.7 % against 71.0 %.
        labels: "none" (unsupervised) or "identities" (fit needs y; ModVAE groups by person).
        latents: "all", or a ModVAE block name (e.g. "identity") to keep only that block.
        model_options: other model config fields (beta, lam, blocks, ...).
    """

    def __init__(self, model: str = "beta-vae", latent_dim: int = 32, epochs: int = 20,
                 batch_size: int = 64, lr: float = 1e-3, mirror: bool = True, labels: str = "none",
                 latents: str = "all", model_options: dict | None = None, seed: int = 0,
                 device: str = "auto", precision: str = "auto", likelihood: str = "gaussian",
                 gaussian_scale: float = 0.05):
        self.model = model
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.mirror = mirror
        self.labels = labels
        self.latents = latents
        self.model_options = model_options
        self.seed = seed
        self.device = device
        self.precision = precision
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale

    def _check_params(self) -> None:
        if self.labels not in _LABELS:
            raise ValueError(f"labels must be one of {_LABELS}, got {self.labels!r}")
        if self.labels == "identities" and self.model != "modvae":
            raise ValueError("labels='identities' trains ModVAE identity groups; use model='modvae' "
                             "(the other models learn without labels: labels='none')")
        both = {"likelihood", "gaussian_scale"} & set(self.model_options or {})
        if both:
            raise ValueError(f"set {sorted(both)} as VAEEmbedding parameters, not in model_options")

    def fit(self, X: Any, y: Any = None) -> "VAEEmbedding":
        from facelib.data import FaceDataset
        from facelib.models import build_model
        from facelib.train import TrainConfig, fit

        self._check_params()
        x = _images(X)
        n = x.shape[0]
        if self.labels == "identities":
            if y is None:
                raise ValueError("VAEEmbedding(labels='identities') needs the identity of every training "
                                 "image: fit(images, identity)")
            identity = np.asarray(y, dtype=np.int64)
            if identity.shape != (n,):
                raise ValueError(f"identity must have shape ({n},), got {identity.shape}")
        else:
            identity = np.full(n, -1, dtype=np.int64)
        if self.mirror:
            x = torch.cat([x, x.flip(-1)])
            identity = np.r_[identity, identity]
        data = FaceDataset(images=x, identity=identity, name="vae-embedding-train")
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
            torch.manual_seed(self.seed)
            net = build_model(self.model, image_size=int(x.shape[-1]), channels=int(x.shape[1]),
                              latent_dim=self.latent_dim, likelihood=self.likelihood,
                              gaussian_scale=self.gaussian_scale, **(self.model_options or {}))
        if self.latents != "all":
            slices = getattr(net, "block_slices", {})
            if self.latents not in slices:
                raise ValueError(f"latents={self.latents!r} is not a block of this model; "
                                 f"choose 'all'{''.join(', ' + repr(k) for k in slices)}")
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                             device=self.device, precision=self.precision, val_fraction=0.0,
                             progress=False, out=None)
        result = fit(net, data, config)
        self.model_ = result.model.eval()
        self.history_ = result.history
        return self

    def transform(self, X: Any) -> np.ndarray:
        from facelib.train import representation

        check_is_fitted(self, "model_")
        x = _images(X)
        encode = representation(self.model_)
        z = encode(x)
        if self.mirror:
            z = 0.5 * (z + encode(x.flip(-1)))
        if self.latents != "all":
            z = z[:, self.model_.block_slices[self.latents]]
        return np.asarray(z, dtype=np.float64)
