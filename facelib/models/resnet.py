"""Residual convolutional encoder and decoder for real faces (32-128 px, 1 or 3 channels).

The layout of the VAEs that reconstruct faces well (the NVAE / VQ-VAE family, reduced to what
trains on a laptop CPU): a strided stem halves the image, then stages of `depth` pre-activation
residual blocks (norm, SiLU, 3x3 conv, twice, plus the identity), each stage ending in a
stride-2 conv that halves the side and doubles the width (up to `max_width`), down to a 4x4
grid; a linear layer maps that grid to (mu, logvar). The decoder is the mirror: linear to the
grid, stages of residual blocks each followed by a step that doubles the side: a stride-2
transposed conv (`upsample="transpose"`, the fastest on a CPU), or nearest or bilinear upsampling
followed by a 3x3 conv (`"nearest"`, `"bilinear"`; about 20 % slower per training step with
channels-last), which cannot paint the checkerboard grid a transposed conv learns (Odena et al.
2016, "Deconvolution and checkerboard artifacts"). No dense bottleneck of 256 units, as in the Burgess
layout, limits what the 32 latents can say. Normalisation is GroupNorm ("group", independent
of the batch, so ModVAE's grouped batches and eval mode see the same network) or BatchNorm
("batch", faster on a CPU).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResidualEncoder", "ResidualDecoder", "resnet_sides", "RESNET_DEFAULTS", "check_resnet_options"]

#: Default options of the residual networks (`ModelConfig.architecture_options`).
RESNET_DEFAULTS = {"width": 16, "depth": 1, "max_width": 128, "norm": "batch", "upsample": "transpose"}
NORMS = ("batch", "group", "none")
UPSAMPLING = ("transpose", "nearest", "bilinear")
_GRID = 4


def check_resnet_options(options: dict, image_size: int) -> dict:
    """The residual networks' options with defaults filled in; a clear error for bad ones."""
    unknown = sorted(set(options) - set(RESNET_DEFAULTS))
    if unknown:
        raise ValueError(f"architecture 'resnet': unknown option(s) {unknown}; known: {sorted(RESNET_DEFAULTS)}")
    o = {**RESNET_DEFAULTS, **options}
    for key in ("width", "depth", "max_width"):
        v = o[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "depth" else 1):
            raise ValueError(f"architecture 'resnet': {key} must be a {'non-negative' if key == 'depth' else 'positive'} "
                             f"integer, got {v!r}")
    if o["norm"] not in NORMS:
        raise ValueError(f"architecture 'resnet': norm must be one of {list(NORMS)}, got {o['norm']!r}")
    if o["upsample"] not in UPSAMPLING:
        raise ValueError(f"architecture 'resnet': upsample must be one of {list(UPSAMPLING)}, got {o['upsample']!r}")
    if o["norm"] == "group" and (o["width"] % 8 or o["max_width"] % 8):
        raise ValueError("architecture 'resnet': norm='group' needs width and max_width divisible by 8")
    resnet_sides(image_size)
    return o


def resnet_sides(image_size: int) -> list[int]:
    """Feature-map sides from the image down to the grid: halvings while the side is even and
    above 4 (64 -> 32, 16, 8, 4; 48 -> ..., 3; 80 -> ..., 5); the grid must end at most 8 px."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"architecture 'resnet' needs an integer image side of at least 8, got {image_size!r}")
    sides = [image_size]
    while sides[-1] > _GRID and sides[-1] % 2 == 0:
        sides.append(sides[-1] // 2)
    if sides[-1] > 2 * _GRID:
        raise ValueError(f"architecture 'resnet' needs an image side that halves down to at most {2 * _GRID} px "
                         f"(32, 48, 64, 80, 96, 128 ...), got {image_size}; resize the images or use "
                         "architecture='small'")
    return sides


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(8, channels)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))): a pre-activation block of constant width."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            _norm(norm, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            _norm(norm, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _doubling(c_in: int, c_out: int, mode: str) -> list[nn.Module]:
    """Layers that double the side: a transposed conv, or a resize then a conv."""
    if mode == "transpose":
        return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    return [nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(c_in, c_out, 3, padding=1)]


def _widths(n_stages: int, width: int, max_width: int) -> list[int]:
    return [min(width * 2 ** i, max_width) for i in range(n_stages + 1)]


class ResidualEncoder(nn.Module):
    """Image (B x C x S x S, float) -> (mu, logvar), each B x latent_dim."""

    def __init__(self, channels: int, image_size: int, latent_dim: int, width: int = RESNET_DEFAULTS["width"],
                 depth: int = RESNET_DEFAULTS["depth"], max_width: int = RESNET_DEFAULTS["max_width"],
                 norm: str = RESNET_DEFAULTS["norm"], upsample: str = RESNET_DEFAULTS["upsample"]):
        super().__init__()  # upsample is the decoder's option (both networks get the same options)
        sides = resnet_sides(image_size)
        n = len(sides) - 1  # halvings: the stem, then one per stage
        w = _widths(n - 1, width, max_width)
        layers: list[nn.Module] = [nn.Conv2d(channels, w[0], 4, stride=2, padding=1)]
        for i in range(n - 1):
            layers += [ResidualBlock(w[i], norm) for _ in range(depth)]
            layers += [_norm(norm, w[i]), nn.SiLU(), nn.Conv2d(w[i], w[i + 1], 4, stride=2, padding=1)]
        layers += [ResidualBlock(w[-1], norm) for _ in range(depth)] + [_norm(norm, w[-1]), nn.SiLU()]
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(w[-1] * sides[-1] ** 2, 2 * latent_dim)
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x)
        mu, logvar = self.head(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar


class ResidualDecoder(nn.Module):
    """Latent (B x latent_dim) -> pixel logits (B x C x S x S); the mirror of `ResidualEncoder`."""

    def __init__(self, channels: int, image_size: int, latent_dim: int, width: int = RESNET_DEFAULTS["width"],
                 depth: int = RESNET_DEFAULTS["depth"], max_width: int = RESNET_DEFAULTS["max_width"],
                 norm: str = RESNET_DEFAULTS["norm"], upsample: str = RESNET_DEFAULTS["upsample"]):
        super().__init__()
        sides = resnet_sides(image_size)
        n = len(sides) - 1
        w = _widths(n - 1, width, max_width)[::-1]  # deepest first
        self.shape = (w[0], sides[-1], sides[-1])
        self.head = nn.Linear(latent_dim, w[0] * sides[-1] ** 2)
        layers: list[nn.Module] = []
        for i in range(n - 1):
            layers += [ResidualBlock(w[i], norm) for _ in range(depth)]
            layers += [_norm(norm, w[i]), nn.SiLU(), *_doubling(w[i], w[i + 1], upsample)]
        layers += [ResidualBlock(w[-1], norm) for _ in range(depth)]
        layers += [_norm(norm, w[-1]), nn.SiLU(), *_doubling(w[-1], channels, upsample)]
        self.conv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv(self.head(z).view(z.shape[0], *self.shape))
