"""`TrainConfig`: every knob of `fit`, as one dataclass that a checkpoint can store.

The config is stored in each checkpoint (as a plain dict) so that a run can be
resumed exactly and a result traced back to how it was trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TrainConfig", "PRECISIONS", "LR_SCHEDULES", "SPLIT_FIELDS", "lr_factor", "kl_weight"]

#: Accepted values of `TrainConfig.precision`.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Accepted values of `TrainConfig.lr_schedule`.
LR_SCHEDULES = ("constant", "cosine")

#: Fields that decide the train/validation split and the batch order; a resumed run
#: must keep them, or it would not continue the same run.
SPLIT_FIELDS = ("seed", "batch_size", "val_fraction", "group_batches", "groups_per_batch", "group_size")


@dataclass
class TrainConfig:
    """How to train a model with `facelib.train.fit`.

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step (for grouped batches: groups_per_batch x group_size
            when those are not given).
        lr: Adam learning rate (1e-3 suits the small models here; Burgess et al. used 5e-4).
        seed: seeds model sampling, the split and the per-epoch shuffles (which depend
            on (seed, epoch) only, so a resumed run sees the same batches).
        device: "auto" (cuda, then mps, then cpu) or a torch device string.
        precision: "auto" (fp16 autocast + GradScaler on CUDA, fp32 elsewhere), "fp32",
            "bf16" (autocast; native on CUDA and on CPUs with AVX-512 or AMX, emulated and slower
            on other CPUs) or "fp16" (CUDA only).
        val_fraction: share of the data held out for validation (0 for none); split by
            group when batches are grouped, so no group straddles the two sides.
        out: run folder for `checkpoint.pt` and `history.csv`, or None to write nothing.
        checkpoint_every: write a checkpoint every this many epochs (and always at the end).
        resume: continue the run stored in `out` (starts fresh, with a warning, if there is none).
        overwrite: allow replacing an existing checkpoint in `out` when not resuming.
        progress: show a tqdm bar with the loss terms (only when stderr is a terminal).
        max_steps: stop after this many optimizer steps in total (quick profiles).
        group_batches: "auto" (grouped when the data set has `groups` or the model's class
            sets `trains_on_groups`, as ModVAE does), True or False. Grouped batches hold
            whole groups; with identity groups, `group_size` images of one person form a group.
        groups_per_batch: groups per batch (default batch_size // group_size).
        group_size: images per group (default: the most common group size of
            `dataset.groups`, or 4 for identity groups).
        channels_last: "auto" (NHWC where it is faster: on CUDA, and on the CPU under bf16
            autocast; NCHW for fp32 on the CPU and on MPS), True or False.
        num_threads: torch CPU threads during fit (restored afterwards); None leaves it.
        history_every_step: also record every step's loss terms (`FitResult.step_history`).
        nproc: train data-parallel in this many local processes that `fit` spawns (gloo on the
            CPU, NCCL on CUDA; `facelib.train.distributed`); None or 1: this process (under
            torchrun, the processes torchrun started).
        warmup_steps: the learning rate rises linearly from 0 to `lr` over this many steps.
        lr_schedule: "constant", or "cosine": after the warm-up, lr decays as a half cosine to
            `min_lr_ratio` x lr at the run's last step (Loshchilov & Hutter 2017). The lr is a
            function of the step alone (`lr_factor`), so a resumed run continues the same curve.
        min_lr_ratio: the cosine schedule's final lr as a share of `lr`.
        max_grad_norm: clip the gradients' global norm to this before each step (None: no
            clipping); the history's grad_norm is the norm before clipping.
        kl_warmup_steps: KL warm-up (Bowman et al. 2016; Sonderby et al. 2016): the weight of
            everything in the loss beyond the reconstruction term (the KL, beta-scaled or not,
            and a model's extra terms) rises linearly from 0 to 1 over this many steps
            (`kl_weight`); the validation loss, ELBO and best checkpoint use the full weight.
        hflip: flip a random half of each training batch left-right (ModVAE groups as a whole,
            so a group still shares every factor but its varying one); validation never flips.
        max_shift: translate each training image (ModVAE group) by a random whole number of
            pixels in [-max_shift, max_shift] along each axis, border pixels repeated (0: none;
            never the validation batches).
        weight_decay: decoupled weight decay (AdamW) of the model's optimizer; 0 is plain Adam.
        keep_best: beside `checkpoint.pt`, keep `best.pt`, the model at the epoch with the lowest
            validation loss (needs `val_fraction` > 0 and `out`).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    val_fraction: float = 0.1
    out: str | None = None
    checkpoint_every: int = 1
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    max_steps: int | None = None
    group_batches: bool | str = "auto"
    groups_per_batch: int | None = None
    group_size: int | None = None
    channels_last: bool | str = "auto"
    num_threads: int | None = None
    history_every_step: bool = False
    nproc: int | None = None
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.0
    max_grad_norm: float | None = None
    kl_warmup_steps: int = 0
    hflip: bool = False
    max_shift: int = 0
    weight_decay: float = 0.0
    keep_best: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.out, Path):
            self.out = str(self.out)
        problems = []
        if self.out is not None and (not isinstance(self.out, str) or not self.out):
            problems.append(f"out must be a run folder's path (a non-empty str or Path) or None, got {self.out!r}")
        if not _integer(self.epochs) or self.epochs < 1:
            problems.append(f"epochs must be a positive integer, got {self.epochs!r}")
        if not _integer(self.batch_size) or self.batch_size < 1:
            problems.append(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (_number(self.lr) and self.lr > 0):
            problems.append(f"lr must be a positive number, got {self.lr!r}")
        if not _integer(self.seed) or not 0 <= self.seed < 2**63:
            problems.append(f"seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        if not isinstance(self.device, str):
            problems.append(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {self.device!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not (_number(self.val_fraction) and 0.0 <= self.val_fraction < 1.0):
            problems.append(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if not _integer(self.checkpoint_every) or self.checkpoint_every < 1:
            problems.append(f"checkpoint_every must be a positive integer, got {self.checkpoint_every!r}")
        if self.max_steps is not None and (not _integer(self.max_steps) or self.max_steps < 1):
            problems.append(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        if self.group_batches not in ("auto", True, False):
            problems.append(f"group_batches must be 'auto', True or False, got {self.group_batches!r}")
        for name in ("groups_per_batch", "group_size", "num_threads", "nproc"):
            value = getattr(self, name)
            if value is not None and (not _integer(value) or value < 1):
                problems.append(f"{name} must be a positive integer or None, got {value!r}")
        if self.group_size == 1:
            problems.append("group_size must be at least 2 (a group of one image clamps nothing)")
        if self.channels_last not in ("auto", True, False):
            problems.append(f"channels_last must be 'auto', True or False, got {self.channels_last!r}")
        for name in ("warmup_steps", "kl_warmup_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{name} must be an integer >= 0, got {value!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if not (_number(self.min_lr_ratio) and 0.0 <= self.min_lr_ratio <= 1.0):
            problems.append(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.max_grad_norm is not None and not (_number(self.max_grad_norm) and self.max_grad_norm > 0):
            problems.append(f"max_grad_norm must be a positive number or None, got {self.max_grad_norm!r}")
        if not (_number(self.weight_decay) and self.weight_decay >= 0):
            problems.append(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.max_shift, int) and not isinstance(self.max_shift, bool) and self.max_shift >= 0):
            problems.append(f"max_shift must be a whole number of pixels >= 0, got {self.max_shift!r}")
        for name in ("hflip", "keep_best", "resume", "overwrite", "progress", "history_every_step"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints and logs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild from `to_dict` output, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **overrides: Any) -> "TrainConfig":
        """A copy with some fields changed; unknown names raise a clear error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s) {unknown}; known fields: {', '.join(sorted(known))}")
        data = self.to_dict()
        data.update(overrides)
        return type(self)(**data)


def _integer(value: Any) -> bool:
    """A whole number (int or numpy integer), never a bool: `epochs=True` is a mistake, not 1."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def lr_factor(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) as a share of `config.lr`: the linear
    warm-up, then constant or the half cosine down to `min_lr_ratio` at step `total_steps` - 1."""
    warm = config.warmup_steps
    if step < warm:
        return (step + 1) / warm
    if config.lr_schedule == "constant":
        return 1.0
    span = max(total_steps - warm - 1, 1)
    progress = min(max(step - warm, 0) / span, 1.0)
    low = config.min_lr_ratio
    return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def kl_weight(config: TrainConfig, step: int) -> float | None:
    """The KL warm-up weight of optimizer step `step` (0-based): (step + 1) / kl_warmup_steps up
    to 1; None without a warm-up (the model's loss then applies its own weights unchanged)."""
    if not config.kl_warmup_steps:
        return None
    return min(1.0, (step + 1) / config.kl_warmup_steps)
