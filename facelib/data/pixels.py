"""The pixel convention, in one place: stored images are uint8 levels 0..255 in N x C x H x W
(C = 1 grey or 3 colour), models take floats x = level / 255 in [0, 1].

Every module that takes images from a caller checks them with `image_batch`, turns them into
model input with `to_float` and turns [0, 1] floats back into levels with `to_uint8`, so the
errors and the rounding are the same everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["image_batch", "to_float", "to_uint8"]


def image_batch(images: Any, what: str = "images", *, uint8: bool = False) -> torch.Tensor:
    """A batch N x C x H x W (C = 1 or 3) as a tensor in its own dtype, from a tensor, NumPy
    array or FaceDataset; `uint8=True` accepts stored levels only (no float images)."""
    if hasattr(images, "images") and isinstance(getattr(images, "images"), torch.Tensor):
        images = images.images  # a FaceDataset
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what} must be a tensor, NumPy array or FaceDataset (N x C x H x W), got {type(images).__name__}")
    if images.ndim == 3:
        raise ValueError(f"{what}: expected a batch N x C x H x W, got shape {tuple(images.shape)}; add a batch axis with x[None]")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        hint = ("pass images (dataset.images), not flattened pixels" if images.ndim == 2
                else "channels-last arrays need .permute(0, 3, 1, 2) first")
        raise ValueError(f"{what} must have shape N x C x H x W with C = 1 (grey) or 3 (colour), "
                         f"got {tuple(images.shape)}; {hint}")
    if uint8 and images.dtype != torch.uint8:
        raise TypeError(f"{what} must be uint8 images (0..255), as facelib's loaders give, got {images.dtype}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(f"{what} must be uint8 (0..255) or float in [0, 1], got {images.dtype}")
    return images


def to_float(images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Model input: uint8 levels / 255 (float images pass as float32), on `device` if given."""
    if device is not None:
        images = images.to(device, non_blocking=True)
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def to_uint8(x: Any) -> np.ndarray:
    """Floats in [0, 1] (any shape, array or tensor) back to 0..255 levels, rounded and clipped."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
