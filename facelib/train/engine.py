"""`fit`: the one training loop behind notebooks and `python -m facelib train`.

Built for in-memory face sets on a CPU first: the uint8 images are indexed with a
seeded permutation per batch and turned into floats there (no DataLoader, no
per-image Python work). A step (`train_step`) minimises each of the model's objectives
(`model.objectives()`, one per optimizer) in turn, each in torch's DistributedDataParallel
when data-parallel, so gradient averaging is torch's, not the model's. Around it the loop adds
device and precision choice, a validation split, history, checkpoints, exact
resume and a NaN/inf guard.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from facelib.files import StagedUpdate, recover_staged
from facelib.utils import seed_everything, select_device

from . import distributed
from .batches import _epoch_plan, _Feeder, _grouping, _seed_for, _split, _val_plan
from .callbacks import EpochEnd
from .checkpoint import (
    NOT_IDENTITY,
    CheckpointError,
    checkpoint_complete,
    dataset_summary,
    load_checkpoint,
    load_state_into,
    rng_states,
    run_lock,
    save_checkpoint,
    set_rng_states,
    weights_digest,
)
from .config import SPLIT_FIELDS, TrainConfig, kl_weight, lr_factor
from .precision import _channels_last, _Precision, resolve_precision

__all__ = ["fit", "train_step", "FitResult", "TrainingDivergedError", "check_out_folder", "CHECKPOINT_NAME", "BEST_NAME", "describe_checkpoint"]

#: File name of the checkpoint inside a run folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: File name of the best-validation model beside it (`TrainConfig.keep_best`).
BEST_NAME = "best.pt"
#: File name of the per-epoch history beside it.
HISTORY_NAME = "history.csv"
#: The files of a run folder that a new run replaces (overwrite=True) as one transaction at its
#: first checkpoint; spec.yaml is `experiment.run`'s record of the run's spec (written at its end).
RUN_FILES = (CHECKPOINT_NAME, BEST_NAME, HISTORY_NAME, "spec.yaml")
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

    def __reduce__(self):  # pickles (from a data-parallel process to the caller) with its fields
        return (functools.partial(type(self), epoch=self.epoch, step=self.step, terms=self.terms,
                                  checkpoint=self.checkpoint, history=self.history), (str(self),))


@dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
        model: the trained model (in eval mode, on the training device).
        history: one row per epoch: train_* term means, val_* terms (`VAL_TERMS`; 8-bit scale,
            signs as in `facelib.models.units`), lr, time_s, images_per_s.
        checkpoint: path of the last checkpoint written, or None when `out` was None.
        best_checkpoint: path of best.pt (the lowest validation loss; `keep_best`), or None.
        last: the last history row as a dict.
        best: the history row with the lowest val_loss (train_loss without validation).
        step_history: per-step terms when `history_every_step`, else None.
        config: the TrainConfig used; device / precision: what was actually used.
        stopped: "epochs" or "max_steps".
        world_size / rank: data-parallel processes of the run, and which of them returned this.
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
    world_size: int = 1
    rank: int = 0
    best_checkpoint: Path | None = None


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

    return tqdm(total=total, initial=initial, unit="step", leave=True)


def _evaluate(model, feeder, plan, autocast, step: int, seed: int, device: torch.device,
              ranks: distributed.Ranks = distributed.Ranks()) -> dict[str, float]:
    """Validation means of the loss terms (over every rank's share of the batches); runs on a
    forked RNG so training is unaffected."""
    if not plan:
        return {}
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    try:
        with _forked_rng(device), torch.inference_mode():
            torch.manual_seed(seed)
            for item in plan:
                item = ranks.shard(item)
                if (item if isinstance(item, torch.Tensor) else item[0]).numel() == 0:
                    continue
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
    if ranks.active:
        keys = [k for k in VAL_TERMS if k in sums] if sums else []
        keys = ranks.gather(keys)[0]  # rank 0's terms (every rank computes the same ones)
        total = ranks.sum(torch.stack([torch.tensor(float(count))] + [sums[k].cpu().double() if k in sums else torch.tensor(0.0) for k in keys]))
        count, sums = float(total[0]), dict(zip(keys, total[1:]))
    return {f"val_{k}": float(v) / count for k, v in sums.items()}


def _forked_rng(device: torch.device):
    """torch's RNG (CPU, and `device` on CUDA) forked for the block: what runs there leaves the training's alone."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


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
        raise NotADirectoryError(f"out={str(out)!r} is a file, not a folder; out names a run folder "
                                 "(checkpoint.pt goes inside): give another path or move the file away")
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and not config.resume and not config.overwrite:
        raise FileExistsError(
            f"{ckpt_path} already exists; pass resume=True (--resume) to continue that run, "
            "a new out folder, or overwrite=True (--overwrite) to replace it"
        )
    return ckpt_path


def describe_checkpoint(out: str | Path | None, replacing_since: float | None = None) -> str:
    """What is in run folder `out` for a user who stopped a run: the checkpoint and its progress.

    `replacing_since`: the time (`time.time()`) a run that replaces the one in `out` (overwrite)
    started; a checkpoint older than that is the old run's, kept whole, and is described so."""
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
    if replacing_since is not None and path.stat().st_mtime < replacing_since:
        return (f"--overwrite was stopped before the new run's first checkpoint, so nothing was replaced: the old "
                f"run in {out} is kept whole ({path}, {state}: epoch {ckpt.get('epoch', 0)} of {planned}); rerun "
                "with --overwrite to replace it")
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
    same_content = bool(stored.get("digest")) and stored.get("digest") == now.get("digest")
    # options are compared only when the content differs: the same images and labels under
    # renamed loader options (facelib.data's `color` -> `channels`) are the same data
    if old_opts is not None and new_opts is not None and old_opts != new_opts and not same_content:
        out.append(f"options {old_opts} vs {new_opts}")
    if stored.get("digest") and stored.get("digest") != now.get("digest") and not out:
        out.append("the images or labels differ (content digest)")
    return out


# -- fit -----------------------------------------------------------------------------------------
def fit(model: torch.nn.Module, dataset: Any, config: TrainConfig | None = None, *,
        callbacks: Sequence[Callable[[EpochEnd], Any]] = (), change: dict[str, Any] | None = None,
        **overrides: Any) -> FitResult:
    """Train `model` in place on `dataset` (a FaceDataset); keyword overrides change config fields.

    `callbacks` are called after each epoch with an `EpochEnd` (`facelib.train.callbacks`:
    `Snapshots`, `TensorBoard`, or any callable); they never change the training and are not
    stored in the checkpoint.

    The model is moved to the chosen device (channels-last where that is faster) and left
    there in eval mode. Global RNGs are seeded from `config.seed`, so a run is reproducible.

    Writes `out/checkpoint.pt` (and `out/history.csv`) when `config.out` is set; refuses
    to replace an existing checkpoint unless `resume=True` (continue it) or `overwrite=True`.
    Raises `TrainingDivergedError` on a NaN/inf loss, keeping the last good checkpoint.

    A resume continues the same training: every config field that shapes the result (all but
    `NOT_IDENTITY`; the budget may grow under a constant lr schedule) must match the checkpoint's,
    or it is refused naming the fields. `change` ({field: value}, with resume=True) changes some
    deliberately: they are set in the config, and the first history row after the resume records
    them (column "changed", e.g. "lr 0.001 -> 0.005").

    Data-parallel (`facelib.train.distributed`): under torchrun every process calls `fit` and
    trains its share of each global batch; `nproc=N` spawns N such processes from here.
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if overrides:
        config = config.replace(**overrides)
    change = dict(change or {})
    if change:
        if not config.resume:
            raise ValueError(f"change={change} changes a run being resumed; give resume=True (train --resume), or "
                             "set the fields in the config of a new run")
        wrong = sorted(k for k in change if k in NOT_IDENTITY or k not in config.to_dict())
        if wrong:
            raise ValueError(f"change names {wrong}, which are not training fields a resume compares; set them "
                             "in the config directly")
        config = config.replace(**change)
    images = getattr(dataset, "images", None)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError("dataset must be a facelib FaceDataset (uint8 images N x C x H x W); use facelib.data.load")
    if not hasattr(model, "objectives") or not hasattr(model, "configure_optimizers"):
        raise TypeError(f"{type(model).__name__} is not a facelib model; build one with facelib.models.build_model")
    _check_model_fits_data(model, dataset)
    side = int(min(images.shape[-2:]))
    if config.max_shift >= side:
        raise ValueError(f"max_shift={config.max_shift} moves the {side}-pixel faces by their whole size or more: "
                         f"give max_shift < {side} (a few pixels, e.g. {max(1, side // 16)})")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables taking an EpochEnd (facelib.train.callbacks), "
                            f"got {type(callback).__name__}")

    ranks = distributed.from_environment()
    if config.nproc and config.nproc > 1 and not ranks.active:
        return _fit_spawned(model, dataset, config, callbacks, change)
    device = distributed.device_for(select_device(config.device), ranks)
    precision = _Precision.on(config.precision, device)
    channels_last = _channels_last(config, device, precision.amp_dtype)
    ckpt_path = check_out_folder(config)
    distributed.process_group(ranks, device)
    with _run_folder_lock(ckpt_path, ranks), _threads(config.num_threads):
        ckpt_path = check_out_folder(config)  # again: another run may have finished meanwhile
        return _Loop(model, dataset, config, device, precision, channels_last, ckpt_path, ranks, callbacks,
                     change).run()


def _fit_spawned(model: torch.nn.Module, dataset: Any, config: TrainConfig, callbacks: list,
                 change: dict[str, Any]) -> FitResult:
    """`fit` in `config.nproc` local processes; rank 0's weights and history land here."""
    check_out_folder(config)  # fail before starting any process
    distributed.check_batches(config, _grouping(model, dataset, config), distributed.Ranks(world_size=config.nproc))
    if select_device(config.device).type == "cuda" and config.nproc > torch.cuda.device_count():
        raise ValueError(f"nproc={config.nproc} processes on CUDA need as many GPUs, this machine has "
                         f"{torch.cuda.device_count()}; use nproc={torch.cuda.device_count()} or device='cpu'")
    out = distributed.spawn_fit(functools.partial(fit, change=change) if change else fit, model, dataset, config,
                                callbacks)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in out["state_dict"].items()})
    device = torch.device(out["device"])
    model.to(device)
    if _channels_last(config, device, resolve_precision(config.precision, device)[1]):
        model.to(memory_format=torch.channels_last)
    model.eval()
    return FitResult(model=model, history=out["history"], checkpoint=out["checkpoint"], last=out["last"],
                     best=out["best"], config=config, device=out["device"], precision=out["precision"],
                     stopped=out["stopped"], step_history=out["step_history"], world_size=int(config.nproc))


@contextlib.contextmanager
def _run_folder_lock(ckpt_path: Path | None, ranks: distributed.Ranks):
    """One writer per run folder, held until the last checkpoint is written (rank 0 holds it)."""
    with contextlib.ExitStack() as stack:
        error = None
        if ckpt_path is not None and ranks.is_main:
            try:
                stack.enter_context(run_lock(ckpt_path.parent))
            except Exception as exc:  # every rank stops, not only the one that failed
                error = exc
        ranks.raise_if_any(error)
        yield


@contextlib.contextmanager
def _threads(n: int | None):
    """torch CPU threads set to `n` for the duration (unchanged for None)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(old)


@dataclass
class _Progress:
    """Where a run stands (saved and restored with the rest of the resume state by
    `_Loop._training_state` / `_Loop._restore_training_state`)."""

    epoch: int = 0  # epochs finished before this run's first
    batch: int = 0  # first batch of that epoch still to train
    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # image-weighted term sums of the current epoch
    seen: int = 0  # images trained in the current epoch
    history: list[dict[str, Any]] = field(default_factory=list)
    step_history: list[dict[str, Any]] = field(default_factory=list)
    best_val_loss: float = math.inf  # of the model in best.pt (keep_best)
    best_epoch: int = 0


#: Fields a resume may raise to train longer, where the schedule does not depend on them
#: (lr_schedule "constant"; the cosine schedule is spread over the whole budget).
BUDGET_FIELDS = ("epochs", "max_steps")


def resume_differences(stored: dict[str, Any], config: TrainConfig, allowed: Sequence[str] = ()) -> dict[str, tuple]:
    """{field: (stored value, this value)} of every training field that shapes the result (all but
    `NOT_IDENTITY`) where `config` differs from a checkpoint's `stored` train_config, but `allowed`
    (the changes asked for) and the budget where it only extends a constant-schedule run. Fields the
    stored config lacks (older files) take their defaults."""
    old = TrainConfig.from_dict(dict(stored)).to_dict()
    new = config.to_dict()
    skip = set(NOT_IDENTITY) | set(allowed)
    if old.get("lr_schedule") == new.get("lr_schedule") == "constant":
        skip |= set(BUDGET_FIELDS)
    return {k: (old.get(k), new[k]) for k in new if k not in skip and old.get(k) != new[k]}


def _check_resumable(ckpt: dict[str, Any], ckpt_path: Path, config: TrainConfig, dataset: Any,
                     change: Sequence[str] = ()) -> None:
    """Refuse to resume a checkpoint of another training configuration or data set (but the
    fields in `change`, asked for explicitly)."""
    changed = resume_differences(ckpt.get("train_config") or {}, config, change)
    if changed:
        split = [k for k in changed if k in SPLIT_FIELDS]
        said = ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items())
        if split:
            raise ValueError(f"cannot resume {ckpt_path}: {said}; {', '.join(split)} decide the split and batch "
                             "order - keep them, or start a new out folder")
        raise ValueError(
            f"cannot resume {ckpt_path}: {said}; a resume continues the same training - keep the stored values, "
            f"or change them deliberately with change={{{', '.join(f'{k!r}: {b!r}' for k, (a, b) in changed.items())}}} "
            f"(train --resume {' '.join(f'--change {k}={b}' for k, (a, b) in changed.items())}), which the history "
            "records, or start a new out folder"
        )
    ds = ckpt.get("dataset") or {}
    differs = _data_mismatch(ds, dataset) if ds else []
    if differs:
        raise ValueError(
            f"cannot resume {ckpt_path}: it was trained on {ds.get('name')!r} (n={ds.get('n')}, shape "
            f"{ds.get('shape')}), not on this data set {getattr(dataset, 'name', '?')!r} "
            f"(differs in {'; '.join(differs)}); resume with the same data and options, or train "
            "into a new out folder"
        )


def train_step(objectives: list[torch.nn.Module], batch: dict[str, Any],
               optimizers: "torch.optim.Optimizer | list[torch.optim.Optimizer]", step: int = 0, *,
               grad_scaler: "torch.amp.GradScaler | None" = None, autocast: Callable[[], Any] | None = None,
               max_grad_norm: float | None = None,
               ranks: distributed.Ranks = distributed.Ranks()) -> dict[str, float]:
    """One optimisation step: for each objective (`model.objectives()`, or their data-parallel
    wrappers) with its optimizer in turn: the loss terms, backward, clipping, the step.
    Returns every term as a float.

    `autocast` is a zero-argument callable giving the forward pass's context (None in fp32),
    `grad_scaler` a `torch.amp.GradScaler` for fp16. When an objective's loss is not finite
    (in any process), neither it nor a later objective steps, so no weight changes (the caller
    decides to stop); the later terms are still computed for the report. `max_grad_norm`
    clips each objective's gradient norm; the first objective's norm before clipping is
    reported as "grad_norm".
    """
    objectives = list(objectives)
    optimizers = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
    if len(optimizers) != len(objectives):
        raise ValueError(f"the model needs {len(objectives)} optimizer(s) from model.configure_optimizers(lr), "
                         f"got {len(optimizers)}")
    terms: dict[str, torch.Tensor] = {}
    stepping, stepped = True, False
    for i, (objective, opt) in enumerate(zip(objectives, optimizers)):
        minimises = getattr(objective, "module", objective).minimises  # DDP keeps the objective in .module
        opt.zero_grad(set_to_none=True)
        with (autocast() if autocast is not None else contextlib.nullcontext()), torch.set_grad_enabled(stepping):
            out = objective(batch, step)
        batch = {**batch, **{k: v.detach() for k, v in out.items() if v.ndim}}  # FactorVAE's codes, for D
        out = {k: v for k, v in out.items() if not v.ndim}
        loss = out[minimises]
        stepping = stepping and ranks.all_true(bool(torch.isfinite(loss.detach())))
        if stepping:
            (grad_scaler.scale(loss) if grad_scaler is not None else loss).backward()
            if max_grad_norm is not None:
                if grad_scaler is not None:
                    grad_scaler.unscale_(opt)
                params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
                norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                if i == 0:
                    out["grad_norm"] = norm.detach()
            if grad_scaler is not None:
                grad_scaler.step(opt)
            else:
                opt.step()
            stepped = True
        terms.update(out)
    if grad_scaler is not None and stepped:  # update() needs the inf checks of a step taken
        grad_scaler.update()
    return _floats(terms)


def _floats(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """All terms as Python floats with a single device sync."""
    keys = list(terms)
    values = torch.stack([terms[k].detach().float().reshape(()) for k in keys]).tolist()
    return dict(zip(keys, values))


class _Loop:
    """One training run of `fit`: set up, then epochs of steps, validation and checkpoints."""

    def __init__(self, model, dataset, config: TrainConfig, device: torch.device, precision: _Precision,
                 channels_last: bool, ckpt_path: Path | None, ranks: distributed.Ranks, callbacks: list,
                 change: dict[str, Any] | None = None):
        self.model, self.dataset, self.config, self.device = model, dataset, config, device
        self.change = dict(change or {})
        self.changed_note = ""  # "lr 0.001 -> 0.005": the change, for the first history row after it
        self.callbacks = callbacks
        self.precision, self.channels_last, self.ckpt_path, self.ranks = precision, channels_last, ckpt_path, ranks
        self.grouping = _grouping(model, dataset, config)
        distributed.check_batches(config, self.grouping, ranks)
        self.train_idx, self.val_idx = _split(dataset, self.grouping, config)
        if self.train_idx.size == 0:
            raise ValueError(f"{dataset.name}: no training images left after the validation split")
        self.last_ckpt: Path | None = None
        self.stopped = "epochs"
        self.bar = None
        self.replacing: StagedUpdate | None = None

    # -- the run, top to bottom ------------------------------------------------------------
    def run(self) -> FitResult:
        config, model = self.config, self.model
        resume_from = self._checkpoint_to_resume()
        self._prepare_model()
        self.optimizers = list(model.configure_optimizers(config.lr, **(
            {"weight_decay": config.weight_decay} if config.weight_decay else {})))
        self.base_lrs = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]
        self.progress = self._restore_training_state(resume_from) if resume_from is not None else _Progress()
        self.last_ckpt = self.ckpt_path if resume_from is not None else None
        self.replacing = self._replacement(resume_from is not None)
        self.feeder = _Feeder(self.dataset, self.grouping, self.device, self.channels_last)
        self.val_plan = _val_plan(self.val_idx, self.grouping, config)
        plan_len = len(_epoch_plan(self.train_idx, self.grouping, config, 0))
        total = min(config.epochs * plan_len, config.max_steps or config.epochs * plan_len)
        self.total_steps = total
        self.bar = _make_bar(total, min(self.progress.step, total), _show_progress(config) and self.ranks.is_main)
        self.objectives = distributed.data_parallel(model.objectives(), self.optimizers, self.ranks, self.device)
        model.train()
        try:
            for epoch in range(self.progress.epoch, config.epochs):
                if self._max_steps_reached():
                    self.stopped = "max_steps"
                    break
                if not self._epoch(epoch):
                    break
        finally:
            if self.bar is not None:
                self.bar.close()
            if self.replacing is not None:  # stopped (or ended) before the first checkpoint: the old run stays
                self.replacing.discard()
                self.replacing = None
        self._check_ranks_agree()
        return self._result()

    def _replacement(self, resuming: bool) -> StagedUpdate | None:
        """The staged replacement of the run already in the folder (overwrite=True), or None.

        A new run writes its files (`RUN_FILES`) as staged temps beside the old run's until its
        first checkpoint, which replaces them all in one `files.StagedUpdate` commit (the old run's
        files the new one has not written go with it); a run that fails or is stopped before then
        leaves the old run whole, and a killed one leaves temps the next run removes."""
        if self.ckpt_path is None or not self.ranks.is_main:
            return None
        folder = self.ckpt_path.parent
        recover_staged(folder)  # a replacement cut short by a kill: settled; dead writers' temps removed
        if resuming or not any((folder / name).exists() for name in RUN_FILES):
            return None
        return StagedUpdate(folder)

    def _target(self, name: str) -> Path:
        """Where the run writes its file `name` now: the staged temp while replacing an old run."""
        assert self.ckpt_path is not None
        return self.replacing.path(name) if self.replacing is not None else self.ckpt_path.with_name(name)

    def _commit_replacement(self) -> None:
        """The first checkpoint of a run replacing another: every file of the old run goes at once."""
        stage, self.replacing = self.replacing, None
        for name in RUN_FILES:
            if not stage.staged(name):
                stage.remove(name)
        stage.commit()

    def _checkpoint_to_resume(self) -> dict[str, Any] | None:
        path, config = self.ckpt_path, self.config
        if path is not None and path.exists() and config.resume:
            ckpt = load_checkpoint(path)
            _check_resumable(ckpt, path, config, self.dataset, tuple(self.change))
            old = TrainConfig.from_dict(dict(ckpt.get("train_config") or {})).to_dict()
            self.changed_note = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in self.change.items()
                                          if old.get(k) != v)
            return ckpt
        if config.resume:
            warnings.warn(f"resume=True but there is no checkpoint at {path}; starting a new run", stacklevel=4)
        return None

    def _prepare_model(self) -> None:
        seed_everything(self.config.seed)
        if self.ranks.rank:  # each rank draws its own sampling noise; the weights come from rank 0
            seed_everything(_seed_for(self.config.seed, self.ranks.rank, 6007))
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if hasattr(self.model, "set_dataset_size"):
            self.model.set_dataset_size(int(self.train_idx.size))

    def _max_steps_reached(self) -> bool:
        return self.config.max_steps is not None and self.progress.step >= self.config.max_steps

    # -- one epoch -------------------------------------------------------------------------
    def _epoch(self, epoch: int) -> bool:
        """Train, validate, record and checkpoint one epoch; False when the run stops here."""
        config, progress = self.config, self.progress
        plan = _epoch_plan(self.train_idx, self.grouping, config, epoch)
        first = progress.batch if epoch == progress.epoch else 0
        if first == 0:
            progress.sums, progress.seen = {}, 0
        t0 = time.perf_counter()
        seen_now, b_index = 0, first
        for b_index in range(first, len(plan)):
            if self._max_steps_reached():
                self.stopped = "max_steps"
                break
            seen_now += self._step(epoch, plan[b_index], b_index, len(plan))
        else:
            b_index = len(plan)
        train_time = time.perf_counter() - t0
        partial = b_index < len(plan)
        if seen_now == 0:
            return False
        val = _evaluate(self.model, self.feeder, self.val_plan, self.precision.context, progress.step,
                        _seed_for(config.seed, epoch, 31), self.device, self.ranks)
        if val and not _finite(val):
            raise self._diverged(epoch, val, "validation after the epoch", progress.step)
        self._record_epoch(epoch, val, train_time, seen_now, partial)
        if val and not partial:
            self._keep_best(epoch, val)
        done_steps = self._max_steps_reached()
        if epoch + 1 == config.epochs or partial or done_steps or (epoch + 1) % config.checkpoint_every == 0:
            bad = _nonfinite_weights(self.model)
            if bad:  # possible without a NaN loss (val_fraction=0): never save such weights
                raise self._diverged(epoch, {f"weights of {bad}": float("nan")}, "end of epoch", progress.step)
            self._checkpoint(epoch if partial else epoch + 1, b_index if partial else 0, partial,
                             completed=(epoch + 1 == config.epochs and not partial) or done_steps)
        self._call_back(epoch)
        return not partial

    def _call_back(self, epoch: int) -> None:
        """The callbacks, on rank 0 and a forked RNG, so they never change the training."""
        if not self.callbacks or not self.ranks.is_main:
            return
        end = EpochEnd(model=self.model, dataset=self.dataset, epoch=epoch + 1, step=self.progress.step,
                       row=dict(self.progress.history[-1]), out=Path(self.config.out) if self.config.out else None)
        with _forked_rng(self.device):
            for callback in self.callbacks:
                callback(end)
        self.model.train()

    def _step(self, epoch: int, item: Any, b_index: int, n_batches: int) -> int:
        """One optimizer step on this rank's share of a batch; returns the global batch's images."""
        progress, config = self.progress, self.config
        flip_seed = _seed_for(config.seed, progress.step, self.ranks.rank, 8111) if config.hflip else None
        shift_seed = _seed_for(config.seed, progress.step, self.ranks.rank, 8117) if config.max_shift else None
        batch = self.feeder(self.ranks.shard(item), flip_seed, shift_seed, config.max_shift)
        weight = kl_weight(config, progress.step)
        if weight is not None:
            batch["kl_weight"] = weight
        factor = lr_factor(config, progress.step, self.total_steps)
        for opt, bases in zip(self.optimizers, self.base_lrs):
            for group, base in zip(opt.param_groups, bases):
                group["lr"] = base * factor
        terms = train_step(self.objectives, batch, self.optimizers, progress.step, grad_scaler=self.precision.scaler,
                           autocast=self.precision.autocast, max_grad_norm=config.max_grad_norm, ranks=self.ranks)
        terms, n = self.ranks.mean_terms({k: float(v) for k, v in terms.items()}, batch["x"].shape[0])
        if not _finite(terms):
            raise self._diverged(epoch, terms, f"batch {b_index + 1} of {n_batches}", progress.step + 1)
        progress.step += 1
        progress.seen += n
        for k, v in terms.items():
            progress.sums[k] = progress.sums.get(k, 0.0) + v * n
        if self.config.history_every_step:
            progress.step_history.append({"epoch": epoch + 1, "step": progress.step, **terms})
        if self.bar is not None:
            self.bar.update(1)
            if progress.step % 10 == 1 or b_index == n_batches - 1:
                self.bar.set_postfix_str(f"ep {epoch + 1} " + _fmt_terms(
                    {k: terms[k] for k in ("loss", "recon_nll", "kl") if k in terms}))
        return n

    def _record_epoch(self, epoch: int, val: dict[str, float], train_time: float, seen_now: int,
                      partial: bool) -> None:
        history, progress = self.progress.history, self.progress
        if history and history[-1].get("epoch") == epoch + 1 and history[-1].get("partial"):
            history.pop()  # the row of a run stopped mid-epoch, now completed
        history.append({
            "epoch": epoch + 1, "step": progress.step,
            **{f"train_{k}": v / progress.seen for k, v in progress.sums.items()},
            **val,
            "lr": _lr(self.optimizers),
            "time_s": train_time,
            "images_per_s": seen_now / train_time if train_time > 0 else float("nan"),
            "partial": partial,
            **({"changed": self.changed_note} if self.changed_note else {}),
        })
        self.changed_note = "" if not partial else self.changed_note

    # -- checkpoints, divergence, the result -----------------------------------------------
    def _checkpoint(self, epochs_done: int, batch_in_epoch: int, partial_row: bool, completed: bool) -> None:
        if self.ckpt_path is None:
            return
        state = self._training_state(epochs_done, batch_in_epoch, partial_row)  # every rank takes part
        if not self.ranks.is_main:
            self.last_ckpt = self.ckpt_path
            return
        config = self.config
        save_checkpoint(
            self._target(CHECKPOINT_NAME), self.model, train_config=config, dataset=self.dataset,
            extra={
                **state,
                "completed": completed,
                "planned": {"epochs": config.epochs, "max_steps": config.max_steps},
                "precision": self.precision.name,
                "device": str(self.device),
                "world_size": self.ranks.world_size,
            },
        )
        pd.DataFrame(self.progress.history).to_csv(self._target(HISTORY_NAME), index=False)
        if self.replacing is not None:
            self._commit_replacement()
        self.last_ckpt = self.ckpt_path

    # -- the resume state: one dictionary, written and read by this pair ------------------
    def _training_state(self, epochs_done: int, batch_in_epoch: int, partial_row: bool) -> dict[str, Any]:
        """Everything a resume restores beside the weights, one entry per piece of training state;
        the checkpoint stores these entries, `_restore_training_state` reads them back. A new
        piece (a scheduler, say) is one entry here and one there. (Learning rates need none:
        each step sets them from the config, `lr_factor`.) A collective when data-parallel."""
        progress, scaler = self.progress, self.precision.scaler
        return {
            "epoch": epochs_done,
            "step": progress.step,
            "position": {"batch": batch_in_epoch, "partial_row": partial_row, "sums": dict(progress.sums),
                         "seen": progress.seen, "best_val_loss": progress.best_val_loss,
                         "best_epoch": progress.best_epoch},
            "history": pd.DataFrame(progress.history).to_dict(orient="list"),
            "step_history": progress.step_history,
            "optimizer_states": [opt.state_dict() for opt in self.optimizers],
            "grad_scaler": scaler.state_dict() if scaler is not None else None,
            "rng_states": rng_states(),
            **({"rank_rng_states": self.ranks.gather(rng_states())} if self.ranks.active else {}),
        }

    def _restore_training_state(self, ckpt: dict[str, Any]) -> _Progress:
        """Load the weights and what `_training_state` stored; the progress to continue from."""
        path, ranks = self.ckpt_path, self.ranks
        load_state_into(self.model, ckpt)
        position = ckpt.get("position") or {}
        history = ckpt.get("history") or {}
        mid_epoch = bool(position.get("batch", 0))
        progress = _Progress(
            epoch=int(ckpt.get("epoch", 0)), batch=int(position.get("batch", 0)), step=int(ckpt.get("step", 0)),
            sums=dict(position.get("sums") or {}) if mid_epoch else {},
            seen=int(position.get("seen", 0)) if mid_epoch else 0,
            history=pd.DataFrame(history).to_dict(orient="records") if history else [],
            step_history=list(ckpt.get("step_history") or []),
            best_val_loss=float(position.get("best_val_loss", math.inf)),
            best_epoch=int(position.get("best_epoch", 0)))
        states = ckpt.get("optimizer_states") or []
        if len(states) != len(self.optimizers):
            raise CheckpointError(f"{path} holds {len(states)} optimizer state(s), the model uses {len(self.optimizers)}")
        for opt, state in zip(self.optimizers, states):
            opt.load_state_dict(state)
        if self.precision.scaler is not None and ckpt.get("grad_scaler"):
            self.precision.scaler.load_state_dict(ckpt["grad_scaler"])
        per_rank = ckpt.get("rank_rng_states") or []
        if ranks.active and len(per_rank) != ranks.world_size:
            warnings.warn(f"{path} was written by {max(len(per_rank), 1)} process(es), this run has "
                          f"{ranks.world_size}; it continues with the same batches but other sampling noise, "
                          "so it is not bit-identical to an uninterrupted run", stacklevel=3)
        set_rng_states(per_rank[ranks.rank] if ranks.active and len(per_rank) == ranks.world_size
                       else ckpt.get("rng_states") or {})
        return progress

    def _keep_best(self, epoch: int, val: dict[str, float]) -> None:
        """Write best.pt when this epoch's validation loss is the lowest so far (`keep_best`)."""
        progress = self.progress
        if not (self.config.keep_best and self.ckpt_path is not None) or val["val_loss"] >= progress.best_val_loss:
            return
        progress.best_val_loss, progress.best_epoch = float(val["val_loss"]), epoch + 1
        if _nonfinite_weights(self.model) or not self.ranks.is_main:
            return
        save_checkpoint(
            self._target(BEST_NAME), self.model, train_config=self.config, history=pd.DataFrame(progress.history),
            epoch=epoch + 1, step=progress.step, dataset=self.dataset,
            extra={"best": {"epoch": epoch + 1, "val_loss": progress.best_val_loss},  # its run's state: checkpoint.pt
                   "precision": self.precision.name, "device": str(self.device)},
        )

    @property
    def best_path(self) -> Path | None:
        return None if self.ckpt_path is None else self.ckpt_path.with_name(BEST_NAME)

    def _diverged(self, epoch: int, terms: dict[str, float], where: str, at_step: int) -> TrainingDivergedError:
        if self.bar is not None:
            self.bar.close()
        kept = (f"the last good checkpoint is kept at {self.last_ckpt}" if self.last_ckpt is not None
                else f"no checkpoint was written yet, so nothing was replaced: the old run in "
                     f"{self.ckpt_path.parent} is kept whole" if self.replacing is not None
                else "no checkpoint was written yet" + ("" if self.ckpt_path else " (out=None)"))
        bad = [k for k, v in terms.items() if not math.isfinite(v)]
        return TrainingDivergedError(
            f"training diverged at epoch {epoch + 1}, step {at_step} ({where}): non-finite {', '.join(bad)} "
            f"in loss terms {{{_fmt_terms(terms)}}}; {kept}. Lower the learning rate (lr={self.config.lr:g}), "
            f"use precision='fp32' (now {self.precision.name}), or check the data for bad pixels",
            epoch=epoch + 1, step=at_step, terms=terms, checkpoint=self.last_ckpt,
            history=pd.DataFrame(self.progress.history),
        )

    def _check_ranks_agree(self) -> None:
        """Data-parallel ranks must end with the same weights (DDP averages every gradient)."""
        if not self.ranks.active:
            return
        digests = self.ranks.gather(weights_digest(self.model.state_dict()))
        if len(set(digests)) > 1:
            raise RuntimeError(f"the {self.ranks.world_size} data-parallel processes ended with different weights; "
                               "their gradients were not averaged (a facelib bug: please report it)")

    def _result(self) -> FitResult:
        self.model.eval()
        hist_df = pd.DataFrame(self.progress.history)
        last = hist_df.iloc[-1].to_dict() if len(hist_df) else {}
        key = "val_loss" if "val_loss" in hist_df else "train_loss"
        best = hist_df.loc[hist_df[key].idxmin()].to_dict() if len(hist_df) and key in hist_df else last
        return FitResult(
            model=self.model, history=hist_df, checkpoint=self.last_ckpt, last=last, best=best, config=self.config,
            device=str(self.device), precision=self.precision.name, stopped=self.stopped,
            step_history=pd.DataFrame(self.progress.step_history) if self.config.history_every_step else None,
            world_size=self.ranks.world_size, rank=self.ranks.rank,
            best_checkpoint=self.best_path if self.best_path is not None and self.best_path.exists() else None,
        )
