"""The pixel convention, in one place: stored images are uint8 levels 0..255 in N x C x H x W
(C = 1 grey or 3 colour), models take floats x = level / 255 in [0, 1].

Every module that takes images from a caller checks them with `image_batch`, turns them into
model input with `to_float` and turns [0, 1] floats back into levels with `to_uint8`, so the
errors and the rounding are the same everywhere. Every loader turns the pixels it reads from a
file into stored levels with `to_levels`, which checks their dtype and range first.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

__all__ = ["image_batch", "to_float", "to_uint8", "to_levels"]


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


def to_levels(x: Any, what: str, *, full_scale: float | None = None) -> np.ndarray:
    """Pixels read from a file as uint8 levels 0..255, after checking their dtype and range.

    A bare `astype(np.uint8)` turns floats in [0, 1] into an all-black image and wraps integers
    above 255, so every loader converts through here. `full_scale` is the value that means white
    (1.0 for floats in [0, 1], 255, 65535 for 16 bits); values outside [0, full_scale] are refused.
    With `full_scale=None` integers must already be levels 0..255, and floats are read as [0, 1]
    when none exceeds 1, else as levels 0..255, with a warning saying which.
    """
    a = np.asarray(x)
    is_int = np.issubdtype(a.dtype, np.integer)
    if a.dtype == np.bool_ or not (is_int or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"{what}: pixels must be numbers (uint8 levels 0..255 or floats), got dtype {a.dtype}; "
                        "store the images as uint8")
    if a.dtype == np.uint8 and full_scale in (None, 255):
        return a
    if a.size == 0:
        return a.astype(np.uint8)
    if not is_int and not np.isfinite(a).all():
        raise ValueError(f"{what}: {int((~np.isfinite(a)).sum())} pixel(s) are NaN or infinite; the images are "
                         "damaged: replace the file with a good copy")
    lo, hi = a.min(), a.max()
    if full_scale is None:
        if lo < 0 or hi > 255:
            kind = "integer" if is_int else "float"
            raise ValueError(f"{what}: {kind} pixels span {lo:g}..{hi:g}, neither levels 0..255 nor floats in [0, 1]; "
                             "convert the images to uint8 levels 0..255 (16-bit: x // 257)")
        if is_int:
            full_scale = 255
        else:
            full_scale = 1.0 if hi <= 1.0 else 255.0
            warnings.warn(
                f"{what}: pixels are {a.dtype} in [{lo:.3g}, {hi:.3g}], read as "
                + ("floats in [0, 1] (level = x * 255)" if full_scale == 1.0 else "levels 0..255 (rounded)")
                + "; store them as uint8 levels 0..255 to silence this", stacklevel=2)
    elif lo < 0 or hi > full_scale:
        raise ValueError(f"{what}: pixels span {lo:g}..{hi:g}, outside 0..{full_scale:g} (black..white); "
                         "the images are damaged or of another format")
    if is_int and full_scale == 255:
        return a.astype(np.uint8)
    return np.rint(a.astype(np.float64) * (255.0 / full_scale)).astype(np.uint8)
