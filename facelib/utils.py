"""Small shared helpers: seeding, device choice, registry names, provenance."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = ["seed_everything", "seeded", "check_memory", "memory_bytes", "select_device", "model_device", "normalise_name", "library_versions", "git_commit",
           "machine_info"]

_TRACKED = [
    "facelib", "torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn",
    "statsmodels", "matplotlib", "seaborn", "papermill", "ipywidgets",
]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a torch Generator seeded alike."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw from torch's CPU generator seeded with `seed`, leaving the caller's generator as it was:
    a model built inside has the same initial weights whatever ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(nbytes: float, what: str, hint: str = "") -> None:
    """Refuse, before allocating, what needs more than half of this machine's memory: a MemoryError
    that says how much `what` would need (a typo such as n=1e9 fails at once, not after minutes
    of swapping)."""
    total = memory_bytes()
    if total is not None and nbytes > total / 2:
        raise MemoryError(f"{what} would need {nbytes / 2**30:.1f} GiB, more than half of this machine's "
                          f"{total / 2**30:.1f} GiB of memory" + (f"; {hint}" if hint else ""))


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; anything else is checked and returned."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError(f"device {device!r} asked for, but MPS is not available here; use 'auto' or 'cpu'")
    return dev


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters are (cpu for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def normalise_name(name: str) -> str:
    """A registry key as the registries store it: "Beta_VAE " -> "beta-vae" (models, data sets)."""
    return str(name).strip().lower().replace("_", "-")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    out = {"python": platform.python_version()}
    for name in _TRACKED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: str | os.PathLike = ".") -> str | None:
    """The commit of the checkout holding `path` (with '+dirty' if it has changes), or None."""
    try:
        cwd = Path(path).resolve()
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | torch.device | None = None) -> dict[str, str | int]:
    """Where a figure was measured: CPU model, cores, torch version and threads, the device used."""
    info: dict[str, str | int] = {
        "cpu": _cpu_name(), "cores": os.cpu_count() or 0, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
    }
    dev = select_device(device if device is not None else "auto")
    info["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return info
