"""`run(spec, out)`: train the run a spec describes, or reuse the finished run of the same identity.

This is the one place above `fit` that turns names and options into a model and a `TrainConfig`.
With a run folder `out`:

* no checkpoint there: train, writing `out/spec.yaml`, `out/checkpoint.pt` and `history.csv`;
* a checkpoint of the same run (`checkpoint.run_identity`: model and config, training config,
  the data's content digest): finished, it is loaded and returned (nothing trains); unfinished,
  training continues where it stopped;
* a checkpoint of another run: `RunConflictError` saying what differs (or `overwrite=True`).

Without `out` nothing is written and every call trains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from facelib.files import atomic_write_text
from facelib.train import FitResult, fit, load_checkpoint, load_model
from facelib.train.checkpoint import (NOT_IDENTITY, CheckpointError, checkpoint_complete, checkpoint_identity,
                                      dataset_digest, model_config_dict, run_identity, training_position)
from facelib.train.engine import CHECKPOINT_NAME

from .spec import RUN_FIELDS, ExperimentSpec

__all__ = ["run", "RunResult", "RunConflictError", "prepare", "SPEC_NAME", "RUNTIME_FIELDS"]

#: The spec's file in a run folder.
SPEC_NAME = "spec.yaml"
#: TrainConfig fields `run` may set beside the spec: where and how fast, never what is trained.
RUNTIME_FIELDS = tuple(k for k in NOT_IDENTITY if k not in RUN_FIELDS)


class RunConflictError(FileExistsError):
    """The run folder holds another run (or a file that is not a readable checkpoint);
    `folder` and `reason` (what differs) say which."""

    def __init__(self, folder: Path, reason: str):
        super().__init__(f"{folder} holds another run ({reason}); give another out folder, or overwrite=True "
                         "(--overwrite) to replace it")
        self.folder, self.reason = folder, reason


@dataclass
class RunResult:
    """What `run` gives back.

    Attributes:
        model: the trained model (eval mode).
        history: one row per epoch (`fit`'s history; the stored one when reused).
        spec: the spec that was run; dataset: the data it trained on.
        checkpoint: `out/checkpoint.pt`, or None without `out`.
        reused: True when a finished run of the same identity was loaded instead of trained.
        config: the TrainConfig it ran under (the spec's, with the run and runtime fields).
        fit: `fit`'s result (None when reused): best epoch row, device, precision, ...
    """

    model: Any
    history: pd.DataFrame
    spec: ExperimentSpec
    dataset: Any
    checkpoint: Path | None
    reused: bool
    config: Any
    fit: FitResult | None = None

    @property
    def last(self) -> dict[str, Any]:
        """The history's last row (the last epoch: step, losses, ...); empty without one."""
        h = self.history
        return {} if h is None or not len(h) else h.iloc[-1].to_dict()


def prepare(spec: ExperimentSpec, dataset: Any = None, **runtime: Any):
    """(untrained model, TrainConfig, dataset) of a spec: the model built under the training seed,
    the spec's training config with `runtime` fields (`RUNTIME_FIELDS`) and run fields set."""
    if not isinstance(spec, ExperimentSpec):
        raise TypeError(f"spec must be an ExperimentSpec, got {type(spec).__name__}")
    wrong = sorted(set(runtime) - set(RUNTIME_FIELDS) - set(RUN_FIELDS))
    if wrong:
        raise TypeError(f"run() sets only where and how a spec runs ({', '.join(RUNTIME_FIELDS + RUN_FIELDS)}); "
                        f"{wrong} change what is trained: set them in the spec (spec.updated({{'training.<field>': "
                        "...}}))")
    dataset = spec.make_dataset() if dataset is None else dataset
    model = spec.make_model(dataset)
    return model, spec.training.replace(**runtime), dataset


def run(spec: ExperimentSpec, out: str | os.PathLike | None = None, *, dataset: Any = None, overwrite: bool = False,
        callbacks: Sequence[Callable[..., Any]] = (), change: dict[str, Any] | None = None,
        **runtime: Any) -> RunResult:
    """Train `spec` into the run folder `out` (None: nothing written), or reuse what is there.

    `dataset` replaces the spec's data set (a spec without one needs it: in-memory images);
    `runtime` sets `RUNTIME_FIELDS` (device, progress, num_threads, nproc, checkpoint_every, ...);
    `overwrite` replaces another run in `out`. `callbacks` go to `fit`. `change` ({training field:
    value}) continues the unfinished run of `spec` in `out` with those fields changed (`fit`'s
    `change`: the history records it); the spec run and recorded is then the changed one.
    """
    change = dict(change or {})
    if change:
        if out is None or overwrite:
            raise ValueError(f"change={change} continues an unfinished run in out with changed training fields; "
                             "give out (and not overwrite), or set the fields in the spec of a new run")
        spec = spec.updated({f"training.{k}": v for k, v in change.items()})
    model, config, dataset = prepare(spec, dataset, **runtime)
    if out is None:
        result = fit(model, dataset, config, callbacks=callbacks)
        return RunResult(result.model, result.history, spec, dataset, None, False, config, result)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out={str(out)!r} is a file, not a folder; out names a run folder "
                                 "(checkpoint.pt goes inside): give another path or move the file away")
    ckpt = out / CHECKPOINT_NAME
    stored, problem = _stored(ckpt) if ckpt.exists() and not overwrite else (None, None)
    same_run = stored is not None and checkpoint_identity(stored) == run_identity(
        model.name, model_config_dict(model), config, dataset_digest(dataset))
    if change and not same_run:  # (a run that already has the change, from an earlier resume, is this spec's)
        return _run_changed(spec, out, model, config, dataset, change, callbacks, stored, problem)
    resume = False
    if ckpt.exists() and not overwrite:
        if same_run:
            if checkpoint_complete(stored):
                return RunResult(load_model(ckpt), pd.DataFrame(stored.get("history") or {}), spec, dataset, ckpt,
                                 True, config.replace(out=str(out)))
            print(f"resuming the unfinished run in {out} ({training_position(stored)})")
            resume = True
        else:
            reason = problem or _difference(stored, model, config, dataset)
            if stored is not None and not checkpoint_complete(stored) and reason.startswith("training ") \
                    and ";" not in reason:
                reason += ("; to continue that unfinished run with these changed, give change={field: value} "
                           "(train --resume --change FIELD=VALUE), which its history records")
            raise RunConflictError(out, reason)
    config = config.replace(out=str(out), resume=resume, overwrite=overwrite)
    result = fit(model, dataset, config, callbacks=callbacks)
    if result.rank == 0:
        atomic_write_text(out / SPEC_NAME, spec.to_yaml())
    return RunResult(result.model, result.history, spec, dataset, result.checkpoint, False, config, result)


def _run_changed(spec: ExperimentSpec, out: Path, model: Any, config: Any, dataset: Any, change: dict[str, Any],
                 callbacks: Sequence[Callable[..., Any]], stored: dict[str, Any] | None,
                 problem: str | None) -> RunResult:
    """Continue the unfinished run in `out` (`stored`: its checkpoint as read, `problem`: why it could
    not be) with the training fields `change` changed (`spec`: the changed spec); the run there must
    be this spec's but for those fields."""
    ckpt = out / CHECKPOINT_NAME
    if not ckpt.exists():
        raise FileNotFoundError(f"change={change} continues the unfinished run in {out}, but there is no "
                                f"{CHECKPOINT_NAME}; train a new run with the fields set in its spec")
    if stored is None:
        raise RunConflictError(out, problem)
    before = config.replace(**{k: (stored.get("train_config") or {}).get(k, getattr(config, k)) for k in change})
    if checkpoint_identity(stored) != run_identity(model.name, model_config_dict(model), before, dataset_digest(dataset)):
        raise RunConflictError(out, _difference(stored, model, before, dataset))
    if checkpoint_complete(stored):
        raise ValueError(f"the run in {out} is finished ({training_position(stored)}); change={change} continues "
                         "an unfinished run: train a new run with the fields set in its spec")
    print(f"resuming the unfinished run in {out} ({training_position(stored)}) with "
          + ", ".join(f"{k} -> {v!r}" for k, v in change.items()))
    config = config.replace(out=str(out), resume=True, overwrite=False)
    result = fit(model, dataset, config, callbacks=callbacks, change=change)
    if result.rank == 0:
        atomic_write_text(out / SPEC_NAME, spec.to_yaml())
    return RunResult(result.model, result.history, spec, dataset, result.checkpoint, False, config, result)


def _stored(ckpt: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return load_checkpoint(ckpt, check_training_state=False), None
    except (CheckpointError, OSError, ValueError) as exc:
        return None, f"its {CHECKPOINT_NAME} cannot be read: {' '.join(str(exc).split())[:160]}"


def _difference(stored: dict[str, Any], model: Any, config: Any, dataset: Any) -> str:
    """Which parts of the stored run differ from this one (for the conflict message)."""
    parts = []
    if stored.get("model_name") != model.name:
        parts.append(f"model {stored.get('model_name')!r}, not {model.name!r}")
    else:
        mine, theirs = model_config_dict(model), stored.get("model_config") or {}
        keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k) and k != "dataset_size")
        if keys:
            parts.append("model options " + ", ".join(keys))
    mine, theirs = config.to_dict(), stored.get("train_config") or {}
    keys = sorted(k for k in mine if k not in NOT_IDENTITY and k in theirs and mine[k] != theirs[k])
    if keys:
        parts.append("training " + ", ".join(f"{k} {theirs[k]!r} -> {mine[k]!r}" for k in keys))
    if (stored.get("dataset") or {}).get("digest") != dataset_digest(dataset):
        parts.append("other data")
    return "; ".join(parts) or "another run"
