"""The original project's end-to-end siamese CNN verifier.

A shared convolutional tower embeds both images, the absolute difference of the two
embeddings goes through dense layers to one same/different logit. Trained on training
pairs only (BCE, Adam), with early stopping on a validation split of those pairs; the
baseline the VAE-latent pipelines must beat.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from facelib.data.pixels import image_batch, to_float
from facelib.utils import seed_everything, select_device

from .roc import verification_metrics

__all__ = ["SiameseNet", "SiameseVerifier", "siamese_pairs"]


class SiameseNet(nn.Module):
    """Tower: conv blocks (conv 3x3, BN, ReLU, max-pool) -> global average -> linear embedding."""

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64),
                 embedding_dim: int = 64, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, embedding_dim)]
        self.tower = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.head(torch.abs(self.embed(a) - self.embed(b))).squeeze(1)


class SiameseVerifier(BaseEstimator):
    """`SiameseNet` behind the pair-scorer interface of `facelib.verify.scores` (on images):
    `fit_pairs(images_left, images_right, same)`, `score_pairs(images_left, images_right)`,
    `predict_pairs`; `labels = "pairs"` (it learns from the training pairs' labels only).

    Args:
        widths, embedding_dim, hidden, dropout: network size.
        lr, weight_decay, batch_size: Adam optimisation.
        max_epochs, patience: early stopping on the validation loss (best weights kept).
        val_fraction: share of the training pairs held out for early stopping (stratified).
        augment_flip: randomly mirror pair images horizontally during training.
        seed: seeds initialisation, the validation split and batch order.
        device: "auto" (cuda, mps, cpu), or an explicit device.
    """

    def __init__(self, widths=(16, 32, 64), embedding_dim: int = 64, hidden: int = 64,
                 dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 1e-4,
                 batch_size: int = 64, max_epochs: int = 30, patience: int = 5,
                 val_fraction: float = 0.2, augment_flip: bool = True, seed: int = 0,
                 device: str = "auto", verbose: bool = False):
        self.widths = widths
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.augment_flip = augment_flip
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def _split(self, same: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        val = []
        for cls in (True, False):
            idx = np.flatnonzero(same == cls)
            k = int(round(self.val_fraction * idx.size))
            val.append(rng.choice(idx, size=k, replace=False))
        val = np.concatenate(val)
        train = np.setdiff1d(np.arange(same.size), val)
        return train, val

    labels = "pairs"

    def fit_pairs(self, images_left, images_right, same) -> "SiameseVerifier":
        a, b = image_batch(images_left, "images_left", uint8=True), image_batch(images_right, "images_right", uint8=True)
        y = np.asarray(same).astype(bool)
        if a.shape != b.shape or y.shape != (a.shape[0],):
            raise ValueError(f"left {tuple(a.shape)}, right {tuple(b.shape)} and same {y.shape} do not match")
        if y.all() or not y.any():
            raise ValueError("training pairs must contain both same-person and different-person pairs")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        gen = seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        dev = select_device(self.device)
        self.device_ = dev
        self.net_ = SiameseNet(a.shape[1], tuple(self.widths), self.embedding_dim, self.hidden, self.dropout).to(dev)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        tr, va = self._split(y, rng)
        yt = torch.as_tensor(y, dtype=torch.float32)
        best, best_state, bad = np.inf, None, 0
        self.history_ = []
        for epoch in range(self.max_epochs):
            self.net_.train()
            order = torch.as_tensor(tr)[torch.randperm(tr.size, generator=gen)]
            total = 0.0
            for start in range(0, order.numel(), self.batch_size):
                idx = order[start:start + self.batch_size]
                if idx.numel() < 2:  # BatchNorm needs two samples
                    continue
                xa, xb = self._batch(a, idx, dev), self._batch(b, idx, dev)
                if self.augment_flip:
                    flip = torch.rand(2, generator=gen) < 0.5
                    if flip[0]:
                        xa = xa.flip(3)
                    if flip[1]:
                        xb = xb.flip(3)
                loss = loss_fn(self.net_(xa, xb), yt[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
            val_loss = self._loss(a, b, yt, va, loss_fn)
            self.history_.append({"epoch": epoch, "train_loss": total / max(tr.size, 1), "val_loss": val_loss})
            if self.verbose:
                print(self.history_[-1])
            if val_loss < best - 1e-6:
                best, bad = val_loss, 0
                best_state = copy.deepcopy(self.net_.state_dict())
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.best_val_loss_ = best
        self.classes_ = np.array([False, True])
        return self

    @staticmethod
    def _batch(x: torch.Tensor, idx, dev) -> torch.Tensor:
        return to_float(x[idx], dev)

    @torch.no_grad()
    def _loss(self, a, b, yt, idx, loss_fn) -> float:
        if idx.size == 0:
            return float("nan")
        logits = self._logits(a[torch.as_tensor(idx)], b[torch.as_tensor(idx)])
        return float(loss_fn(torch.as_tensor(logits), yt[torch.as_tensor(idx)]))

    @torch.no_grad()
    def _logits(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        self.net_.eval()
        out = []
        for start in range(0, a.shape[0], 256):
            sl = slice(start, start + 256)
            out.append(self.net_(self._batch(a, sl, self.device_), self._batch(b, sl, self.device_)).cpu())
        return torch.cat(out).numpy().astype(np.float64)

    def score_pairs(self, images_left, images_right) -> np.ndarray:
        """Same-person logit of each pair (higher = more likely the same person)."""
        if not hasattr(self, "net_"):
            raise RuntimeError("SiameseVerifier is not fitted; call fit_pairs(images_left, images_right, same) first")
        a, b = image_batch(images_left, "images_left", uint8=True), image_batch(images_right, "images_right", uint8=True)
        if a.shape != b.shape:
            raise ValueError(f"left {tuple(a.shape)} and right {tuple(b.shape)} differ in shape")
        return self._logits(a, b)

    def predict_proba(self, images_left, images_right) -> np.ndarray:
        """(n, 2) probabilities of [different, same], as scikit-learn classifiers return."""
        p = 1.0 / (1.0 + np.exp(-self.score_pairs(images_left, images_right)))
        return np.stack([1 - p, p], axis=1)

    def predict_pairs(self, images_left, images_right) -> np.ndarray:
        """Same person where the logit is positive (probability above 1/2)."""
        return self.score_pairs(images_left, images_right) > 0


def siamese_pairs(train_images, train_pairs, test_images, test_pairs, *, n_boot: int = 0, seed: int = 0,
                  **verifier_options):
    """Train a `SiameseVerifier` on the training pairs and score the test pairs: the baseline's
    one protocol step, shared by notebook 07 (held-out identities) and the verification
    benchmark (each View 2 fold).

    `train_pairs` / `test_pairs` are pair tables (left, right, same) indexing rows of
    `train_images` / `test_images` (one array may serve both). Returns (metrics, test scores,
    fitted verifier); the metrics are `roc.verification_metrics`, the accept threshold chosen
    on the training pairs' scores.
    """
    def side(images, pairs, column):  # pandas 3 arrays are read-only: copy before torch reads them
        return torch.as_tensor(images)[torch.as_tensor(pairs[column].to_numpy().copy())]

    net = SiameseVerifier(seed=seed, **verifier_options).fit_pairs(
        side(train_images, train_pairs, "left"), side(train_images, train_pairs, "right"),
        train_pairs["same"].to_numpy())
    s_train = net.score_pairs(side(train_images, train_pairs, "left"), side(train_images, train_pairs, "right"))
    s_test = net.score_pairs(side(test_images, test_pairs, "left"), side(test_images, test_pairs, "right"))
    metrics = verification_metrics(test_pairs["same"].to_numpy(), s_test, train_pairs["same"].to_numpy(), s_train,
                                   n_boot=n_boot, seed=seed)
    return metrics, s_test, net
