"""facelib: disentangled VAE representations of faces, and whether they verify identity.

Modules by concern: `facelib.data` (loaders, synthetic faces), `facelib.models`
(VAE family), `facelib.train` (fitting, checkpoints, embeddings), `facelib.metrics`
(disentanglement), `facelib.verify` (pair verification statistics), `facelib.viz`
(figures and widgets), `facelib.study` (notebook plumbing, profiles,
and the papermill runner `facelib.study.pipeline`).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def load_model(path, map_location="cpu"):
    """Rebuild a model from a facelib checkpoint file alone (no code is executed)."""
    # here: `import facelib` stays light (no torch) for the pipeline and its workers
    from facelib.train.checkpoint import load_model as _load_model

    return _load_model(path, map_location=map_location)
