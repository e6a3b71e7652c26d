"""Static latent traversals: grids for figures and animated GIFs for reports.

A traversal decodes one code with a single latent moved through `values`; the others stay at
the code's values (for an image: its posterior mean). `units` says what a value is:
"data" (default): latent k = code_k + value x its spread over faces (`train.latent_spread`; zoo
models carry theirs, otherwise it is measured on `reference` faces), so +-2 spans how faces
differ; "posterior": code_k + value x the face's posterior std; "prior": latent k = value (the
N(0, I) prior's own coordinates, absolute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from facelib.models.base import latent_dim
from facelib.train.inference import swap_latents

from ._common import as_float_images, check_fits_model, check_units, decode, encode, kl_per_dim, latent_scale, unit_label
from .images import image_grid, show_images

__all__ = ["latent_order", "traversal_grid", "plot_traversal", "save_traversal_gif", "block_swap_grid"]

DEFAULT_VALUES = np.linspace(-2.0, 2.0, 9)


def _code_and_image(model: torch.nn.Module, z_or_image: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(z of shape (d,), one image 1 x C x H x W whose posterior orders the latents)."""
    z, x, _ = _code_image_logvar(model, z_or_image)
    return z, x


def _code_image_logvar(model: torch.nn.Module, z_or_image: Any):
    """(z, image, the image's posterior logvar or None for a given code)."""
    d = latent_dim(model)
    t = z_or_image.images if hasattr(z_or_image, "images") else z_or_image
    t = torch.as_tensor(np.asarray(t) if not isinstance(t, torch.Tensor) else t)
    if t.ndim <= 2 and t.is_floating_point():
        z = t.detach().float().cpu().reshape(-1)
        if z.numel() != d:
            raise ValueError(f"a latent code must have {d} values (the model's latent_dim), got shape {tuple(t.shape)}")
        return z, decode(model, z[None]), None
    x = as_float_images(t, "z_or_image")
    if x.shape[0] != 1:
        raise ValueError(f"traverse one face at a time; got {x.shape[0]} images (pick one, e.g. images[i])")
    check_fits_model(model, x)
    mu, logvar = encode(model, x)
    return mu[0], x, logvar[0]


def latent_order(model: torch.nn.Module, images: Any, dims: Sequence[int] | None = None,
                 order_by_kl: bool = True) -> tuple[list[int], np.ndarray]:
    """Latent indices to show (most informative first when `order_by_kl`) and the KL per latent.

    KL per latent is the model's `kl_per_dim` over `images`; a latent the model does not
    use has KL near 0, so active ones come first.
    """
    d = latent_dim(model)
    x = as_float_images(images)
    check_fits_model(model, x)
    kl = kl_per_dim(model, x)
    if kl.shape != (d,):
        raise ValueError(f"model.kl_per_dim returned shape {kl.shape}, expected ({d},)")
    if dims is None:
        dims = list(range(d))
    dims = [int(k) for k in dims]
    bad = [k for k in dims if not 0 <= k < d]
    if bad:
        raise ValueError(f"dims {bad} are outside the model's latents 0..{d - 1}")
    if order_by_kl:
        dims = sorted(dims, key=lambda k: (-kl[k], k))
    return dims, kl


def traversal_grid(model: torch.nn.Module, z_or_image: Any, dims: Sequence[int] | None = None,
                   values: Sequence[float] = DEFAULT_VALUES, order_by_kl: bool = True,
                   kl_images: Any = None, units: str = "data", reference: Any = None) -> torch.Tensor:
    """Decoded traversals, float tensor len(dims) x len(values) x C x H x W (row r: latent dims[r]).

    `z_or_image` is a latent code (d,) or one face (C x H x W or 1 x C x H x W). Rows follow
    `latent_order` (KL over `kl_images`, default the face itself or the decoded code). `values`
    are in `units` (module docstring); "data" measures the spread on `reference` (default
    `kl_images`) when the model carries none.
    """
    check_units(units)
    z, x, logvar = _code_image_logvar(model, z_or_image)
    dims, _ = latent_order(model, x if kl_images is None else kl_images, dims, order_by_kl)
    values = torch.as_tensor(np.asarray(values, dtype=np.float32)).reshape(-1)
    if values.numel() == 0:
        raise ValueError("values must hold at least one latent value, e.g. np.linspace(-2, 2, 9)")
    scale = latent_scale(model, units, logvar, kl_images if reference is None else reference)
    codes = z.repeat(len(dims), values.numel(), 1)
    for r, k in enumerate(dims):
        codes[r, :, k] = values if units == "prior" else z[k] + values * scale[k]
    out = decode(model, codes.reshape(-1, z.numel()))
    return out.reshape(len(dims), values.numel(), *out.shape[1:])


def plot_traversal(model: torch.nn.Module, z_or_image: Any, dims: Sequence[int] | None = None,
                   values: Sequence[float] = DEFAULT_VALUES, order_by_kl: bool = True,
                   kl_images: Any = None, max_dims: int | None = None, title: str | None = None,
                   units: str = "data", reference: Any = None):
    """`traversal_grid` as a labelled Figure: one row per latent ("z3  KL 2.1", or "z3 yaw  KL 2.1"
    where the model names its latents, as ModVAE's blocks do), one column per value."""
    _, x = _code_and_image(model, z_or_image)
    order, kl = latent_order(model, x if kl_images is None else kl_images, dims, order_by_kl)
    if max_dims is not None:
        order = order[: int(max_dims)]
    grid = traversal_grid(model, z_or_image, order, values, order_by_kl=False, units=units,
                          reference=kl_images if reference is None else reference)
    names = model.latent_names() if hasattr(model, "latent_names") else [""] * len(kl)
    labels = [f"z{k}{' ' + names[k] if names[k] else ''}  KL {kl[k]:.2f}" for k in order]
    vals = np.asarray(values, dtype=float).reshape(-1)
    title = title or f"latent traversals, {vals[0]:g} .. {vals[-1]:g} {unit_label(units)}"
    return show_images(grid, nrow=len(vals), title=title, row_labels=labels)


def save_traversal_gif(model: torch.nn.Module, image: Any, dim: int, path: str | Path,
                       values: Sequence[float] = DEFAULT_VALUES, duration_ms: int = 120, zoom: int = 2,
                       bounce: bool = True, overwrite: bool = False, units: str = "data",
                       reference: Any = None) -> Path:
    """Animate one latent's traversal as a looping GIF (frames there and, with `bounce`, back);
    `values` in `units`, as `traversal_grid`.

    Refuses to replace an existing file unless `overwrite=True`.
    """
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path must end in .gif, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or choose another path")
    frames_t = traversal_grid(model, image, [int(dim)], values, order_by_kl=False, units=units, reference=reference)[0]
    frames = []
    for f in frames_t:
        pil = Image.fromarray(image_grid(f, padding=0))
        if zoom > 1:
            pil = pil.resize((pil.width * int(zoom), pil.height * int(zoom)), Image.NEAREST)
        frames.append(pil.convert("P") if pil.mode == "RGB" else pil)
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(duration_ms), loop=0)
    return path


def block_swap_grid(model: torch.nn.Module, base: Any, donors: Any, dims: slice | Sequence[int],
                    base_labels: Sequence[str] | None = None, title: str | None = None):
    """Figure: row i is base face i decoded with latents `dims` of each donor face (columns), the
    donors themselves on top: with a ModVAE light block, each row keeps its person while the
    light follows the columns (`train.swap_latents`)."""
    swapped = swap_latents(model, base, donors, dims)
    donors_f = as_float_images(donors)
    grid = torch.cat([donors_f[None], swapped]).flatten(0, 1)
    labels = ["donors"] + list(base_labels or [f"face {i}" for i in range(swapped.shape[0])])
    return show_images(grid, nrow=swapped.shape[1], title=title or "latents swapped in from the top row",
                       row_labels=labels)
