"""Burgess et al. (2018) convolutional encoder and decoder, sized to the image.

The beta-VAE literature's 64x64 layout is 4 conv layers (4x4 kernels, stride 2, 32
channels) then dense 256, 256, 2*latent; the decoder mirrors it with transposed convs.
Here the number of stride-2 layers follows the image size: halve while the map stays an
integer of at least 4 (32 -> 3 layers, 64 -> 4, 128 -> 5, 256 -> 6; 48 -> 3 layers ending
at 6x6). A side that stops larger than 8 (150 -> 75, 250 -> 125: an odd side after one or two
halvings) keeps halving with rounding down (75 -> 37 -> 18 -> 9 -> 4; 250 ends at 3), so the dense layer
always sees a small grid and the model stays the size of the 64 px one instead of growing
with the square of the side; the decoder's transposed convs add the dropped row and column
back (`output_padding`), so it returns exactly the input size. One class serves every
supported size and 1 or 3 channels. Only plain convs, ReLU and Linear are used, which all
have fast channels-last kernels.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv_layout", "conv_sides", "Encoder", "Decoder", "MAX_GRID", "ROUNDED_GRID"]

#: Largest grid that exact halvings may end at (48 -> 6, 80 -> 5, 112 -> 7 stay as they are).
MAX_GRID = 8
#: Where halvings rounded down stop: at most this side (250 -> ... 7 -> 3, not 7x7).
ROUNDED_GRID = 6


def conv_sides(image_size: int) -> list[int]:
    """Feature-map side before and after each stride-2 layer (image_size first, grid last).

    Exact halvings first (the sizes of existing checkpoints); when they stop at a grid
    larger than `MAX_GRID`, halvings rounded down (what a 4x4 / stride 2 / padding 1 conv
    gives on an odd side) down to at most `ROUNDED_GRID`.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8 or image_size % 2:
        raise ValueError(f"image_size must be an even number >= 8, got {image_size!r}")
    sides = [image_size]
    while sides[-1] % 2 == 0 and sides[-1] // 2 >= 4:
        sides.append(sides[-1] // 2)
    if sides[-1] > MAX_GRID:  # an odd side stopped the exact halvings early
        while sides[-1] > ROUNDED_GRID:
            sides.append(sides[-1] // 2)
    return sides


def conv_layout(image_size: int) -> tuple[int, int]:
    """(number of stride-2 layers, final feature-map side) for a square image."""
    sides = conv_sides(image_size)
    return len(sides) - 1, sides[-1]


class Encoder(nn.Module):
    """Image (B x C x S x S, float) -> (mu, logvar), each B x latent_dim."""

    def __init__(self, channels: int, image_size: int, latent_dim: int,
                 hidden_channels: int = 32, hidden_dim: int = 256):
        super().__init__()
        n_layers, side = conv_layout(image_size)
        layers: list[nn.Module] = []
        c_in = channels
        for _ in range(n_layers):
            layers += [nn.Conv2d(c_in, hidden_channels, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = hidden_channels
        self.conv = nn.Sequential(*layers)
        self.dense = nn.Sequential(
            nn.Linear(hidden_channels * side * side, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x)
        h = self.dense(h.reshape(h.shape[0], -1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """Latent (B x latent_dim) -> pixel logits (B x C x S x S); the mirror of `Encoder`."""

    def __init__(self, channels: int, image_size: int, latent_dim: int,
                 hidden_channels: int = 32, hidden_dim: int = 256):
        super().__init__()
        sides = conv_sides(image_size)
        n_layers, side = len(sides) - 1, sides[-1]
        self.shape = (hidden_channels, side, side)
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_channels * side * side), nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for i in range(n_layers):
            last = i == n_layers - 1
            c_out = channels if last else hidden_channels
            small, big = sides[n_layers - i], sides[n_layers - i - 1]
            extra = big - 2 * small  # 1 where the encoder rounded an odd side down
            layers.append(nn.ConvTranspose2d(hidden_channels, c_out, 4, stride=2, padding=1,
                                             output_padding=extra))
            if not last:
                layers.append(nn.ReLU(inplace=True))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(z.shape[0], *self.shape)
        return self.deconv(h)
