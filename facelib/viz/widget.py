"""`TraversalWidget`: slide latents of a trained model and watch the decoded face change.

The update path (slider -> code -> decoder -> PNG bytes in an `ipywidgets.Image`) runs in
plain Python, so it is unit-tested without a browser, and stays fast: no matplotlib per
update, only one decode and one PNG encode.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch

from facelib.models.base import latent_dim

from ._common import as_float_images, check_fits_model, check_units, decode, encode, kl_per_dim, latent_scale, unit_label
from .images import png_bytes

__all__ = ["TraversalWidget"]


class TraversalWidget:
    """Interactive latent traversal of `model` around faces of `dataset_or_image`.

    Slider units: latent k = mu_k + s * step_k around the base face's posterior mean mu, where
    the step is, with `units="data"` (default), latent k's spread over faces (the standard
    deviation of the posterior means: `train.latent_spread`; zoo models carry theirs, otherwise
    it is measured on the faces given), so +-`span` moves the face as far as faces differ;
    `units="posterior"`: sigma_k of the base face's posterior (often far narrower: the face barely
    changes); `units="prior"`: 1 (the N(0, I) prior). With one face and no stored spread, data
    units cannot be measured and the widget says so and uses prior units. Sliders are ordered by the
    model's `kl_per_dim` over (up to 256 of) the faces, active latents first; `max_dims`
    keeps only the first few (the rest stay at the base face's posterior mean).

    Testable attributes: `sliders` (in display order, `dims[i]` is slider i's latent),
    `image` (ipywidgets.Image of the decoded face; `.value` holds PNG bytes), `current_z`,
    `base_index`, `picker`, `reset_button`, `kl`, `kl_plot`, `ui`. Methods: `set_base(i)`,
    `reset()`, `display()`.
    """

    def __init__(self, model: torch.nn.Module, dataset_or_image: Any, max_dims: int | None = None,
                 span: float = 2.0, units: str = "data", index: int = 0, zoom: int | None = None,
                 step: float = 0.1):
        import ipywidgets as w  # here: the widget stack loads only when a widget is made (notebooks)

        check_units(units)
        if not np.isfinite(span) or span <= 0:
            raise ValueError(f"span must be a positive number of standard deviations, got {span!r}")
        self.model = model
        self.units = units
        self.span = float(span)
        self.latent_dim = latent_dim(model)
        src = getattr(dataset_or_image, "images", dataset_or_image)
        if isinstance(src, torch.Tensor) and src.dtype == torch.uint8 and src.ndim == 4:
            self._images = src  # kept as uint8: a large data set is not copied to float
        else:
            self._images = as_float_images(dataset_or_image, "dataset_or_image")
        n = self._images.shape[0]
        if n == 0:
            raise ValueError("dataset_or_image holds no faces; pass at least one image")
        check_fits_model(model, self.face(0), "dataset_or_image images")
        if not 0 <= int(index) < n:
            raise ValueError(f"index {index} is outside the {n} faces given (0..{n - 1})")
        # latent order: KL over a fixed, spread-out subset of the faces
        sub = as_float_images(self._images[torch.as_tensor(np.linspace(0, n - 1, min(n, 256)).round().astype(np.int64))])
        self.kl = kl_per_dim(model, sub)
        self.spread = None  # data units: one step per latent, the same for every base face
        if units == "data":
            if getattr(model, "latent_spread", None) is None and sub.shape[0] < 2:
                warnings.warn("data units need each latent's spread over faces: the model stores none and one face "
                              "was given, so the sliders are in prior units (give several faces, or a zoo model)",
                              UserWarning, stacklevel=2)
                self.units = "prior"
            else:
                self.spread = latent_scale(model, "data", reference=sub)
        if self.kl.shape != (self.latent_dim,):
            raise ValueError(f"model.kl_per_dim returned shape {self.kl.shape}, expected ({self.latent_dim},)")
        order = sorted(range(self.latent_dim), key=lambda k: (-self.kl[k], k))
        if max_dims is not None:
            if int(max_dims) < 1:
                raise ValueError(f"max_dims must be at least 1, got {max_dims!r}")
            order = order[: int(max_dims)]
        self.dims: list[int] = order
        size = self._images.shape[-1]
        self.zoom = int(zoom) if zoom else max(1, 192 // size)

        self._hold = False
        self.n_updates = 0
        self.sliders = [
            w.FloatSlider(value=0.0, min=-self.span, max=self.span, step=step, description=f"z{k}",
                          continuous_update=True, readout_format=".1f",
                          tooltip=f"latent {k}: KL {self.kl[k]:.2f} nats")
            for k in self.dims
        ]
        for s in self.sliders:
            s.observe(self._on_slider, names="value")
            s.add_class("facelib-latent-slider")  # stable hooks for a browser test or custom CSS
        self.image = w.Image(format="png")
        self.image.add_class("facelib-decoded")
        self.original = w.Image(format="png")
        self.picker = w.IntSlider(value=int(index), min=0, max=max(n - 1, 0), description="face",
                                  disabled=n == 1, continuous_update=False)
        self.picker.observe(self._on_pick, names="value")
        self.reset_button = w.Button(description="reset", tooltip="all sliders back to the face's posterior mean")
        self.reset_button.on_click(lambda _b: self.reset())
        self.kl_plot = w.Image(format="png", value=self._kl_png())
        self.base_index = -1
        self.set_base(int(index))

    # -- state ------------------------------------------------------------------------
    def face(self, index: int) -> torch.Tensor:
        """Face `index` as float 1 x C x H x W in [0, 1]."""
        return as_float_images(self._images[int(index): int(index) + 1], "dataset_or_image")

    @property
    def current_z(self) -> torch.Tensor:
        """The code shown now: base posterior mean plus slider offsets, shape (latent_dim,)."""
        z = self.base_mu.clone()
        for k, s in zip(self.dims, self.sliders):
            z[k] = self.base_mu[k] + float(s.value) * float(self.scale[k])
        return z

    def set_base(self, index: int) -> None:
        """Take face `index` as the base: sliders reset to its posterior mean, image redrawn."""
        n = self._images.shape[0]
        index = int(index)
        if not 0 <= index < n:
            raise ValueError(f"face index {index} is outside 0..{n - 1}")
        mu, logvar = encode(self.model, self.face(index))
        self.base_mu = mu[0]
        self.scale = self.spread if self.spread is not None else latent_scale(self.model, self.units, logvar[0])
        self.base_index = index
        self.original.value = png_bytes(self.face(index), self.zoom)
        if self.picker.value != index:
            self.picker.value = index  # _on_pick sees base_index == index and does nothing
        self._reset_sliders()

    def reset(self) -> None:
        """All sliders back to 0 (the base face's posterior mean)."""
        self._reset_sliders()

    def _reset_sliders(self) -> None:
        self._hold = True
        try:
            for s in self.sliders:
                s.value = 0.0
        finally:
            self._hold = False
        self._update()

    def _on_pick(self, change: dict) -> None:
        if change["new"] != self.base_index:
            self.set_base(change["new"])

    def _on_slider(self, _change: dict) -> None:
        if not self._hold:
            self._update()

    def _update(self) -> None:
        self.decoded = decode(self.model, self.current_z[None])[0]
        self.image.value = png_bytes(self.decoded, self.zoom)
        self.n_updates += 1

    # -- display ----------------------------------------------------------------------
    def _kl_png(self) -> bytes:
        """Bar plot of KL per latent in slider order, rendered once to PNG."""
        from matplotlib.figure import Figure  # here: matplotlib loads only when the KL plot is drawn

        order = sorted(range(self.latent_dim), key=lambda k: (-self.kl[k], k))
        fig = Figure(figsize=(max(2.5, 0.22 * len(order)), 1.8), dpi=100)
        ax = fig.subplots()
        shown = set(self.dims)
        ax.bar(range(len(order)), [self.kl[k] for k in order],
               color=["tab:blue" if k in shown else "lightgray" for k in order])
        ax.set_xticks(range(len(order)), [str(k) for k in order], fontsize=6)
        ax.set_ylabel("KL (nats)", fontsize=7)
        ax.set_title("KL per latent (grey: no slider)", fontsize=8)
        ax.tick_params(axis="y", labelsize=6)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    @property
    def ui(self):
        """The assembled ipywidgets box (built on first use)."""
        if getattr(self, "_ui", None) is None:
            import ipywidgets as w  # here: as in __init__

            caption = w.HTML(f"<small>sliders in {unit_label(self.units)}, around the base face (+-{self.span:g}); "
                             "ordered by KL, active latents first</small>")
            faces = w.HBox([w.VBox([w.HTML("base"), self.original]), w.VBox([w.HTML("decoded"), self.image]),
                            self.kl_plot])
            cols = 2 if len(self.sliders) > 8 else 1
            grid = w.GridBox(self.sliders, layout=w.Layout(grid_template_columns=" ".join(["1fr"] * cols)))
            self._ui = w.VBox([faces, w.HBox([self.picker, self.reset_button]), caption, grid])
        return self._ui

    def display(self) -> None:
        """Show the widget in the notebook (also what a cell ending in the widget does)."""
        from IPython.display import display  # here: only in a notebook

        display(self.ui)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.ui._repr_mimebundle_(**kwargs)
