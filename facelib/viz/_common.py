"""Shared input handling for facelib.viz: images in, model calls on the model's own device."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from facelib.data.pixels import image_batch, to_float
from facelib.models.base import latent_dim
from facelib.train.inference import latent_spread
from facelib.utils import model_device

__all__ = ["as_float_images", "model_channels", "encode", "decode", "check_fits_model", "kl_per_dim", "UNITS",
           "check_units", "latent_scale", "unit_label"]


def as_float_images(images: Any, what: str = "images") -> torch.Tensor:
    """Float images N x C x H x W in [0, 1] on the CPU from uint8/float tensors, arrays or a FaceDataset.

    A single image C x H x W gets a batch axis; B x K x C x H x W (a traversal) is flattened;
    a list of image tensors is stacked. The checks and the conversion are `facelib.data.pixels`'.
    """
    if hasattr(images, "images") and isinstance(getattr(images, "images"), torch.Tensor):
        images = images.images  # a FaceDataset
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if isinstance(images, (list, tuple)) and images and all(isinstance(t, torch.Tensor) for t in images):
        images = torch.stack([t if t.ndim == 3 else t.reshape(t.shape[-3:]) for t in images])
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        if images.ndim == 3:
            images = images[None]
        elif images.ndim == 5:
            images = images.reshape(-1, *images.shape[2:])
    return to_float(image_batch(images, what))


def model_channels(model: torch.nn.Module) -> int | None:
    """Image channels the model expects, or None when it does not say."""
    c = getattr(getattr(model, "config", None), "channels", None) or getattr(model, "channels", None)
    return c if isinstance(c, int) else None


def _model_size(model: torch.nn.Module) -> int | None:
    s = getattr(getattr(model, "config", None), "image_size", None) or getattr(model, "image_size", None)
    return s if isinstance(s, int) else None


def check_fits_model(model: torch.nn.Module, x: torch.Tensor, what: str = "images") -> None:
    """Raise a clear error when images do not have the channels/size the model was built for."""
    c, s = model_channels(model), _model_size(model)
    if c is not None and x.shape[1] != c:
        raise ValueError(
            f"{what} have {x.shape[1]} channel(s) but the model expects {c}; load the data with channels={c}"
            " (e.g. facelib.study.load_data(..., channels=%d))" % c
        )
    if s is not None and tuple(x.shape[2:]) != (s, s):
        raise ValueError(
            f"{what} are {x.shape[2]} x {x.shape[3]} but the model expects {s} x {s}; load the data with size={s}"
        )


@torch.no_grad()
def encode(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) on the CPU, the model in eval mode for the call (its mode is restored)."""
    was = model.training
    model.eval()
    try:
        mu, logvar = model.encode(x.to(model_device(model)))
    finally:
        model.train(was)
    return mu.float().cpu(), logvar.float().cpu()


@torch.no_grad()
def decode(model: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Decoded means in [0, 1] on the CPU, the model in eval mode for the call."""
    was = model.training
    model.eval()
    try:
        out = model.decode(torch.as_tensor(z, dtype=torch.float32).to(model_device(model)))
    finally:
        model.train(was)
    return out.float().cpu().clamp(0, 1)


@torch.no_grad()
def kl_per_dim(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Mean KL per latent over `x`: the model's own `kl_per_dim`, else the closed form from `encode`."""
    was = model.training
    model.eval()
    try:
        if hasattr(model, "kl_per_dim"):
            kl = model.kl_per_dim(x.to(model_device(model)))
        else:
            mu, logvar = model.encode(x.to(model_device(model)))
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)
    finally:
        model.train(was)
    return torch.as_tensor(kl).detach().float().cpu().numpy().reshape(-1)


#: Units of a traversal: "data" (each latent's spread over faces, `train.latent_spread`), "posterior"
#: (the face's own posterior standard deviation), "prior" (the N(0, I) prior's).
UNITS = ("data", "posterior", "prior")


def check_units(units: str) -> str:
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    return units


def latent_scale(model: torch.nn.Module, units: str, logvar: torch.Tensor | None = None,
                 reference: Any = None) -> torch.Tensor:
    """One step of each latent in `units`, shape (latent_dim,): "data" uses the model's stored
    `latent_spread` (zoo models carry theirs) or measures it on `reference` faces, "posterior"
    the face's posterior std (from its `logvar`), "prior" 1."""
    check_units(units)
    d = latent_dim(model)
    if units == "prior":
        return torch.ones(d)
    if units == "posterior":
        if logvar is None:
            raise ValueError("units='posterior' needs a face (its posterior), not a latent code; pass an image "
                             "or use units='data' / 'prior'")
        return (0.5 * torch.as_tensor(logvar, dtype=torch.float32).reshape(-1)).exp()
    stored = getattr(model, "latent_spread", None)
    if stored is not None:
        spread = torch.as_tensor(np.asarray(stored, dtype=np.float32)).reshape(-1)
    else:
        faces = None if reference is None else as_float_images(reference, "reference")
        if faces is None or faces.shape[0] < 2:
            raise ValueError("units='data' moves each latent by its spread over faces: give reference faces "
                             "(reference=..., at least 2), load the model from the zoo (it stores the spread), or "
                             "use units='posterior' / 'prior'")
        spread = torch.as_tensor(latent_spread(model, faces, device=None))  # on the model's own device
    if spread.shape != (d,):
        raise ValueError(f"the latent spread has shape {tuple(spread.shape)}, expected ({d},)")
    return spread


def unit_label(units: str) -> str:
    """How a figure or the widget names a unit."""
    return {"data": "data standard deviations (each latent's spread over faces)",
            "posterior": "posterior standard deviations of the face",
            "prior": "prior standard deviations"}[check_units(units)]
