"""`build(name)`: train a zoo recipe from scratch, store it half-precision, measure it, record it.

`python -m facelib zoo build NAME` runs this. Training goes to `runs/zoo/NAME/` (a normal
resumable run folder: an interrupted build continues where it stopped); the finished weights
are written to `NAME.pt` in the zoo folder (`store.build_dir`) as float16 (a plain facelib checkpoint: `facelib.load_model` reads
it), the headline metrics are measured on that stored file, and the manifest gets the file's
sha256, the recipe, the git commit, the training time and hardware, and the metrics.

A build proves the folder writable and checks the manifest under the zoo folder's lock before it
trains, trains under its run folder's own lock (a second build of the same model is refused at
once; builds of different models train side by side), and takes the zoo lock again to stage the
new weights and manifest beside the old ones (`files.staged_update`): they replace the old pair
together once measured, so a build killed or failing at any point leaves the zoo's old model and
manifest as they were, and builds that finish together never lose each other's entries.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from facelib.experiment import run as run_experiment
from facelib.files import check_writable, recover_staged, staged_update, write_failure
from facelib.train import load_model
from facelib.train.checkpoint import save_checkpoint
from facelib.utils import git_commit, machine_info

from .evaluation import TOLERANCE, aggregate_posterior, headline_metrics, reference_spread
from .recipes import Recipe, build_data, recipe
from .store import MANIFEST, WRITE_WAIT, ZooError, build_dir, manifest, manifest_text, sha256, zoo_lock

__all__ = ["build", "export"]


def export(model: torch.nn.Module, file: str | os.PathLike, *, result: Any = None, data: Any = None,
           r: Recipe | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Write `model` as a zoo checkpoint: weights in `dtype`, no optimiser state, the recipe inside."""
    stored = copy.deepcopy(model).cpu().to(dtype)
    extra = {"zoo": {"recipe": r.to_dict() if r is not None else None, "stored_dtype": str(dtype).replace("torch.", "")}}
    path = save_checkpoint(file, stored, train_config=None if result is None else result.config,
                           history=None if result is None else result.history, dataset=data,
                           step=0 if result is None else int(result.last.get("step", 0) or 0), extra=extra)
    os.chmod(path, 0o644)  # a shipped file, readable by everyone
    return path


def build(name: str | Recipe, *, folder: str | os.PathLike | None = None, work_dir: str | os.PathLike = "runs/zoo",
          overwrite: bool = False, device: str = "auto", num_threads: int | None = None,
          progress: bool = False) -> dict[str, Any]:
    """Train, export, measure and record one zoo model; returns its manifest entry.

    Refuses to replace a model the zoo already has unless `overwrite=True`. Raises
    `FolderInUseError` when another build holds the zoo folder, and PermissionError (before any
    data is built or model trained) when the folder or `work_dir` cannot be written.
    """
    r = recipe(name)
    folder = build_dir(folder)  # never the read-only shipped zoo of an installed facelib
    check_writable(folder, "zoo")  # a real recipe trains for 10-38 minutes: fail before, not after
    with zoo_lock(folder):
        recover_staged(folder)  # an earlier build killed mid-commit: back to a consistent zoo first
        _refuse_existing(r, folder, overwrite)
    check_writable(work_dir, "--work-dir")  # where the run's checkpoints go: before the data and training
    data = build_data(r)
    t0 = time.perf_counter()
    # an interrupted build continues its run folder; a finished one there is taken as it is
    result = run_experiment(r.spec(), Path(work_dir) / r.name, dataset=data, checkpoint_every=5, device=device,
                            progress=progress, num_threads=num_threads)
    wall = time.perf_counter() - t0
    with zoo_lock(folder, wait=WRITE_WAIT):  # another build may be committing (and measuring) its model
        _refuse_existing(r, folder, overwrite)  # built by someone else while this one trained
        with staged_update(folder) as stage:  # the old weights and manifest stay until both new ones are ready
            with _zoo_write(r, folder, Path(work_dir) / r.name, overwrite):
                staged = export(result.model, stage.path(f"{r.name}.pt"), result=result, data=data, r=r)
            stored = load_model(staged)
            measured = headline_metrics(stored, r)
            record = _record(r, f"{r.name}.pt", staged, result, measured, wall, device)
            record["latent_spread"] = reference_spread(stored, r)
            record["aggregate_posterior"] = aggregate_posterior(stored, r, data).to_dict()
            with _zoo_write(r, folder, Path(work_dir) / r.name, overwrite):
                stage.path(MANIFEST).write_text(manifest_text({**manifest(folder), r.name: record}))
    return record


@contextmanager
def _zoo_write(r: Recipe, folder: Path, run_folder: Path, overwrite: bool) -> Iterator[None]:
    """A failed write of the new weights or manifest said in the zoo's terms: the staged files are
    internal, and the finished run needs no --resume (`zoo build` takes it as it is)."""
    try:
        yield
    except OSError as err:
        _, why, disk_full = write_failure(folder, err)
        again = f"python -m facelib zoo build {r.name}{' --overwrite' if overwrite else ''}"
        raise ZooError(f"could not write {r.name} into the zoo {folder}: {why}; the zoo is unchanged (its models and "
                       f"manifest are as they were); the trained run is kept in {run_folder}: "
                       f"{'free some space' if disk_full else 'make the zoo folder writable'} and rerun `{again}`, "
                       "which exports that run without training again") from err


def _refuse_existing(r: Recipe, folder: Path, overwrite: bool) -> None:
    if r.name in manifest(folder) and not overwrite:
        raise ZooError(f"the zoo in {folder} already has {r.name!r}; pass overwrite=True (--overwrite) to "
                       "rebuild and replace it")


def _record(r: Recipe, name: str, file: Path, result: Any, measured: dict[str, Any], wall: float,
            device: str) -> dict[str, Any]:
    """The manifest entry of a built model stored in `file` (under the final `name`)."""
    hist = result.history
    return {
        "file": name,
        "sha256": sha256(file),
        "bytes": file.stat().st_size,
        "description": r.description,
        "recipe": r.to_dict(),
        "git_commit": git_commit(Path(__file__).parent),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training": {
            "steps": int(result.last.get("step", 0) or 0),
            "train_seconds": round(float(hist["time_s"].sum()) if "time_s" in hist else wall, 1),
            "wall_seconds_this_build": round(wall, 1),
            "hardware": machine_info(device),
        },
        "metrics": measured,
        "tolerance": {k: TOLERANCE[k] for k in measured if k in TOLERANCE},
        "curve": training_curve(hist),
    }


#: The columns of a run's history a manifest keeps as its training curve (`training_curve`).
CURVE_COLUMNS = ("step", "train_loss", "val_loss", "val_recon_nll", "val_kl")


def training_curve(history) -> dict[str, list]:
    """The training curve a zoo entry carries, one value per epoch: steps and the training and
    held-out losses (nats per image), so whether a model had converged can be read without it."""
    curve: dict[str, list] = {}
    for column in CURVE_COLUMNS:
        if column in history:
            values = [float(v) for v in history[column]]
            curve[column] = ([int(v) for v in values] if column == "step"
                             else [round(v, 3) if math.isfinite(v) else None for v in values])
    return curve
