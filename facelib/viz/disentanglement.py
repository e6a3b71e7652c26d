"""The matrix behind MIG as a heatmap: which latent carries which factor.

MIG gives one number per factor; the normalised mutual-information table
(`facelib.metrics.mutual_info_table`) shows whether a low one means a factor that no latent
carries (a dark column) or one spread over several latents (two or more bright cells in its
column). Labelling each latent with its KL separates latents the model switched off (KL
near 0) from ones it uses.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["plot_mutual_information"]


def plot_mutual_information(table: pd.DataFrame, kl: Sequence[float] | None = None, ax: Any = None,
                            title: str | None = None, annotate: bool = True):
    """Heatmap of a latents x factors table on a fixed 0..1 scale; returns the Axes.

    ``kl`` (one value per row, e.g. from `latent_order(model, images)[1]`) is added to the
    row labels as ``z3 (KL 2.1)``.
    """
    import matplotlib.pyplot as plt  # here: the plotting stack loads only when a figure is drawn
    import seaborn as sns  # here: as matplotlib

    if not isinstance(table, pd.DataFrame) or table.ndim != 2 or table.empty:
        raise TypeError("table must be a non-empty DataFrame of latents x factors, "
                        "e.g. facelib.metrics.mutual_info_table(model, source)")
    shown = table.copy()
    if kl is not None:
        kl = np.asarray(kl, dtype=float).reshape(-1)
        if kl.shape[0] != len(table):
            raise ValueError(f"kl has {kl.shape[0]} values but the table has {len(table)} latents (rows)")
        shown.index = [f"{z} (KL {k:.1f})" for z, k in zip(table.index, kl)]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.7 * table.shape[1], 0.8 + 0.35 * len(table)))
    sns.heatmap(shown, vmin=0.0, vmax=1.0, cmap="viridis", annot=annotate, fmt=".2f", cbar=False, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_xlabel("factor")
    ax.set_ylabel("latent")
    ax.set_title(title or "I(latent; factor) / H(factor)")
    return ax
