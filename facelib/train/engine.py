"""`fit`: the one training loop behind notebooks and `python -m facelib train`.

Built for in-memory face sets on a CPU first: the uint8 images are indexed with a
seeded permutation per batch and turned into floats there (no DataLoader, no
per-image Python work), and the model's own `training_step` does the update (so
FactorVAE's two-optimizer step is the model's business). Around it the loop adds
device and precision choice, a validation split, history, checkpoints, exact
resume and a NaN/inf guard.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facelib.utils import seed_everything, select_device

from .checkpoint import (
    CheckpointError,
    checkpoint_complete,
    dataset_summary,
    load_checkpoint,
    load_state_into,
    rng_states,
    run_lock,
    save_checkpoint,
    set_rng_states,
)
from .config import SPLIT_FIELDS, TrainConfig

__all__ = ["fit", "FitResult", "TrainingDivergedError", "resolve_precision", "check_out_folder", "CHECKPOINT_NAME",
           "describe_checkpoint"]

#: File name of the checkpoint inside a run folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: Validation terms reported in the history (those the model's loss returns). Signs and
#: units as in `facelib.models.units`: loss, recon_nll and bits_per_dim are costs (lower is
#: better), elbo_nats a log-likelihood bound in nats per image (higher is better), kl the rate.
VAL_TERMS = ("loss", "elbo_nats", "recon_nll", "kl", "bits_per_dim")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint (if any) is left untouched."""

    def __init__(self, message: str, *, epoch: int, step: int, terms: dict[str, float],
                 checkpoint: Path | None, history: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.terms = epoch, step, terms
        self.checkpoint, self.history = checkpoint, history


@dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
        model: the trained model (in eval mode, on the training device).
        history: one row per epoch: train_* term means, val_* terms (`VAL_TERMS`; 8-bit scale,
            signs as in `facelib.models.units`), lr, time_s, images_per_s.
        checkpoint: path of the last checkpoint written, or None when `out` was None.
        last: the last history row as a dict.
        best: the history row with the lowest val_loss (train_loss without validation).
        step_history: per-step terms when `history_every_step`, else None.
        config: the TrainConfig used; device / precision: what was actually used.
        stopped: "epochs" or "max_steps".
    """

    model: torch.nn.Module
    history: pd.DataFrame
    checkpoint: Path | None
    last: dict[str, Any]
    best: dict[str, Any]
    config: TrainConfig
    device: str
    precision: str
    stopped: str = "epochs"
    step_history: pd.DataFrame | None = None


# -- device and precision ---------------------------------------------------------------------
def _cpu_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without mkldnn
        return False


def resolve_precision(precision: str, device: torch.device) -> tuple[str, torch.dtype | None, bool]:
    """(name, autocast dtype or None, use GradScaler) for a precision setting on a device."""
    kind = device.type
    if precision == "auto":
        return ("fp16", torch.float16, True) if kind == "cuda" else ("fp32", None, False)
    if precision == "fp32":
        return "fp32", None, False
    if precision == "fp16":
        if kind != "cuda":
            raise ValueError(f"precision 'fp16' needs a CUDA device (got {kind}); use 'bf16' or 'fp32'")
        return "fp16", torch.float16, True
    if precision == "bf16":
        if kind == "cpu" and not _cpu_bf16_supported():
            raise ValueError("precision 'bf16' asked for, but this CPU has no bf16 support; use 'fp32'")
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision 'bf16' asked for, but this GPU has no bf16 support; use 'fp16' or 'fp32'")
        return "bf16", torch.bfloat16, False
    raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")


def auto_channels_last(device: torch.device, amp_dtype: torch.dtype | None) -> bool:
    """NHWC where it is the faster layout: cuDNN always; oneDNN on the CPU only under bf16
    autocast (benchmarks/train_throughput.py, 2-core EPYC: bf16 1,660 img/s NHWC vs 1,450
    NCHW, but fp32 940 NHWC vs 1,140 NCHW); never on MPS."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and amp_dtype == torch.bfloat16


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
    is_grouped_model = getattr(model, "name", None) == "modvae" or bool(getattr(model, "needs_groups", False))
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
    per_batch = config.groups_per_batch or max(1, config.batch_size // size)
    return _Grouping(groups, varying, size, per_batch)


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

    def __call__(self, item: Any) -> dict[str, Any]:
        if self.grouping is None:
            idx, group = item, None
        else:
            idx, group = item
        x = self.images[idx.to(self.images.device)]
        if x.device != self.device:
            if self.pin:
                x = x.pin_memory()
            x = x.to(self.device, non_blocking=True)
        x = x.float().div_(255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        batch: dict[str, Any] = {"x": x}
        if group is not None:
            batch["group"] = group.to(self.device, non_blocking=True)
            batch["varying"] = [str(v) for v in self.grouping.varying[idx.numpy()]]
        return batch


# -- helpers ------------------------------------------------------------------------------------
def _check_model_fits_data(model: torch.nn.Module, dataset: Any) -> None:
    cfg = getattr(model, "config", None)
    size = getattr(cfg, "image_size", None)
    channels = getattr(cfg, "channels", None)
    h, w = dataset.image_size
    if size is not None:
        want = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if want != (h, w):
            raise ValueError(
                f"model expects {want[0]}x{want[1]} images, data set {dataset.name!r} has {h}x{w}; "
                f"build the model with image_size={h} or load the data at the model's size"
            )
    if channels is not None and channels != dataset.channels:
        raise ValueError(
            f"model expects {channels} channel(s), data set {dataset.name!r} has {dataset.channels}; "
            f"build the model with channels={dataset.channels}"
        )


def _finite(terms: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in terms.values())


def _nonfinite_weights(model: torch.nn.Module) -> str | None:
    """Name of the first parameter holding NaN/inf, or None."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p.detach()).all()):
            return name
    return None


def _fmt_terms(terms: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in terms.items())


def _show_progress(config: TrainConfig) -> bool:
    if not config.progress:
        return False
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def _make_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", leave=True)


def _evaluate(model, feeder, plan, autocast, step: int, seed: int, device: torch.device) -> dict[str, float]:
    """Validation means of the loss terms; runs on a forked RNG so training is unaffected."""
    if not plan:
        return {}
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            for item in plan:
                batch = feeder(item)
                with autocast():
                    terms = model.loss(batch, step)
                b = batch["x"].shape[0]
                for k in VAL_TERMS:
                    if k in terms:
                        v = terms[k].detach().float() * b
                        sums[k] = sums[k] + v if k in sums else v
                count += b
    finally:
        model.train(was_training)
    return {f"val_{k}": float(v) / count for k, v in sums.items()}


def _lr(optimizers: list[torch.optim.Optimizer]) -> float:
    return float(optimizers[0].param_groups[0]["lr"]) if optimizers else float("nan")


def check_out_folder(config: TrainConfig) -> Path | None:
    """The checkpoint path of `config.out` (None without one), refusing to replace one silently.

    Raises FileExistsError when a checkpoint is there and neither `resume` nor `overwrite`
    is set; the command line calls this before loading any data, to fail fast.
    """
    if not config.out:
        return None
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out={str(out)!r} is a file; out names a run folder (checkpoint.pt goes inside)")
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and not config.resume and not config.overwrite:
        raise FileExistsError(
            f"{ckpt_path} already exists; pass resume=True (--resume) to continue that run, "
            "a new out folder, or overwrite=True (--overwrite) to replace it"
        )
    return ckpt_path


def describe_checkpoint(out: str | Path | None) -> str:
    """What is in run folder `out` for a user who stopped a run: the checkpoint and its progress."""
    if not out:
        return "nothing was saved (no out folder)"
    path = Path(out) / CHECKPOINT_NAME
    if not path.exists():
        return f"no checkpoint was written to {out} yet, so there is nothing to resume; rerun from the start"
    try:
        ckpt = load_checkpoint(path)
    except (CheckpointError, OSError) as exc:
        return f"{path} cannot be read ({str(exc).splitlines()[0]})"
    planned = (ckpt.get("train_config") or {}).get("epochs", "?")
    state = "finished" if checkpoint_complete(ckpt) else "unfinished"
    return (f"the last checkpoint is {path} ({state}: epoch {ckpt.get('epoch', 0)} of {planned}, "
            f"step {ckpt.get('step', 0)}); rerun with --resume to continue")


def _data_mismatch(stored: dict[str, Any], dataset: Any) -> list[str]:
    """How the data set a checkpoint saw differs from `dataset` (name, options, size, shape, content)."""
    now = dataset_summary(dataset) or {}
    out = []
    for key in ("name", "n", "shape", "n_identities"):
        if key in stored and stored.get(key) != now.get(key):
            out.append(f"{key} {stored.get(key)!r} vs {now.get(key)!r}")
    old_opts = (stored.get("meta") or {}).get("options")
    new_opts = (now.get("meta") or {}).get("options")
    if old_opts is not None and new_opts is not None and old_opts != new_opts:
        out.append(f"options {old_opts} vs {new_opts}")
    if stored.get("digest") and stored.get("digest") != now.get("digest") and not out:
        out.append("the images or labels differ (content digest)")
    return out


# -- fit -----------------------------------------------------------------------------------------
def fit(model: torch.nn.Module, dataset: Any, config: TrainConfig | None = None, **overrides: Any) -> FitResult:
    """Train `model` in place on `dataset` (a FaceDataset); keyword overrides change config fields.

    The model is moved to the chosen device (channels-last where that is faster) and left
    there in eval mode. Global RNGs are seeded from `config.seed`, so a run is reproducible.

    Writes `out/checkpoint.pt` (and `out/history.csv`) when `config.out` is set; refuses
    to replace an existing checkpoint unless `resume=True` (continue it) or `overwrite=True`.
    Raises `TrainingDivergedError` on a NaN/inf loss, keeping the last good checkpoint.
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if overrides:
        config = config.replace(**overrides)
    images = getattr(dataset, "images", None)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError("dataset must be a facelib FaceDataset (uint8 images N x C x H x W); use facelib.data.load")
    if not hasattr(model, "training_step") or not hasattr(model, "configure_optimizers"):
        raise TypeError(f"{type(model).__name__} is not a facelib model; build one with facelib.models.build_model")
    _check_model_fits_data(model, dataset)

    device = select_device(config.device)
    precision, amp_dtype, use_scaler = resolve_precision(config.precision, device)
    channels_last = (auto_channels_last(device, amp_dtype) if config.channels_last == "auto"
                     else bool(config.channels_last))

    ckpt_path = check_out_folder(config)
    lock = run_lock(ckpt_path.parent) if ckpt_path is not None else contextlib.nullcontext()
    with lock:  # one writer per run folder, held until the last checkpoint is written
        ckpt_path = check_out_folder(config)  # again: another run may have finished meanwhile
        return _fit_locked(model, dataset, config, device, precision, amp_dtype, use_scaler, channels_last,
                           ckpt_path)


def _fit_locked(model, dataset, config, device, precision, amp_dtype, use_scaler, channels_last,
                ckpt_path) -> FitResult:
    resume_from = None
    if ckpt_path is not None and ckpt_path.exists() and config.resume:
        resume_from = load_checkpoint(ckpt_path)
    elif config.resume:
        warnings.warn(f"resume=True but there is no checkpoint at {ckpt_path}; starting a new run", stacklevel=2)

    grouping = _grouping(model, dataset, config)
    train_idx, val_idx = _split(dataset, grouping, config)
    if train_idx.size == 0:
        raise ValueError(f"{dataset.name}: no training images left after the validation split")

    old_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        return _run(model, dataset, config, device, precision, amp_dtype, use_scaler, channels_last,
                    ckpt_path, resume_from, grouping, train_idx, val_idx)
    finally:
        if config.num_threads:
            torch.set_num_threads(old_threads)


def _run(model, dataset, config, device, precision, amp_dtype, use_scaler, channels_last,
         ckpt_path, resume_from, grouping, train_idx, val_idx) -> FitResult:
    seed_everything(config.seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if hasattr(model, "set_dataset_size"):
        model.set_dataset_size(int(train_idx.size))
    optimizers = list(model.configure_optimizers(config.lr))
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None

    history: list[dict[str, Any]] = []
    step_history: list[dict[str, Any]] = []
    start_epoch, start_batch, step = 0, 0, 0
    sums: dict[str, float] = {}
    seen = 0
    if resume_from is not None:
        stored = resume_from.get("train_config") or {}
        changed = {k: (stored.get(k), getattr(config, k)) for k in SPLIT_FIELDS
                   if k in stored and stored.get(k) != getattr(config, k)}
        if changed:
            raise ValueError(
                f"cannot resume {ckpt_path}: {', '.join(f'{k} was {a!r}, now {b!r}' for k, (a, b) in changed.items())}; "
                "these decide the split and batch order - keep them, or start a new out folder"
            )
        ds = resume_from.get("dataset") or {}
        differs = _data_mismatch(ds, dataset) if ds else []
        if differs:
            raise ValueError(
                f"cannot resume {ckpt_path}: it was trained on {ds.get('name')!r} (n={ds.get('n')}, shape "
                f"{ds.get('shape')}), not on this data set {getattr(dataset, 'name', '?')!r} "
                f"(differs in {'; '.join(differs)}); resume with the same data and options, or train "
                "into a new out folder"
            )
        load_state_into(model, resume_from)
        states = resume_from.get("optimizer_states") or []
        if len(states) != len(optimizers):
            raise CheckpointError(f"{ckpt_path} holds {len(states)} optimizer state(s), the model uses {len(optimizers)}")
        stored_lr = stored.get("lr", config.lr)
        for opt, state in zip(optimizers, states):
            opt.load_state_dict(state)
            if stored_lr != config.lr:  # a changed lr applies to every optimizer in proportion
                for g in opt.param_groups:
                    g["lr"] = g["lr"] * config.lr / stored_lr
        if scaler is not None and resume_from.get("grad_scaler"):
            scaler.load_state_dict(resume_from["grad_scaler"])
        position = resume_from.get("position") or {}
        hist = resume_from.get("history") or {}
        history = pd.DataFrame(hist).to_dict(orient="records") if hist else []
        step_history = list(resume_from.get("step_history") or [])
        start_epoch = int(resume_from.get("epoch", 0))
        step = int(resume_from.get("step", 0))
        start_batch = int(position.get("batch", 0))
        if start_batch:
            sums = dict(position.get("sums") or {})
            seen = int(position.get("seen", 0))
        set_rng_states(resume_from.get("rng_states") or {})

    feeder = _Feeder(dataset, grouping, device, channels_last)
    val_plan = _val_plan(val_idx, grouping, config)
    autocast = ((lambda: torch.autocast(device_type=device.type, dtype=amp_dtype)) if amp_dtype is not None
                else contextlib.nullcontext)
    # Models that take an `autocast` factory run only the forward pass under it (backward outside).
    step_takes_autocast = "autocast" in inspect.signature(model.training_step).parameters
    step_kwargs = {"autocast": autocast} if (step_takes_autocast and amp_dtype is not None) else {}
    plan_len = len(_epoch_plan(train_idx, grouping, config, 0))
    total = config.epochs * plan_len
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    bar = _make_bar(total, min(step, total), _show_progress(config))
    last_ckpt: Path | None = ckpt_path if resume_from is not None else None
    stopped = "epochs"
    model.train()

    def checkpoint(epoch_done: int, batch_in_epoch: int, partial_row: bool, completed: bool) -> None:
        nonlocal last_ckpt
        if ckpt_path is None:
            return
        hist_df = pd.DataFrame(history)
        save_checkpoint(
            ckpt_path, model, optimizers=optimizers, train_config=config, history=hist_df,
            epoch=epoch_done, step=step, dataset=dataset, rng=rng_states(),
            extra={
                "completed": completed,
                "planned": {"epochs": config.epochs, "max_steps": config.max_steps},
                "position": {"batch": batch_in_epoch, "partial_row": partial_row,
                             "sums": dict(sums), "seen": seen},
                "grad_scaler": scaler.state_dict() if scaler is not None else None,
                "step_history": step_history,
                "precision": precision,
                "device": str(device),
            },
        )
        hist_df.to_csv(ckpt_path.with_name("history.csv"), index=False)
        last_ckpt = ckpt_path

    def diverged(epoch: int, terms: dict[str, float], where: str, at_step: int) -> TrainingDivergedError:
        if bar is not None:
            bar.close()
        kept = (f"the last good checkpoint is kept at {last_ckpt}" if last_ckpt is not None
                else "no checkpoint was written yet" + ("" if ckpt_path else " (out=None)"))
        bad = [k for k, v in terms.items() if not math.isfinite(v)]
        return TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}, step {at_step} ({where}): non-finite {', '.join(bad)} "
            f"in loss terms {{{_fmt_terms(terms)}}}; {kept}. Lower the learning rate (lr={config.lr:g}), "
            f"use precision='fp32' (now {precision}), or check the data for bad pixels",
            epoch=epoch + 1, step=at_step, terms=terms, checkpoint=last_ckpt, history=pd.DataFrame(history),
        )

    try:
        for epoch in range(start_epoch, config.epochs):
            if config.max_steps is not None and step >= config.max_steps:
                stopped = "max_steps"
                break
            plan = _epoch_plan(train_idx, grouping, config, epoch)
            first = start_batch if epoch == start_epoch else 0
            if first == 0:
                sums, seen = {}, 0
            t0 = time.perf_counter()
            seen_now = 0
            b_index = first
            for b_index in range(first, len(plan)):
                if config.max_steps is not None and step >= config.max_steps:
                    stopped = "max_steps"
                    break
                batch = feeder(plan[b_index])
                try:
                    if step_takes_autocast or amp_dtype is None:
                        terms = model.training_step(batch, optimizers, step, grad_scaler=scaler, **step_kwargs)
                    else:
                        with autocast():
                            terms = model.training_step(batch, optimizers, step, grad_scaler=scaler)
                except AssertionError as exc:
                    # GradScaler.update() asserts when a step skipped a non-finite loss (no scale() call).
                    if scaler is None or "scale" not in str(exc) and "inf checks" not in str(exc):
                        raise
                    raise diverged(epoch, {"loss": float("nan")}, f"batch {b_index + 1} of {len(plan)}",
                                   step + 1) from exc
                terms = {k: float(v) for k, v in terms.items()}
                if not _finite(terms):
                    raise diverged(epoch, terms, f"batch {b_index + 1} of {len(plan)}", step + 1)
                step += 1
                n = batch["x"].shape[0]
                seen += n
                seen_now += n
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v * n
                if config.history_every_step:
                    step_history.append({"epoch": epoch + 1, "step": step, **terms})
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 1 or b_index == len(plan) - 1:
                        bar.set_postfix_str(f"ep {epoch + 1} " + _fmt_terms(
                            {k: terms[k] for k in ("loss", "recon_nll", "kl") if k in terms}))
            else:
                b_index = len(plan)
            train_time = time.perf_counter() - t0
            partial = b_index < len(plan)
            if seen_now == 0:
                break
            val = _evaluate(model, feeder, val_plan, autocast, step, _seed_for(config.seed, epoch, 31), device)
            if val and not _finite(val):
                raise diverged(epoch, val, "validation after the epoch", step)
            if history and history[-1].get("epoch") == epoch + 1 and history[-1].get("partial"):
                history.pop()  # the row of a run stopped mid-epoch, now completed
            history.append({
                "epoch": epoch + 1, "step": step,
                **{f"train_{k}": v / seen for k, v in sums.items()},
                **val,
                "lr": _lr(optimizers),
                "time_s": train_time,
                "images_per_s": seen_now / train_time if train_time > 0 else float("nan"),
                "partial": partial,
            })
            done_epochs = epoch if partial else epoch + 1
            final = (epoch + 1 == config.epochs or partial
                     or (config.max_steps is not None and step >= config.max_steps))
            if final or (epoch + 1) % config.checkpoint_every == 0:
                bad = _nonfinite_weights(model)
                if bad:  # possible without a NaN loss (val_fraction=0): never save such weights
                    raise diverged(epoch, {f"weights of {bad}": float("nan")}, "end of epoch", step)
                done = (epoch + 1 == config.epochs and not partial) or (
                    config.max_steps is not None and step >= config.max_steps)
                checkpoint(done_epochs, b_index if partial else 0, partial, done)
            if partial:
                break
    finally:
        if bar is not None:
            bar.close()

    model.eval()
    hist_df = pd.DataFrame(history)
    last = hist_df.iloc[-1].to_dict() if len(hist_df) else {}
    key = "val_loss" if "val_loss" in hist_df else "train_loss"
    best = hist_df.loc[hist_df[key].idxmin()].to_dict() if len(hist_df) and key in hist_df else last
    return FitResult(
        model=model, history=hist_df, checkpoint=last_ckpt, last=last, best=best, config=config,
        device=str(device), precision=precision, stopped=stopped,
        step_history=pd.DataFrame(step_history) if config.history_every_step else None,
    )
