"""Grid patches of face images: what a patch VAE trains on and reads (`verify.PatchVAEEmbedding`,
the zoo's patch recipe, `experiment.DataSpec(patches=...)`)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["grid_patches", "training_patches", "downsample", "PATCH_OPTIONS"]

#: The options of a patch training set (`training_patches`): window side, step, how many, mirrors.
PATCH_OPTIONS = ("patch", "stride", "max_patches", "mirror")


def grid_patches(x: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """All `patch` x `patch` windows of N x C x H x W images at `stride`, as
    (N, positions, C, patch, patch) in row-major grid order."""
    if patch < 1 or stride < 1:
        raise ValueError(f"patch and stride must be >= 1, got patch={patch}, stride={stride}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if patch > min(h, w):
        raise ValueError(f"patch {patch} does not fit in {h} x {w} images; choose patch <= {min(h, w)}")
    win = x.unfold(2, patch, stride).unfold(3, patch, stride)  # N, C, gh, gw, p, p
    n, c, gh, gw = win.shape[:4]
    return win.permute(0, 2, 3, 1, 4, 5).reshape(n, gh * gw, c, patch, patch)


def downsample(x: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 N x C x H x W images area-averaged to side x side, rounded back to uint8."""
    y = torch.nn.functional.interpolate(x.float(), size=(side, side), mode="area")
    return y.round().clamp(0, 255).to(torch.uint8)


def training_patches(x: torch.Tensor, patch: int, stride: int, max_patches: int, mirror: bool = True,
                     seed: int = 0) -> torch.Tensor:
    """The patches a patch VAE trains on: every grid window of `x` (and of its mirror images),
    at most `max_patches` of them drawn without replacement (seeded), as (n, C, patch, patch)."""
    if mirror:
        x = torch.cat([x, x.flip(-1)])
    patches = grid_patches(x, patch, stride)
    patches = patches.reshape(-1, *patches.shape[2:])
    if patches.shape[0] > max_patches:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(patches.shape[0], max_patches, replace=False))
        patches = patches[torch.as_tensor(keep)]
    return patches.contiguous()
