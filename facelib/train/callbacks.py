"""Callbacks: what `fit(..., callbacks=[...])` calls after each epoch.

A callback is any callable taking an `EpochEnd`. `fit` calls each one on rank 0 after the
epoch's history row and checkpoint, on a forked torch RNG, so a callback never changes the
training: a run with callbacks trains the weights a run without them does, and resumes as
exactly. Callbacks are arguments of `fit`, never part of its `TrainConfig`, so checkpoints
neither store nor need them. Under `fit(nproc=N)` they travel to the processes, so they must
pickle (a class instance does, a lambda does not).

Two are shipped: `Snapshots` writes reconstructions and prior samples of fixed faces as PNG
files into the run folder, and `TensorBoard` logs every term of the history and those images
(the optional `tensorboard` extra). Both show the images of `snapshot_images`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facelib.data.pixels import image_batch, to_uint8
from facelib.files import atomic_path

from .inference import reconstruct, sample

__all__ = ["EpochEnd", "Snapshots", "TensorBoard", "snapshot_images", "fixed_faces"]

#: Where the shipped callbacks write inside a run folder.
SNAPSHOT_FOLDER = "snapshots"
TENSORBOARD_FOLDER = "tensorboard"


@dataclass(frozen=True)
class EpochEnd:
    """What a callback is given after each epoch.

    model: the model being trained (in training mode; the inference functions leave it so).
    dataset: the data set `fit` trains on.
    epoch: the number of the epoch just trained (from 1); step: optimizer steps so far.
    row: the epoch's history row (train_* and val_* terms, lr, time_s, images_per_s, partial).
    out: the run folder (`TrainConfig.out`), None without one.
    """

    model: torch.nn.Module
    dataset: Any
    epoch: int
    step: int
    row: dict[str, Any]
    out: Path | None


def fixed_faces(dataset: Any, n: int = 8) -> torch.Tensor:
    """`n` faces spread evenly over `dataset` (uint8): the same ones every epoch and every run."""
    images = image_batch(dataset)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    index = np.unique(np.linspace(0, images.shape[0] - 1, min(n, images.shape[0])).round().astype(int))
    return images[torch.from_numpy(index)]


def _row(images: np.ndarray) -> np.ndarray:
    """uint8 N x C x H x W side by side, H x (N W) x C."""
    n, c, h, w = images.shape
    return images.transpose(2, 0, 3, 1).reshape(h, n * w, c)


def snapshot_images(model: torch.nn.Module, faces: Any, n_samples: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """The pictures of a model in training, uint8 H x W x C, without gaps between the tiles:
    "reconstructions": the faces (top row) over `facelib.train.reconstruct` of them (bottom row);
    "samples": `facelib.train.sample(model, n_samples, seed)`, one row (fixed prior draws)."""
    faces = image_batch(faces).cpu()
    shown = faces.numpy() if faces.dtype == torch.uint8 else to_uint8(faces)
    recon = to_uint8(reconstruct(model, faces, device=None))
    drawn = to_uint8(sample(model, n_samples, seed=seed, device=None))
    return {"reconstructions": np.concatenate([_row(shown), _row(recon)], axis=0), "samples": _row(drawn)}


def _faces_for(faces: Any, n: int, dataset: Any) -> torch.Tensor:
    return fixed_faces(dataset, n) if faces is None else image_batch(faces)


class Snapshots:
    """Each epoch, `snapshot_images` of fixed faces as PNG files in `folder` (default: the run
    folder's snapshots/): epoch_0003_reconstructions.png and epoch_0003_samples.png.

    faces: the faces to reconstruct (uint8 N x C x H x W or a FaceDataset); None: `n` faces
    spread evenly over the training data (`fixed_faces`). seed: the prior draws of the samples.
    """

    def __init__(self, n: int = 8, faces: Any = None, seed: int = 0, folder: str | Path | None = None):
        self.n, self.faces, self.seed, self.folder = n, faces, seed, folder

    def __call__(self, end: EpochEnd) -> None:
        folder = Path(self.folder) if self.folder is not None else _run_subfolder(end, SNAPSHOT_FOLDER, "Snapshots")
        folder.mkdir(parents=True, exist_ok=True)
        images = snapshot_images(end.model, _faces_for(self.faces, self.n, end.dataset), self.n, self.seed)
        for name, image in images.items():
            with atomic_path(folder / f"epoch_{end.epoch:04d}_{name}.png", suffix=".tmp.png") as tmp:
                Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp)


def _run_subfolder(end: EpochEnd, name: str, who: str) -> Path:
    if end.out is None:
        raise ValueError(f"{who} writes into the run folder, and this run has none: give fit out=... "
                         f"(--out on the command line), or {who}(folder=...)")
    return Path(end.out) / name


def _summary_writer() -> type:
    """torch's SummaryWriter, or an ImportError saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # here: tensorboard is the optional extra
    except ImportError as exc:
        raise ImportError("TensorBoard logging needs the tensorboard package: pip install 'facelib[tensorboard]' "
                          f"(or pip install tensorboard); {exc}") from None
    return SummaryWriter


class TensorBoard:
    """Each epoch, every number of its history row as a TensorBoard scalar at the step reached
    (train_loss as "train/loss", val_elbo_nats as "val/elbo_nats", lr, ...) and the
    `snapshot_images` of fixed faces, into `log_dir` (default: the run folder's tensorboard/).
    Needs `pip install 'facelib[tensorboard]'`; `faces`, `n`, `seed` as for `Snapshots`."""

    def __init__(self, log_dir: str | Path | None = None, n: int = 8, faces: Any = None, seed: int = 0):
        _summary_writer()  # a missing extra fails here, before any training
        self.log_dir, self.n, self.faces, self.seed = log_dir, n, faces, seed
        self._writer: Any = None

    def __call__(self, end: EpochEnd) -> None:
        if self._writer is None:
            log_dir = self.log_dir if self.log_dir is not None else _run_subfolder(end, TENSORBOARD_FOLDER, "TensorBoard")
            self._writer = _summary_writer()(log_dir=str(log_dir))
        for key, value in end.row.items():
            if key not in ("epoch", "step", "partial") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(_tag(key), float(value), end.step)
        images = snapshot_images(end.model, _faces_for(self.faces, self.n, end.dataset), self.n, self.seed)
        for name, image in images.items():
            self._writer.add_image(name, image, end.step, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        """Close the event file (a later call opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __getstate__(self) -> dict[str, Any]:  # pickles without its open writer (fit(nproc=N))
        return {**self.__dict__, "_writer": None}


def _tag(column: str) -> str:
    """History column -> TensorBoard tag: train_loss -> train/loss, so TensorBoard groups them."""
    for prefix in ("train_", "val_"):
        if column.startswith(prefix):
            return f"{prefix[:-1]}/{column[len(prefix):]}"
    return column
