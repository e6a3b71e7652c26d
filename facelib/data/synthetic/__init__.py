"""Synthetic 3D faces with known generative factors: facelib's always-available data set.

Disentanglement can only be measured, and ModVAE trained with one-factor-varying batches,
on faces whose factors are known, so facelib renders its own (in the spirit of the 3D face
sets used by DC-IGN and beta-VAE). One job per module:

* `factors`: the factors, their ranges (`FactorRanges`) and neutral values, and the README
  montage's columns (`MONTAGE_COLUMNS`, `montage_factors`; `facelib.viz.montage` draws it);
* `geometry`: a person's head model (vertices, normals, albedo, landmarks) and the pose rotation;
* `render`: `HeadRenderer`, the vectorised z-buffer rasteriser and its per-person cache;
* `faces`: `SyntheticFaces` (people, sampling, data sets; a factor source for the metrics) and
  `load_synthetic`, what `facelib.data.load("synthetic")` runs.
"""

from __future__ import annotations

from .faces import SyntheticFaces, load_synthetic
from .factors import (IDENTITY_PARAMS, IDENTITY_RANGES, LANDMARKS, MONTAGE_COLUMNS, NEUTRAL, NO_JITTER,
                      NUISANCE_FACTORS, FactorRanges, montage_factors)
from .render import HeadRenderer

__all__ = [
    "load_synthetic",
    "SyntheticFaces",
    "HeadRenderer",
    "FactorRanges",
    "IDENTITY_PARAMS",
    "IDENTITY_RANGES",
    "NUISANCE_FACTORS",
    "NEUTRAL",
    "NO_JITTER",
    "LANDMARKS",
    "MONTAGE_COLUMNS",
    "montage_factors",
]
