"""Batches of an in-memory face set: the validation split, the seeded batch plan of each epoch
(plain, or whole ModVAE groups), and the feeder that turns a batch's indices into model input."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facelib.data.pixels import to_float

from .config import TrainConfig

def _seed_for(*parts: int) -> int:
    """A 63-bit seed that depends only on `parts` (seed, epoch, ...)."""
    return int(np.random.SeedSequence([int(p) % 2**63 for p in parts]).generate_state(1, np.uint64)[0] >> 1)


# -- batches ----------------------------------------------------------------------------------------
@dataclass
class _Grouping:
    groups: np.ndarray  # group id per image of the full data set
    varying: np.ndarray  # varying factor name per image
    group_size: int
    groups_per_batch: int


def _grouping(model: torch.nn.Module, dataset: Any, config: TrainConfig) -> _Grouping | None:
    is_grouped_model = bool(getattr(model, "trains_on_groups", False))
    mode = config.group_batches
    if mode is False:  # a grouped model then trains on plain batches (ModVAE: as a beta-VAE)
        return None
    if mode == "auto" and dataset.groups is None and not is_grouped_model:
        return None
    if dataset.groups is not None:
        groups = np.asarray(dataset.groups, dtype=np.int64)
        varying = (np.asarray(dataset.group_varying, dtype=object) if dataset.group_varying is not None
                   else np.full(len(dataset), "nuisance", dtype=object))
        _, counts = np.unique(groups, return_counts=True)
        default_size = int(np.bincount(counts).argmax())
    else:
        groups = np.asarray(dataset.identity, dtype=np.int64)
        if (groups >= 0).sum() == 0:
            raise ValueError(
                f"{dataset.name}: grouped training needs identity labels or dataset.groups, and this data set "
                "has neither; use a labelled set, or group_batches=False to train on plain batches"
            )
        varying = np.full(len(dataset), "nuisance", dtype=object)
        default_size = 4
    size = config.group_size or max(2, default_size)
    if config.group_size:
        _check_group_size(dataset, groups, size)
    per_batch = config.groups_per_batch or max(1, config.batch_size // size)
    return _Grouping(groups, varying, size, per_batch)


def _check_group_size(dataset: Any, groups: np.ndarray, size: int) -> None:
    """Refuse a group size no group reaches (every group would be padded with repeats of its own
    images), and say so when most images are in groups smaller than it."""
    _, counts = np.unique(groups[groups >= 0], return_counts=True)
    if counts.size == 0:
        return
    largest = int(counts.max())
    if size > largest:
        raise ValueError(
            f"group_size {size} is larger than the largest group of {getattr(dataset, 'name', 'the data set')} "
            f"({largest} images); every group would repeat its images to fill {size} places: use "
            f"group_size <= {largest} (most groups have {int(np.median(counts))})")
    short = counts < size
    if counts[short].sum() > counts.sum() / 2:
        warnings.warn(
            f"group_size {size}: {int(short.sum())} of {counts.size} groups of {getattr(dataset, 'name', 'the data')} "
            f"have fewer images and are topped up with repeats of their own images; a smaller group_size "
            f"(most groups have {int(np.median(counts))}) repeats less", stacklevel=3)


def _split(dataset: Any, grouping: _Grouping | None, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, val) image indices; whole groups go one way when grouped."""
    n = len(dataset)
    usable = np.arange(n) if grouping is None else np.flatnonzero(grouping.groups >= 0)
    rng = np.random.default_rng(_seed_for(config.seed, 7919))
    if config.val_fraction == 0:
        return usable, np.empty(0, dtype=np.int64)
    if grouping is None:
        n_val = min(max(1, int(round(config.val_fraction * usable.size))), usable.size - 1)
        perm = rng.permutation(usable)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    ids = np.unique(grouping.groups[usable])
    if ids.size < 2:
        raise ValueError("a grouped validation split needs at least two groups; set val_fraction=0")
    n_val = min(max(1, int(round(config.val_fraction * ids.size))), ids.size - 1)
    val_ids = rng.choice(ids, size=n_val, replace=False)
    is_val = np.isin(grouping.groups[usable], val_ids)
    return usable[~is_val], usable[is_val]


def _plain_batches(idx: np.ndarray, batch_size: int, seed: int, shuffle: bool) -> list[torch.Tensor]:
    t = torch.as_tensor(idx, dtype=torch.long)
    if shuffle:
        t = t[torch.randperm(t.numel(), generator=torch.Generator().manual_seed(seed))]
    batches = list(t.split(batch_size))
    if shuffle and len(batches) > 1 and batches[-1].numel() < batch_size:
        batches.pop()  # a short last batch would weigh its few images too much
    return batches


def _group_batches(idx: np.ndarray, grouping: _Grouping, seed: int, shuffle: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of `groups_per_batch` chunks of `group_size` images from one group each.

    Each group's members are shuffled and cut into chunks of `group_size` (the last
    chunk is topped up from the same group), so an epoch sees every image about once.
    Groups with a single image are skipped. The loop runs per group, not per image.
    """
    rng = np.random.default_rng(seed)
    m = grouping.group_size
    gid = grouping.groups[idx]
    order = np.lexsort((rng.random(idx.size) if shuffle else np.arange(idx.size), gid))
    idx_s, gid_s = idx[order], gid[order]
    cuts = np.flatnonzero(np.diff(gid_s)) + 1
    chunks = []
    for members in np.split(idx_s, cuts):
        if members.size < 2:
            continue
        pad = (-members.size) % m
        if pad:
            members = np.concatenate([members, rng.choice(members, size=pad, replace=pad > members.size)])
        chunks.append(members.reshape(-1, m))
    if not chunks:
        raise ValueError("no group has two or more images; grouped training needs groups of at least two")
    chunks_arr = np.concatenate(chunks)
    if shuffle:
        chunks_arr = chunks_arr[rng.permutation(len(chunks_arr))]
    k = grouping.groups_per_batch
    out = []
    for start in range(0, len(chunks_arr), k):
        part = chunks_arr[start:start + k]
        if shuffle and len(part) < k and start > 0:
            break
        out.append((torch.as_tensor(part.reshape(-1), dtype=torch.long),
                    torch.arange(len(part)).repeat_interleave(m)))
    return out


def _epoch_plan(idx: np.ndarray, grouping: _Grouping | None, config: TrainConfig, epoch: int) -> list:
    seed = _seed_for(config.seed, epoch)
    if grouping is None:
        return _plain_batches(idx, config.batch_size, seed, shuffle=True)
    return _group_batches(idx, grouping, seed, shuffle=True)


def _val_plan(idx: np.ndarray, grouping: _Grouping | None, config: TrainConfig) -> list:
    if idx.size == 0:
        return []
    if grouping is None:
        return _plain_batches(idx, config.batch_size, 0, shuffle=False)
    return _group_batches(idx, grouping, _seed_for(config.seed, 104729), shuffle=False)


def _random_flips(x: torch.Tensor, group: torch.Tensor | None, seed: int) -> torch.Tensor:
    """x with a random half of its images (or of its groups: a group flips as a whole) mirrored."""
    gen = torch.Generator().manual_seed(seed)
    if group is None:
        mask = torch.rand(x.shape[0], generator=gen) < 0.5
    else:
        ids, inverse = torch.unique(group.cpu(), return_inverse=True)
        mask = (torch.rand(len(ids), generator=gen) < 0.5)[inverse]
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(-1), x)


def _random_shifts(x: torch.Tensor, group: torch.Tensor | None, seed: int, max_shift: int) -> torch.Tensor:
    """x with every image (or group: a group moves as a whole) translated by a random whole number
    of pixels in [-max_shift, max_shift] along each axis, the border pixels repeated into the gap."""
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0] if group is None else None
    if group is not None:
        ids, inverse = torch.unique(group.cpu(), return_inverse=True)
        n = len(ids)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    if group is not None:
        offsets = offsets[inverse]
    offsets = offsets.to(x.device)
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, mode="replicate")
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (B, H): padded row of each output row
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)
    b = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class _Feeder:
    """Turns index batches into model batches on the device (uint8 -> float per batch)."""

    def __init__(self, dataset: Any, grouping: _Grouping | None, device: torch.device, channels_last: bool):
        images = dataset.images.contiguous()
        self.device, self.channels_last, self.grouping = device, channels_last, grouping
        self.pin = False
        if device.type in ("cuda", "mps"):
            budget = (torch.cuda.get_device_properties(device).total_memory // 4
                      if device.type == "cuda" else 2 * 2**30)
            if images.numel() <= budget:
                images = images.to(device)  # once: uint8 faces are small next to GPU memory
            else:
                self.pin = device.type == "cuda"
        self.images = images

    def __call__(self, item: Any, flip_seed: int | None = None, shift_seed: int | None = None,
                 max_shift: int = 0) -> dict[str, Any]:
        """The model batch of an index batch; with `flip_seed`, a random half of it (of its
        groups, when grouped) flipped left-right, with `shift_seed` every image (group) moved by
        up to `max_shift` pixels, each drawn from its seed alone."""
        if self.grouping is None:
            idx, group = item, None
        else:
            idx, group = item
        x = self.images[idx.to(self.images.device)]
        if x.device != self.device:
            if self.pin:
                x = x.pin_memory()
            x = x.to(self.device, non_blocking=True)
        x = to_float(x)
        if flip_seed is not None and len(x):
            x = _random_flips(x, group, flip_seed)
        if shift_seed is not None and max_shift > 0 and len(x):
            x = _random_shifts(x, group, shift_seed, max_shift)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        batch: dict[str, Any] = {"x": x}
        if group is not None:
            batch["group"] = group.to(self.device, non_blocking=True)
            batch["varying"] = [str(v) for v in self.grouping.varying[idx.numpy()]]
        return batch
