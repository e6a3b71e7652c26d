"""Checkpoints: one self-describing file per run, safe to load (`weights_only=True`).

A checkpoint holds everything needed to rebuild the model from the file alone
(model name + config dict + weights) and to resume training exactly (optimizer
states, RNG states, position in the run), plus the history, the data set it saw
and the library versions. Only plain types and tensors are stored, so
`torch.load(..., weights_only=True)` reads it and no code runs on load. Files are
written atomically (temp file in the same folder, then `os.replace`), so a crash
mid-write never leaves a half-written checkpoint in place of a good one.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from facelib.utils import library_versions

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_state_into",
    "model_name",
    "model_config_dict",
    "rng_states",
    "set_rng_states",
    "plain",
]

FORMAT = "facelib-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable facelib checkpoint, or one that does not fit the model."""


# -- plain, weights_only-loadable values ----------------------------------------------------
def plain(obj: Any) -> Any:
    """`obj` with numpy scalars/arrays, Paths and other objects turned into plain Python.

    `torch.load(weights_only=True)` only accepts builtin containers, scalars, strings and
    tensors, so anything else (numpy types, pandas objects, Paths) is converted here.
    """
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.Tensor)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return plain(asdict(obj))
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    if isinstance(obj, (list, set, frozenset)):
        return [plain(v) for v in obj]
    return str(obj)


def model_name(model: torch.nn.Module) -> str:
    """The registry name of a model (its class attribute `name`)."""
    name = getattr(type(model), "name", None) or getattr(model, "name", None)
    if not isinstance(name, str) or not name:
        raise CheckpointError(
            f"{type(model).__name__} has no registry `name`; only facelib models "
            "(facelib.models.build_model) can be checkpointed and rebuilt"
        )
    return name


def model_config_dict(model: torch.nn.Module) -> dict[str, Any]:
    """The model's config dataclass as a plain dict (what `build_model(name, **d)` takes)."""
    config = getattr(model, "config", None)
    if config is None or not is_dataclass(config):
        raise CheckpointError(f"{type(model).__name__} has no dataclass `config`; it cannot be rebuilt from a file")
    return plain(asdict(config))


# -- RNG states -------------------------------------------------------------------------------
def rng_states() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, CUDA) RNG states in weights_only-loadable form."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what `rng_states` captured (CUDA only where the device count matches)."""
    if "python" in states:
        version, state, gauss = states["python"]
        random.setstate((version, tuple(state), gauss))
    if "numpy" in states:
        kind, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    if "torch" in states:
        torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# -- save / load --------------------------------------------------------------------------------
def dataset_summary(dataset: Any) -> dict[str, Any] | None:
    """What a checkpoint records of the data set it was trained on (name, size, shape, people, options)."""
    if dataset is None:
        return None
    meta = getattr(dataset, "meta", {}) or {}
    return {
        "name": str(getattr(dataset, "name", "unknown")),
        "n": int(len(dataset)),
        "shape": [int(s) for s in dataset.images.shape[1:]],
        "n_identities": int(getattr(dataset, "n_identities", -1)),
        "meta": {str(k): plain(v) for k, v in meta.items()},
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    optimizers: Iterable[torch.optim.Optimizer] = (),
    train_config: Any = None,
    history: Any = None,
    epoch: int = 0,
    step: int = 0,
    dataset: Any = None,
    rng: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of `model` (and, for resuming, its training state) atomically.

    `history` may be a DataFrame (stored as a dict of lists) or a dict/list; `rng`
    defaults to the current RNG states. Returns the path written.
    """
    path = Path(path)
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name such as {path / 'checkpoint.pt'}")
    if hasattr(history, "to_dict"):
        history = history.to_dict(orient="list")
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name(model),
        "model_config": model_config_dict(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_states": [opt.state_dict() for opt in optimizers],
        "train_config": plain(train_config) if train_config is not None else None,
        "history": plain(history) if history is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "rng_states": rng if rng is not None else rng_states(),
        "dataset": dataset_summary(dataset),
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        payload.update(plain(extra))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint (`weights_only=True`: no code runs); returns its dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; check the path (a run folder holds checkpoint.pt)")
    if path.is_dir():
        candidate = path / "checkpoint.pt"
        if not candidate.exists():
            raise FileNotFoundError(f"{path} is a folder without checkpoint.pt; give the checkpoint file")
        path = candidate
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds (UnpicklingError, RuntimeError, IndexError...) on bad bytes
        raise CheckpointError(
            f"could not read {path} as a checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "the file is corrupt, truncated, or not a torch file - use another checkpoint or retrain"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a facelib checkpoint (no format={FORMAT!r} tag); "
            "facelib reads only files written by facelib.train (fit or save_checkpoint)"
        )
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: invalid format_version {version!r}; the file is damaged")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, this facelib reads up to {FORMAT_VERSION}; "
            "upgrade facelib to load it"
        )
    missing = [k for k in ("model_name", "model_config", "state_dict") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; the file is damaged")
    ckpt["path"] = str(path)
    return ckpt


def load_state_into(model: torch.nn.Module, ckpt: dict[str, Any]) -> None:
    """Load the checkpoint's weights into `model`, failing clearly if it is another model."""
    where = ckpt.get("path", "the checkpoint")
    name = model_name(model)
    if ckpt["model_name"] != name:
        raise CheckpointError(
            f"{where} was written for model {ckpt['model_name']!r}; the model given is {name!r}; "
            "build the model it was written for, or use facelib.load_model(path)"
        )
    have = model_config_dict(model)
    want = ckpt["model_config"]
    if have != want:
        diff = {k: (want.get(k), have.get(k)) for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)}
        raise CheckpointError(
            f"{where} was written for config {want}; model has {have} "
            f"(differs in {', '.join(f'{k}: {a!r} vs {b!r}' for k, (a, b) in diff.items())}); "
            "build the model with the checkpoint's config (facelib.load_model does this) or use a new run folder"
        )
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{where} was written for config {want}; model has {have}, and its weights do not fit: "
            f"{str(exc).splitlines()[0]}"
        ) from exc


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> torch.nn.Module:
    """Rebuild a model from a checkpoint file alone, in eval mode."""
    ckpt = load_checkpoint(path, map_location=map_location)
    try:
        from facelib.models import build_model
    except ImportError as exc:  # pragma: no cover - only while facelib.models is missing
        raise ImportError("facelib.models.build_model is needed to rebuild a model") from exc
    try:
        model = build_model(ckpt["model_name"], **ckpt["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{ckpt['path']}: cannot build model {ckpt['model_name']!r} with config {ckpt['model_config']} "
            f"in this facelib version ({exc}); use the facelib version listed in the checkpoint's 'versions'"
        ) from exc
    load_state_into(model, ckpt)
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return model.eval()
