"""VAE latents as a per-fold representation: a model trained on the training images only.

LFW's protocols let a representation learn from the training folds' images (View 2: the
other nine folds), never from the test fold. A checkpoint trained once on other images
("outside data") is one honest choice; `VAEEmbedding` is the other: a scikit-learn
transformer that trains a facelib model inside `fit`, so `protocols.evaluate(VAEEmbedding(...),
methods, protocols.View2(images, table))` retrains it for every test fold, exactly as
it refits Eigenfaces. With ``labels="identities"`` and ``model="modvae"`` it trains on
identity groups (image-unrestricted: the training folds' names are used).

``mirror=True`` adds each training image's left-right mirror image (faces are nearly
symmetric, so this doubles the data for free) and embeds an image as the mean of its own
and its mirror image's latent means, so the embedding is exactly flip-invariant.

`PatchVAEEmbedding` is the local variant: one small VAE learns the patches of a regular grid
over the face (every position shares it, as an LBP or SIFT descriptor is shared), and an
image is the concatenation of its patches' latent means. A global VAE's few latents keep the
face's coarse layout (pose, light), which is what verification must ignore; local latents
keep the eyes', nose's and mouth's shape. Measured LFW figures of both are in
benchmarks/results/ (`python -m facelib lfw select` / `view2`), not here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from facelib.data import FaceDataset
from facelib.data.patches import downsample, grid_patches, training_patches
from facelib.data.pixels import image_batch
from facelib.experiment import ExperimentSpec, ModelSpec, run
from facelib.train.inference import check_refine_steps, representation

from .baselines import int_seed

__all__ = ["VAEEmbedding", "PatchVAEEmbedding", "grid_patches", "training_patches", "downsample"]

_LABELS = ("none", "identities")


def _images(estimator: BaseEstimator, X: Any, fitting: bool) -> torch.Tensor:
    """uint8 images N x C x H x W: checked first as scikit-learn checks input (dense, finite,
    non-empty; its messages), then as images; `n_features_in_` counts their pixels (C x H x W),
    and transform refuses images of another shape than fit's."""
    if not isinstance(X, torch.Tensor) and not hasattr(X, "images"):
        X = check_array(X, allow_nd=True, dtype=None, input_name="X")
    x = image_batch(X, f"{type(estimator).__name__}'s images", uint8=True)
    pixels = int(np.prod(x.shape[1:]))
    if fitting:
        estimator.n_features_in_ = pixels
    elif pixels != getattr(estimator, "n_features_in_", pixels):  # from_model: no images seen
        raise ValueError(f"X has {pixels} features (pixels {tuple(x.shape[1:])}), but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input: give images of fit's shape")
    return x


class VAEEmbedding(TransformerMixin, BaseEstimator):
    """Train a facelib model on the images given to `fit`; `transform` gives latent means.

    Args:
        model: registered model name ("vae", "beta-vae", "modvae", ...).
        latent_dim: latents of the model.
        epochs, batch_size, lr, device, precision: as in `facelib.train.TrainConfig`.
        random_state: seeds the initial weights and the training (`seed`: its older name).
        mirror: train on the mirror images too and average the two embeddings.
        likelihood, gaussian_scale: the decoder. Gaussian with std 0.05 by default, not the
            models' Bernoulli: a Bernoulli treats grey levels as probabilities of a binary
            pixel, which blurs faces; the Gaussian's std sets how much detail a latent must pay for.
        labels: "none" (unsupervised) or "identities" (fit needs y; ModVAE groups by person).
        latents: "all", or a ModVAE block name (e.g. "identity") to keep only that block.
        model_options: other model config fields (beta, lam, blocks, ...).
        refine_steps: gradient steps refining each image's posterior on that image before its
            mean is read (`facelib.train.refine_posterior`); 0: the encoder's posterior.
    """

    takes_images = True  # the protocols pass uint8 images, not flattened pixel rows

    def __init__(self, model: str = "beta-vae", latent_dim: int = 32, epochs: int = 20,
                 batch_size: int = 64, lr: float = 1e-3, mirror: bool = True, labels: str = "none",
                 latents: str = "all", model_options: dict | None = None, random_state: int | None = 0,
                 device: str = "auto", precision: str = "auto", likelihood: str = "gaussian",
                 gaussian_scale: float = 0.05, seed: int | None = None, refine_steps: int = 0):
        self.model = model
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.mirror = mirror
        self.labels = labels
        self.latents = latents
        self.model_options = model_options
        self.random_state = random_state
        self.seed = seed  # the older name of random_state
        self.device = device
        self.precision = precision
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale
        self.refine_steps = refine_steps

    def _check_params(self) -> None:
        if self.labels not in _LABELS:
            raise ValueError(f"labels must be one of {_LABELS}, got {self.labels!r}")
        if self.labels == "identities" and self.model != "modvae":
            raise ValueError("labels='identities' trains ModVAE identity groups; use model='modvae' "
                             "(the other models learn without labels: labels='none')")
        check_refine_steps(self.refine_steps)
        both = {"likelihood", "gaussian_scale"} & set(self.model_options or {})
        if both:
            raise ValueError(f"set {sorted(both)} as VAEEmbedding parameters, not in model_options")

    def fit(self, X: Any, y: Any = None) -> "VAEEmbedding":
        self._check_params()
        x = _images(self, X, fitting=True)
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
        seed = int_seed(self)
        spec = ExperimentSpec(
            model=ModelSpec(self.model, {"latent_dim": self.latent_dim, "likelihood": self.likelihood,
                                         "gaussian_scale": self.gaussian_scale, **(self.model_options or {})}),
            training={"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "seed": seed,
                      "device": self.device, "precision": self.precision, "val_fraction": 0.0, "progress": False})
        if self.latents != "all":
            blocks = spec.model.config_for(data).get("blocks")
            if not blocks or self.latents not in [*blocks, "other"]:
                raise ValueError(f"latents={self.latents!r} is not a block of this model; "
                                 f"choose 'all'{''.join(', ' + repr(k) for k in [*(blocks or {}), 'other'] if blocks)}")
        result = run(spec, dataset=data)
        self.model_ = result.model.eval()
        self.history_ = result.history
        return self

    def _embed(self, x: torch.Tensor) -> np.ndarray:
        """Latent means of uint8 images (N, d); the one step `PatchVAEEmbedding` replaces."""
        return representation(self.model_, refine_steps=self.refine_steps)(x)

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        x = _images(self, X, fitting=False)
        z = self._embed(x)
        if self.mirror:
            z = 0.5 * (z + self._embed(x.flip(-1)))
        if self.latents != "all":
            z = z[:, self.model_.block_slices[self.latents]]
        return np.asarray(z, dtype=np.float64)


class PatchVAEEmbedding(VAEEmbedding):
    """A VAE of local patches, shared over a grid; an image -> its patches' latent means.

    Args:
        patch, stride: window side and step in pixels (an even patch >= 8: the conv VAE's
            smallest input). 12 / 6 on 64 px faces gives 81 positions.
        latent_dim: latents per patch; the embedding has positions x latent_dim columns.
        max_patches: patches drawn (seeded, without replacement) from the training images
            (and their mirrors) to train on: all of them are ~100 per image.
        power: each latent mean m becomes sign(m) |m| ** power; 0.5 (signed square root, as
            for SIFT / Fisher vectors) damps large activations.
        gaussian_scale: the decoder's std, 0.02 rather than VAEEmbedding's 0.05: a patch's
            finer components carry less variance than the KL price of a latent at 0.05, and
            the VAE drops them.
        contrast: normalise each patch's brightness and contrast before the VAE sees it (for
            strongly varying light; on LFW it loses the brightness that also describes a face).
        scales: image sides (smaller than the images) at which the same patch VAE also reads
            each image, area-downsampled (an image pyramid): their latents are appended, so the
            embedding describes the face at coarser scales too (the VAE trains at full size).
        The rest as `VAEEmbedding` (model, epochs, mirror, decoder, ...).
    """

    def __init__(self, patch: int = 12, stride: int = 6, model: str = "vae", latent_dim: int = 12,
                 epochs: int = 4, max_patches: int = 200_000, power: float = 0.5,
                 batch_size: int = 256, lr: float = 1e-3, mirror: bool = True,
                 model_options: dict | None = None, random_state: int | None = 0, device: str = "auto",
                 precision: str = "auto", likelihood: str = "gaussian", gaussian_scale: float = 0.02,
                 contrast: bool = False, scales: tuple[int, ...] = (), seed: int | None = None):
        super().__init__(model=model, latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr,
                         mirror=mirror, labels="none", latents="all", model_options=model_options,
                         random_state=random_state, device=device, precision=precision, likelihood=likelihood,
                         gaussian_scale=gaussian_scale, seed=seed)
        self.patch = patch
        self.stride = stride
        self.max_patches = max_patches
        self.power = power
        self.contrast = contrast
        self.scales = scales

    def _normalise(self, patches: torch.Tensor) -> torch.Tensor:
        """With `contrast`, each uint8 patch (..., C, p, p) rescaled to mean 128 and standard
        deviation 40 (local contrast normalisation: the latents then describe shape rather than
        how brightly that part of the face is lit); otherwise the patches as they are."""
        if not self.contrast:
            return patches
        f = patches.float()
        dims = (-3, -2, -1)
        f = (f - f.mean(dims, keepdim=True)) / (f.std(dims, keepdim=True) + 4.0)
        return (128.0 + 40.0 * f).round().clamp(0, 255).to(torch.uint8)

    def _check_patch_params(self, x: torch.Tensor) -> None:
        if self.patch < 8 or self.patch % 2:
            raise ValueError(f"patch must be an even number >= 8 (the conv VAE's smallest input), got {self.patch}")
        if self.max_patches < 1:
            raise ValueError(f"max_patches must be >= 1, got {self.max_patches}")
        if not self.power > 0:
            raise ValueError(f"power must be > 0 (1 keeps the latent means as they are), got {self.power}")
        grid_patches(x[:1], self.patch, self.stride)  # the size check, with its message
        self._check_scales(x)

    def _check_scales(self, x: torch.Tensor) -> None:
        side = min(int(x.shape[-2]), int(x.shape[-1]))
        bad = [s for s in self.scales if not (self.patch <= int(s) < side)]
        if bad:
            raise ValueError(f"scales {bad} must be image sides from patch ({self.patch}) up to below the "
                             f"images' {side} px: the pyramid reads the same faces smaller")

    def fit(self, X: Any, y: Any = None) -> "PatchVAEEmbedding":
        x = _images(self, X, fitting=True)
        self._check_patch_params(x)
        self.n_positions_ = int(grid_patches(x[:1], self.patch, self.stride).shape[1])
        seed = int_seed(self)
        patches = training_patches(x, self.patch, self.stride, self.max_patches, self.mirror, seed)
        self.n_train_patches_ = int(patches.shape[0])
        inner = VAEEmbedding(**{k: getattr(self, k) for k in VAEEmbedding._get_param_names()})
        inner.set_params(mirror=False, random_state=seed, seed=None)  # the mirror images' patches are already in
        inner.fit(self._normalise(patches).contiguous())
        self.model_, self.history_ = inner.model_, inner.history_
        return self

    @classmethod
    def from_model(cls, model, **params) -> "PatchVAEEmbedding":
        """A fitted embedding around an already trained patch VAE (e.g. a zoo model); `params`
        as the constructor's (patch, stride, power, mirror, ...), the latents from the model."""
        patch = int(params.get("patch", 12))
        if int(model.config.image_size) != patch:
            raise ValueError(f"the model was trained on {model.config.image_size} px patches, not patch={patch}; "
                             "pass the patch size it was trained with")
        emb = cls(latent_dim=int(model.config.latent_dim), **params)
        emb.model_ = model.eval()
        emb.history_ = None
        return emb

    def _embed(self, x: torch.Tensor) -> np.ndarray:
        self._check_scales(x)
        return np.concatenate([self._embed_grid(x)] + [self._embed_grid(downsample(x, int(s))) for s in self.scales],
                              axis=1)

    def _embed_grid(self, x: torch.Tensor) -> np.ndarray:
        patches = self._normalise(grid_patches(x, self.patch, self.stride))
        n, pos = patches.shape[:2]
        z = super()._embed(patches.reshape(n * pos, *patches.shape[2:]).contiguous())
        return z.reshape(n, pos * z.shape[1])

    def transform(self, X: Any) -> np.ndarray:
        z = super().transform(X)  # the mirror average of `_embed`
        return np.sign(z) * np.abs(z) ** self.power if self.power != 1 else z
