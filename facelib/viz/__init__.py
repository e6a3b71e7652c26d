"""Figures and widgets for faces and latents, for the notebooks and the reports.

* `image_grid(images, nrow)` -> uint8 array (or PIL) via torchvision's `make_grid`;
  `show_images(images, nrow, title, row_labels)` -> matplotlib Figure;
  `reconstruction_figure(model, images)` -> Figure of originals over reconstructions.
* `traversal_grid(model, z_or_image, dims, values, order_by_kl, units)` -> tensor D x K x C x H x W,
  `values` (default `DEFAULT_VALUES`, -2..2) in `units`: "data" (each latent's spread over faces;
  zoo models carry it), "posterior" or "prior";
  `plot_traversal(...)` -> labelled Figure; `save_traversal_gif(model, image, dim, path)`;
  `latent_order(model, images)` -> latents by KL (active first) and the KL per latent.
* `plot_mutual_information(table, kl)`: heatmap of `metrics.mutual_info_table` (which latent
  carries which factor), latents labelled with their KL.
* `TraversalWidget(model, dataset_or_image)`: ipywidgets sliders per latent, live decoded face.

Models follow the facelib contract: `encode(x) -> (mu, logvar)`, `decode(z)` in [0, 1],
`kl_per_dim(x)`, `config.latent_dim`. `TraversalWidget` imports ipywidgets only when one is made,
so `import facelib.viz` stays light in batch runs.
"""

from __future__ import annotations

from .disentanglement import plot_mutual_information
from .images import image_grid, png_bytes, reconstruction_figure, reconstruction_rows, sample_rows, show_images
from ._common import UNITS, unit_label
from .traversal import DEFAULT_VALUES, block_swap_grid, latent_order, plot_traversal, save_traversal_gif, traversal_grid
from .widget import TraversalWidget

__all__ = [
    "image_grid", "show_images", "reconstruction_figure", "reconstruction_rows", "sample_rows", "png_bytes",
    "latent_order", "traversal_grid", "plot_traversal", "save_traversal_gif", "block_swap_grid", "plot_mutual_information",
    "TraversalWidget", "DEFAULT_VALUES", "UNITS", "unit_label",
]

