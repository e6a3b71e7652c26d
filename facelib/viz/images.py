"""Montages of faces and reconstructions, built on torchvision's `make_grid`."""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from facelib.data.pixels import to_uint8
from facelib.train import reconstruct, sample

from ._common import as_float_images, check_fits_model, decode, encode

__all__ = ["image_grid", "show_images", "reconstruction_figure", "reconstruction_rows", "sample_rows", "png_bytes"]


def image_grid(images: Any, nrow: int = 8, padding: int = 2, pad_value: float = 1.0, as_pil: bool = False):
    """Tile images (N x C x H x W, uint8 or float [0, 1]) `nrow` per row into one uint8 picture.

    Returns an H x W (grey) or H x W x 3 uint8 array, or a PIL image with `as_pil=True`,
    so the same montage goes to matplotlib, to a PNG file or to a widget; one image with
    `padding=0` is that image as an array.
    """
    if not isinstance(nrow, (int, np.integer)) or isinstance(nrow, bool) or nrow < 1:
        raise ValueError(f"nrow must be a positive integer (images per row), got {nrow!r}")
    x = as_float_images(images)
    if x.shape[0] == 0:
        raise ValueError("image_grid got no images; pass at least one")
    grid = make_grid(x.clamp(0, 1), nrow=int(nrow), padding=padding, pad_value=pad_value)
    arr = to_uint8(grid.permute(1, 2, 0))
    if x.shape[1] == 1:
        arr = np.ascontiguousarray(arr[..., 0])
    if as_pil:
        return Image.fromarray(arr)
    return arr


def png_bytes(image: Any, zoom: int = 1) -> bytes:
    """PNG encoding of one image or of a grid array, enlarged `zoom` times (nearest, stays crisp)."""
    arr = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3) and (
        image.ndim == 2 or image.shape[2] == 3) else image_grid(image, padding=0)
    pil = Image.fromarray(arr)
    if zoom > 1:
        pil = pil.resize((pil.width * int(zoom), pil.height * int(zoom)), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def show_images(images: Any, nrow: int = 8, title: str | None = None, ax: Any = None,
                row_labels: Sequence[str] | None = None, scale: float = 1.0, padding: int = 2):
    """Show a montage with matplotlib and return the Figure (save it with `Study.save_figure`).

    `row_labels` names the rows (e.g. "beta = 4"); `scale` enlarges the figure.
    """
    import matplotlib.pyplot as plt  # here: the plotting stack loads only when a figure is drawn

    arr = image_grid(images, nrow=nrow, padding=padding)
    h, w = arr.shape[:2]
    if ax is None:
        width = min(14.0, max(3.0, w / 40.0)) * scale
        extra = 0.12 * max((len(str(r)) for r in row_labels), default=0) if row_labels is not None else 0.0
        fig, ax = plt.subplots(figsize=(width + extra, width * h / w + (0.4 if title else 0.0)), layout="constrained")
    else:
        fig = ax.figure
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        n_rows = int(np.ceil(as_float_images(images).shape[0] / nrow))
        if len(row_labels) != n_rows:
            raise ValueError(f"row_labels has {len(row_labels)} labels for {n_rows} rows; give one per row")
        cell = (h - padding) / n_rows
        ax.set_yticks([padding + cell * (i + 0.5) for i in range(n_rows)], list(row_labels))
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
    else:
        ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def reconstruction_figure(model: torch.nn.Module, images: Any, nrow: int | None = None,
                          title: str | None = None):
    """Originals and their reconstructions (decoded posterior means), row by row, as a Figure.

    Up to `nrow` faces per row (default: all in one row, at most 8), each row of originals
    followed by the row of their reconstructions, as in the original project's figures.
    """
    x = as_float_images(images)
    check_fits_model(model, x)
    mu, _ = encode(model, x)
    recon = decode(model, mu)
    n = x.shape[0]
    nrow = int(nrow or min(n, 8))
    rows, labels = [], []
    for start in range(0, n, nrow):
        chunk = slice(start, start + nrow)
        pad = nrow - x[chunk].shape[0]
        blank = torch.ones(pad, *x.shape[1:])
        rows += [x[chunk], blank, recon[chunk], blank]
        labels += ["original", "reconstruction"]
    return show_images(torch.cat(rows), nrow=nrow, title=title, row_labels=labels)


def _check_models(models: Mapping[str, Any]) -> None:
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty {row label: model} mapping, e.g. {'beta 4': model}")


def reconstruction_rows(models: Mapping[str, Any], images: Any, title: str | None = None):
    """Several models side by side on the same faces: a row of originals, then one row of
    reconstructions per model, each row labelled by its key, as in the original project's
    beta-sweep figure. A value is a facelib model (its decoded posterior means) or any
    reconstructor, images -> reconstructions (e.g. `metrics.PCAReconstructor`, the linear
    baseline). Returns the Figure."""
    _check_models(models)
    x = as_float_images(images)
    rows = [x]
    for name, model in models.items():
        if isinstance(model, torch.nn.Module):
            check_fits_model(model, x, what=f"images for {name!r}")
            rows.append(reconstruct(model, x))
        elif callable(model):
            rows.append(torch.as_tensor(model(x)).float().clamp(0, 1).reshape(x.shape))
        else:
            raise TypeError(f"{name!r}: expected a model or a reconstructor (images -> images), got {type(model).__name__}")
    return show_images(torch.cat(rows), nrow=x.shape[0], title=title, row_labels=["original", *map(str, models)])


def sample_rows(models: Mapping[str, torch.nn.Module], n: int = 8, seed: int = 0, title: str | None = None,
                sources: Sequence[str] = ("prior",)):
    """`n` samples per model and source (`train.sample`: "prior" draws are the same for every model
    of the same latent size; "aggregate" draws from the density of each model's training codes),
    one row each, labelled "key" or, with several sources, "key, source". Returns the Figure."""
    _check_models(models)
    rows, labels = [], []
    for key, model in models.items():
        for source in sources:
            rows.append(sample(model, n, seed=seed, source=source))
            labels.append(str(key) if len(sources) == 1 else f"{key}, {'N(0, I)' if source == 'prior' else source}")
    return show_images(torch.cat(rows), nrow=n, title=title, row_labels=labels)
