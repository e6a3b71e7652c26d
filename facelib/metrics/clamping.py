"""Does a ModVAE's clamping hold? How much each latent block moves when one factor moves.

DC-IGN / ModVAE trains on groups in which one factor varies and holds every other block at the
group mean; if that worked, encoding a fresh group moves the varying factor's block and leaves
the others still. `block_spread` measures that on factor-controlled batches (synthetic faces);
`identity_spread` measures the real-data version: how much of each block's variation is
within a person (a block the identity groups clamped should vary mostly between people).
Models without blocks count as one block "all", so a beta-VAE can be read beside a ModVAE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from facelib.models.base import latent_dim
from facelib.train.inference import representation as posterior_mean

__all__ = ["latent_blocks", "block_spread", "identity_spread", "pooled_within_variance"]


def latent_blocks(model: Any) -> dict[str, slice]:
    """The model's latent blocks by name (a ModVAE's factor blocks and "other"), or
    {"all": every latent} for a model without blocks."""
    slices = getattr(model, "block_slices", None)
    if slices:
        return {str(k): v for k, v in slices.items() if v.stop > v.start}
    return {"all": slice(0, int(latent_dim(model)))}


def _means(model: Any, images: Any, batch_size: int) -> np.ndarray:
    return np.asarray(posterior_mean(model, batch_size=batch_size)(images), dtype=np.float64)


def block_spread(model: Any, batches: Mapping[str, Any], batch_size: int = 256) -> pd.DataFrame:
    """Spread of each block within each batch: rows = batch name (e.g. the factor that varies
    in it), columns = block, value = the mean over the block's latents of the standard deviation
    (ddof 1) of the posterior means over the batch's images. Batches need >= 2 images."""
    if not batches:
        raise ValueError("batches is empty; give {name: images} with at least two images each")
    blocks = latent_blocks(model)
    rows = {}
    for name, images in batches.items():
        mu = _means(model, images, batch_size)
        if mu.shape[0] < 2:
            raise ValueError(f"batch {name!r} has {mu.shape[0]} image(s); a spread needs at least 2")
        sd = mu.std(axis=0, ddof=1)
        rows[str(name)] = {b: float(sd[sl].mean()) for b, sl in blocks.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "varying factor"
    table.columns.name = "block"
    return table


def pooled_within_variance(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per column, the pooled within-group variance: the residual mean square of a one-way
    ANOVA, sum over groups of squared deviations from the group mean / (N - number of groups)."""
    x = np.asarray(x, dtype=np.float64)
    groups = np.asarray(groups)
    if x.ndim != 2 or groups.shape != (x.shape[0],):
        raise ValueError(f"x must be (N, d) and groups (N,), got {x.shape} and {groups.shape}")
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if x.shape[0] <= labels.size:
        raise ValueError(f"{x.shape[0]} rows in {labels.size} groups leave no within-group degrees of freedom")
    sums = np.zeros((labels.size, x.shape[1]))
    np.add.at(sums, inverse, x)
    resid = x - (sums / counts[:, None])[inverse]
    return (resid ** 2).sum(axis=0) / (x.shape[0] - labels.size)


def identity_spread(model: Any, faces: Any, min_images: int = 2, batch_size: int = 256) -> pd.DataFrame:
    """Per block: how much of its variation is within a person, on faces with identities.

    For the people with at least `min_images` images: `within_sd` (the pooled within-person
    standard deviation), `total_sd` (over all those images, ddof 1), and `within_share` = the
    block's mean over latents of within variance / total variance (1: the block does not know
    the person; 0: it is constant within a person). Rows: one per block.
    """
    identity = np.asarray(faces.identity)
    ids, counts = np.unique(identity[identity >= 0], return_counts=True)
    keep = np.isin(identity, ids[counts >= int(min_images)])
    n_people = int((counts >= int(min_images)).sum())
    if n_people < 2:
        raise ValueError(f"identity_spread needs at least 2 people with >= {min_images} images; "
                         f"{faces!r} has {n_people}")
    idx = np.flatnonzero(keep)
    mu = _means(model, faces.images[idx], batch_size)
    within = pooled_within_variance(mu, identity[idx])
    total = mu.var(axis=0, ddof=1)
    share = np.divide(within, total, out=np.ones_like(within), where=total > 0)
    rows = [{"block": b, "latents": sl.stop - sl.start, "within_sd": float(np.sqrt(within[sl]).mean()),
             "total_sd": float(np.sqrt(total[sl]).mean()), "within_share": float(share[sl].mean())}
            for b, sl in latent_blocks(model).items()]
    out = pd.DataFrame(rows)
    out.attrs.update(people=n_people, images=int(idx.size))
    return out
