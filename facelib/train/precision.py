"""Device precision for training: which autocast dtype and GradScaler a setting means on a
device, and which memory layout is the faster one there."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch

from .config import TrainConfig

__all__ = ["resolve_precision", "auto_channels_last"]

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
        if kind == "cpu" and not _cpu_bf16_supported():  # a recipe's bf16 still trains, only slower
            warnings.warn("precision 'bf16' on a CPU without native bf16 (AVX-512 or AMX): torch emulates it, "
                          "which can be slower than fp32; pass precision 'fp32' for speed (the model then differs "
                          "slightly from a bf16 recipe's)", RuntimeWarning, stacklevel=2)
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision 'bf16' asked for, but this GPU has no bf16 support; use 'fp16' or 'fp32'")
        return "bf16", torch.bfloat16, False
    raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")


def auto_channels_last(device: torch.device, amp_dtype: torch.dtype | None) -> bool:
    """NHWC where it was measured the faster layout: cuDNN always; oneDNN on the CPU under bf16
    autocast; never on MPS. On the CPU in fp32 the two layouts are close and the order has
    changed between runs (benchmarks/train_throughput.py prints both side by side, see
    benchmarks/results/train_throughput.csv), so fp32 keeps NCHW unless `channels_last=True`."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and amp_dtype == torch.bfloat16


def _channels_last(config: TrainConfig, device: torch.device, amp_dtype: torch.dtype | None) -> bool:
    if config.channels_last == "auto":
        return auto_channels_last(device, amp_dtype)
    return bool(config.channels_last)


@dataclass
class _Precision:
    """The precision a run uses: its name, the autocast dtype (None: fp32) and the GradScaler."""

    name: str
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    device_type: str

    @classmethod
    def on(cls, setting: str, device: torch.device) -> "_Precision":
        name, amp_dtype, use_scaler = resolve_precision(setting, device)
        return cls(name, amp_dtype, torch.amp.GradScaler(device.type) if use_scaler else None, device.type)

    @property
    def autocast(self):
        """The zero-argument autocast factory `train_step` takes, or None for fp32."""
        if self.amp_dtype is None:
            return None
        return lambda: torch.autocast(device_type=self.device_type, dtype=self.amp_dtype)

    def context(self):
        """An autocast context for a forward pass (a null one in fp32)."""
        return self.autocast() if self.amp_dtype is not None else contextlib.nullcontext()
