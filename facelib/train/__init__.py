"""Training and using models: `fit`, checkpoints, embeddings.

`fit(model, dataset, TrainConfig(...))` trains any facelib model on an in-memory
`FaceDataset` and is what `python -m facelib train` runs; checkpoints are single
self-describing files that `load_model(path)` rebuilds from alone; `fit(..., callbacks=[...])`
calls per-epoch hooks (`Snapshots`: PNGs of reconstructions and samples, `TensorBoard`); `embed`,
`representation`, `reconstruct`, `sample` and `traverse` use a trained model.
"""

from __future__ import annotations

from .callbacks import EpochEnd, Snapshots, TensorBoard
from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .config import TrainConfig
from .engine import FitResult, TrainingDivergedError, fit, train_step
from .inference import (REFINE_LR, embed, held_out_terms, latent_spread, reconstruct, refine_posterior, representation, sample, swap_latents,
                        traversal_effect, traverse)

__all__ = [
    "TrainConfig", "fit", "train_step", "FitResult", "TrainingDivergedError",
    "EpochEnd", "Snapshots", "TensorBoard",
    "save_checkpoint", "load_checkpoint", "load_model", "CheckpointError",
    "embed", "representation", "reconstruct", "refine_posterior", "REFINE_LR", "sample", "traverse", "swap_latents", "traversal_effect", "held_out_terms",
    "latent_spread",
]
