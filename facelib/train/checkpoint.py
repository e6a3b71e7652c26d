"""Checkpoints: one self-describing file per run, safe to load (`weights_only=True`).

A checkpoint holds everything needed to rebuild the model from the file alone
(model name + config dict + weights) and to resume training exactly (optimizer
states, RNG states, position in the run), plus the history, the data set it saw
and the library versions. Only plain types and tensors are stored, so
`torch.load(..., weights_only=True)` reads it and no code runs on load. Files are
written atomically (temp file in the same folder, then `os.replace`), so a crash
mid-write never leaves a half-written checkpoint in place of a good one; temp files left
by a killed writer are removed at the next save.

The weights carry a sha256 (`weights_sha256`), checked at load, so a damaged file is refused
rather than silently giving another model; NaN/inf weights are refused too. `completed`
records whether the training run that wrote the file finished (`checkpoint_complete`), so a
half-trained model is never taken for a finished one. `run_lock` keeps two processes from
training into one run folder.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import tempfile
import time
import warnings
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from facelib.files import FolderInUseError, as_path, check_regular_file, check_writable, folder_lock, pid_alive, write_failure
from facelib.models import CONFIGS, build_model
from facelib.utils import library_versions

from .config import TrainConfig

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
    "weights_digest",
    "content_digest",
    "run_identity",
    "checkpoint_identity",
    "dataset_digest",
    "checkpoint_complete",
    "run_lock",
    "RunLockedError",
    "check_writable",
]

FORMAT = "facelib-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable facelib checkpoint, or one that does not fit the model."""


#: Another process is training into the same run folder (the shared folder lock's error).
RunLockedError = FolderInUseError


def run_lock(folder: str | os.PathLike):
    """Hold the exclusive lock of run folder `folder` while training into it (`files.folder_lock`)."""
    return folder_lock(folder, "run folder", "another training is writing its checkpoint there",
                       "wait for it to finish, or give this run another out folder")


#: Temp files older than this whose writer cannot be identified are taken as stale.
STALE_TMP_SECONDS = 3600


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
        "digest": dataset_digest(dataset),
    }


#: TrainConfig fields that change where or how visibly a run goes, not what it computes: they
#: are no part of a run's identity.
NOT_IDENTITY = ("out", "resume", "overwrite", "progress", "checkpoint_every", "num_threads",
                "history_every_step", "device", "nproc")
#: Model config fields `fit` fills in from the data (beta-TCVAE's dataset size), not the caller.
SET_BY_TRAINING = ("dataset_size",)


def run_identity(model_name: str, model_config: dict[str, Any], train_config: dict[str, Any] | TrainConfig,
                 data_digest: str | None) -> str | None:
    """One sha256 of what decides a trained model: the model and its config, the training config
    (budget, split, schedule, seed and options, all of it but `NOT_IDENTITY`) and the data's
    content digest. Two runs with one identity compute the same model; None without a digest."""
    if not data_digest:
        return None
    if not isinstance(train_config, TrainConfig):  # a stored dict: fields added later take their defaults
        train_config = TrainConfig.from_dict(dict(train_config))
    training = {k: v for k, v in train_config.to_dict().items() if k not in NOT_IDENTITY}
    model = {k: v for k, v in plain(model_config).items() if k not in SET_BY_TRAINING}
    text = json.dumps([str(model_name), model, plain(training), str(data_digest)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoint_identity(ckpt: dict[str, Any]) -> str | None:
    """The `run_identity` of the run that wrote `ckpt` (None when the file lacks a part of it)."""
    if not ckpt.get("train_config"):
        return None
    return run_identity(ckpt["model_name"], ckpt["model_config"], ckpt["train_config"],
                        (ckpt.get("dataset") or {}).get("digest"))


def dataset_digest(dataset: Any) -> str:
    """sha1 of the images and identity labels (milliseconds for the face sets here)."""
    images = dataset.images
    identity = np.asarray(getattr(dataset, "identity", np.empty(0)))
    h = hashlib.sha1(images.contiguous().cpu().numpy().tobytes())
    h.update(np.ascontiguousarray(identity, dtype=np.int64).tobytes())
    return h.hexdigest()


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors in key order (name, dtype, shape and bytes of each)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        if not isinstance(t, torch.Tensor):
            h.update(f"{key}={t!r};".encode())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _update_digest(h: Any, value: Any) -> None:
    """Feed `value` (plain types, tensors, nested dicts / lists) into hash `h`, the same before a
    save and after a `weights_only` load (tuples and lists hash alike)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            h.update(f"{key!r}:".encode())
            _update_digest(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _update_digest(h, item)
        h.update(b"]")
    else:
        h.update(f"{type(value).__name__}={value!r};".encode())


def content_digest(ckpt: dict[str, Any]) -> str:
    """sha256 of everything a checkpoint holds (weights, optimizer states, RNG states, position,
    history, configs) but the digest itself and the load-time `path`: what a resume reads."""
    h = hashlib.sha256()
    _update_digest(h, {k: v for k, v in ckpt.items() if k not in ("content_sha256", "path")})
    return h.hexdigest()


def training_position(ckpt: dict) -> str:
    """Where a checkpoint's run stands against its plan, for messages: "epoch 1 of 3, step 3"."""
    cfg = ckpt.get("train_config") or {}
    epoch, step = int(ckpt.get("epoch", 0)), int(ckpt.get("step", 0))
    if cfg.get("max_steps") is not None:
        return f"epoch {epoch}, step {step} of {int(cfg['max_steps'])}"
    return f"epoch {epoch} of {cfg.get('epochs', '?')}, step {step}"


def _run_complete(ckpt: dict[str, Any]) -> bool:
    """Whether the run a loaded file comes from finished. A best.pt (the lowest validation loss so
    far, written mid-run) is judged by its run folder's checkpoint.pt, which says how far the run
    got; a best.pt without one beside it (copied elsewhere) is taken as finished."""
    if "best" not in ckpt:
        return checkpoint_complete(ckpt)
    sibling = Path(ckpt["path"]).with_name("checkpoint.pt")
    if not sibling.is_file():
        return True
    try:
        return checkpoint_complete(torch.load(sibling, map_location="cpu", weights_only=True, mmap=True))
    except Exception:  # noqa: BLE001 - an unreadable sibling says nothing about this file
        return True


def checkpoint_complete(ckpt: dict[str, Any]) -> bool:
    """Whether the training run that wrote `ckpt` finished (all epochs, or its max_steps).

    Files without the `completed` flag are judged by their epoch and step against the
    stored train_config (a stopped-mid-epoch position counts as unfinished).
    """
    if "completed" in ckpt:
        return bool(ckpt["completed"])
    cfg = ckpt.get("train_config") or {}
    if (ckpt.get("position") or {}).get("partial_row"):
        max_steps = cfg.get("max_steps")
        return max_steps is not None and int(ckpt.get("step", 0)) >= int(max_steps)
    epochs, max_steps = cfg.get("epochs"), cfg.get("max_steps")
    if epochs is None:
        return True  # saved by hand (save_checkpoint without a train config): nothing planned
    if max_steps is not None and int(ckpt.get("step", 0)) >= int(max_steps):
        return True
    return int(ckpt.get("epoch", 0)) >= int(epochs)


def _remove_stale_temps(path: Path) -> None:
    """Delete `.name.<pid>.*.tmp` files of writers that are gone (or, without a pid, old ones)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        middle = tmp.name[len(path.name) + 2:-4]
        pid_text = middle.split(".", 1)[0]
        try:
            stale = not pid_alive(int(pid_text)) if pid_text.isdigit() else (
                time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS)
            if stale:
                tmp.unlink()
        except OSError:  # vanished meanwhile, or not ours to remove
            pass


def _write_error(path: Path, exc: BaseException) -> OSError:
    """An OSError for a failed checkpoint write that names the file, the cause and the remedy."""
    code, why, disk_full = write_failure(path.parent, exc)
    keep = (f"the previous checkpoint {path} is unchanged" if path.exists()
            else f"no checkpoint is at {path}")
    remedy = ("free some space or choose another out folder, then rerun (with --resume if a checkpoint is kept)"
              if disk_full else "check that the folder is writable and the disk healthy, or choose another out folder")
    return OSError(code, f"could not write checkpoint {path}: {why}; {keep}; {remedy}")


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
    defaults to the current RNG states; `extra` entries are stored beside these and take
    precedence (`fit` passes its whole resume state there). Returns the path written.
    """
    path = as_path(path, "the checkpoint path")
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name such as {path / 'checkpoint.pt'}")
    if hasattr(history, "to_dict"):
        history = history.to_dict(orient="list")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name(model),
        "model_config": model_config_dict(model),
        "state_dict": state,
        "weights_sha256": weights_digest(state),
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
    payload["content_sha256"] = content_digest(payload)
    check_writable(path.parent, "checkpoint")
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
            raise _write_error(path, exc) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", *,
                    check_training_state: bool = True) -> dict[str, Any]:
    """Read and check a checkpoint (`weights_only=True`: no code runs); returns its dict.

    The weights are always checked against their sha256; the rest (optimizer and RNG states,
    position, history) against the file's content sha256 unless `check_training_state` is False
    (`load_model`, which reads the weights only, warns instead)."""
    path = as_path(path, "the checkpoint path")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; check the path (a run folder holds checkpoint.pt)")
    if path.is_dir():
        candidate = path / "checkpoint.pt"
        if not candidate.exists():
            raise FileNotFoundError(f"{path} is a folder without checkpoint.pt; give the checkpoint file")
        path = candidate
    check_regular_file(path, "checkpoint")
    if "cuda" in str(map_location) and not torch.cuda.is_available():
        raise RuntimeError(f"map_location={map_location!r} asks for CUDA, which this machine does not have; "
                           f"load {path} with map_location='cpu' (the file itself was not read)")
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
    _check_weights(path, ckpt)
    stored = ckpt.get("content_sha256")  # files from before it carry the weights' hash only
    if stored is not None and content_digest(ckpt) != stored:
        text = (f"{path}: the training state is damaged (the sha256 of its optimizer states, RNG states, "
                "position, history or configs does not match the one stored at save time)")
        if check_training_state:
            raise CheckpointError(f"{text}; the weights are intact (facelib.load_model still gives the model), "
                                  "but a resume would continue from damaged state: resume from another copy or "
                                  "train anew")
        warnings.warn(f"{text}; the weights are intact and are loaded, but do not resume from this file",
                      stacklevel=3)
    ckpt["path"] = str(path)
    return ckpt


def _check_weights(path: Path, ckpt: dict[str, Any]) -> None:
    """Refuse weights whose hash does not match the stored one, and non-finite weights."""
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: its state_dict is not a dict of tensors; the file is damaged - "
                              "use another checkpoint or retrain")
    stored = ckpt.get("weights_sha256")
    if stored is not None and weights_digest(state) != stored:
        raise CheckpointError(
            f"{path}: the weights are damaged (their sha256 does not match the one stored at save time); "
            "the file was altered or corrupted on disk - use another copy of the checkpoint or retrain"
        )
    for key, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"{path}: weight tensor {key!r} holds NaN or infinite values; the model it would give is "
                "broken - use an earlier checkpoint or retrain (with a lower lr or precision='fp32')"
            )


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
    want = dict(ckpt["model_config"])
    for k in _fields_added_later(model, want):  # an older file: the field's default applies
        want[k] = have[k]
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


def _fields_added_later(model: torch.nn.Module, stored: dict[str, Any]) -> list[str]:
    """Config fields the model has and the stored config lacks (added after the file was written),
    but only where the model holds the field's default, which is what such a file meant."""
    from dataclasses import MISSING, fields

    out = []
    for f in fields(model.config):
        if f.name in stored:
            continue
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else MISSING)
        if default is not MISSING and plain(default) == plain(getattr(model.config, f.name)):
            out.append(f.name)
    return out


#: Config fields whose default is what every file written before them meant, so filling them in
#: needs no warning (before `architecture` existed every model had the "small" networks).
_SAME_BEFORE = frozenset({"architecture", "architecture_options"})


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> torch.nn.Module:
    """Rebuild a model from a checkpoint file alone, in eval mode.

    Config fields added to facelib after the file was written take their defaults (with a
    warning naming them); fields this version does not know are an error.
    """
    ckpt = load_checkpoint(path, map_location=map_location, check_training_state=False)
    name, stored = ckpt["model_name"], ckpt["model_config"]
    written_by = (ckpt.get("versions") or {}).get("facelib", "an unknown version")
    config_class = CONFIGS.get(str(name).strip().lower().replace("_", "-"))
    if config_class is not None:
        from dataclasses import fields

        unknown = sorted(set(stored) - {f.name for f in fields(config_class)})
        if unknown:
            raise CheckpointError(
                f"{ckpt['path']}: model config field(s) {unknown} are unknown to this facelib; the file was "
                f"written by facelib {written_by} - upgrade facelib to load it"
            )
    try:
        model = build_model(name, **stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{ckpt['path']}: cannot build model {name!r} with config {stored} "
            f"in this facelib version ({exc}); use the facelib version that wrote it ({written_by})"
        ) from exc
    if not _run_complete(ckpt):
        warnings.warn(
            f"{ckpt['path']} is from an unfinished training run (stopped at {training_position(ckpt)}): "
            "the model is half-trained. Finish it with "
            "`python -m facelib train ... --resume` (or fit(..., resume=True)) before using it", stacklevel=2)
    added = _fields_added_later(model, stored)
    loud = [k for k in added if k not in _SAME_BEFORE]
    if loud:
        warnings.warn(
            f"{ckpt['path']} predates config field(s) {', '.join(loud)}; using their defaults "
            f"({', '.join(f'{k}={getattr(model.config, k)!r}' for k in loud)})", stacklevel=2)
    try:
        load_state_into(model, ckpt)
    except CheckpointError as exc:
        if not added:
            raise
        raise CheckpointError(
            f"{ckpt['path']} was written before config field(s) {', '.join(added)} existed, and their "
            f"defaults do not fit its weights ({exc}); load it with the facelib version that wrote it "
            f"({written_by})"
        ) from exc
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return model.eval()
