"""Sweeps: a grid of trainings (models x betas x seeds) run as tasks, into one tidy CSV.

``python -m facelib sweep --models beta-vae factor-vae --betas 1 4 --seeds 0 1 --data synthetic
--data-option n=2000 --epochs 20 --metrics beta_vae mig --out runs/sweep1`` trains every
combination (any `fit` option through ``--fit key=value``, any model field through ``--set``,
any `metrics.evaluate` option through ``--metric-option``) and writes:

* ``out/results.csv``: one row per number (trial, model, beta, seed, metric, value,
  checkpoint): the last epoch's losses from the history, then the metrics;
* ``out/trials/<trial>/checkpoint.pt`` (and history.csv): each trial's run folder;
* ``out/sweep.json``: the options every trial shares; a re-run with other options is
  refused, a re-run with the same ones skips the trials already in results.csv (a trial
  stopped midway resumes from its checkpoint), so nothing finished is redone or overwritten.

A sweep holds its folder's lock while it runs (a second sweep into the same ``--out`` is refused
with the holder's pid, never two writers of one results.csv); results.csv is replaced
atomically after every trial, and a damaged one (a row cut short by a crash or a copy) is
read with that trial's rows dropped, with a warning, so the trial runs again.

Executors (`executor(...)`): `RayExecutor` runs one Ray task per trial with its CPU/GPU
request, on a local Ray (started here) or on a cluster (``--address``; facelib must be
installed on its nodes); `LocalExecutor` runs trials in local processes (threads for the
notebook sweep, whose work is in kernel processes already). Ray is the optional extra
``pip install -e '.[cluster]'``; without it the local executor is the default.
`facelib.study.pipeline.run_sweep` uses the same executors (`facelib.study.executors`).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from facelib.data.synthetic import SyntheticFaces
from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec, run
from facelib.files import atomic_path, folder_lock
from facelib.metrics import evaluate
from facelib.models import MODELS
from facelib.train import TrainConfig
from facelib.experiment.cli import parse_assignments

from .executors import RAY_HINT, LocalExecutor, RayExecutor, executor

__all__ = ["LocalExecutor", "RayExecutor", "executor", "grid", "trial_spec", "run_trial", "run_grid", "trial_id",
           "configure_parser", "main_from_args", "read_results", "RESULT_COLUMNS"]

#: Columns of results.csv.
RESULT_COLUMNS = ["trial", "model", "beta", "seed", "metric", "value", "checkpoint"]
#: Columns a finished row always fills (beta is empty for a model's default).
REQUIRED_COLUMNS = ["trial", "model", "seed", "metric", "value", "checkpoint"]
#: The metric every finished trial writes last: a trial without it is incomplete.
LAST_METRIC = "seconds"
#: History columns reported per trial (those the run has).
HISTORY_TERMS = ("train_loss", "train_elbo_nats", "val_loss", "val_elbo_nats", "val_bits_per_dim", "images_per_s")


# -- trials -----------------------------------------------------------------------------------
def trial_id(model: str, beta: float | None, seed: int) -> str:
    tag = "" if beta is None else f"_beta={beta:g}"
    return re.sub(r"[^A-Za-z0-9.=_+-]+", "_", f"{model}{tag}_seed={seed}")


def grid(models: Sequence[str], betas: Sequence[float | None], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Every (model, beta, seed), with its trial id; beta None keeps the model's default. Model
    names are the registry's ("VAE" and "vae" are one model)."""
    models = [MODELS.canonical(m) for m in models]
    trials = [{"trial": trial_id(m, b, s), "model": m, "beta": b, "seed": int(s)}
              for m, b, s in itertools.product(models, betas or [None], seeds)]
    ids = [t["trial"] for t in trials]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the grid repeats trials ({', '.join(sorted({i for i in ids if ids.count(i) > 1}))}); "
                         "give each model, beta and seed once")
    return trials


def _metric_source(data: str, options: dict[str, Any]):
    if data != "synthetic":
        raise ValueError(f"disentanglement metrics need a factor source; data {data!r} has none here - "
                         "use --data synthetic, or no --metrics")
    return SyntheticFaces(size=int(options.get("size", 64)), channels=int(options.get("channels", 1)),
                          n_identities=int(options.get("n_identities", 100)), seed=int(options.get("seed", 0)))


def trial_spec(job: dict[str, Any]) -> ExperimentSpec:
    """The experiment of one trial: the shared data set, model fields and `fit` options, the
    trial's model, beta and seed."""
    options = {**job.get("model_fields", {}), **({} if job.get("beta") is None else {"beta": job["beta"]})}
    training = {"progress": False, **job.get("fit", {}), "seed": job["seed"]}
    return ExperimentSpec(data=DataSpec(job["data"], job.get("data_options", {})),
                          model=ModelSpec(job["model"], options), training=training)


def run_trial(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Train one trial into its folder (`experiment.run`: an unfinished one resumes) and measure
    it: its rows."""
    t0 = time.perf_counter()
    result = run(trial_spec(job), job["out"])
    rows = [{"metric": k, "value": float(result.last[k])} for k in HISTORY_TERMS if k in result.last]
    if job.get("metrics"):
        table = evaluate(result.model, _metric_source(job["data"], job.get("data_options", {})),
                         metrics=tuple(job["metrics"]), seed=job["seed"], **job.get("metric_options", {}))
        rows += [{"metric": f"{m}.{s}", "value": float(v)}
                 for m, s, v in table[["metric", "submetric", "value"]].itertuples(index=False)]
    rows.append({"metric": "seconds", "value": time.perf_counter() - t0})
    base = {k: job[k] for k in ("trial", "model", "beta", "seed")}
    return [{**base, **row, "checkpoint": str(result.checkpoint)} for row in rows]


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, na_rep="nan")  # an empty field only ever means a damaged row


def read_results(csv_path: str | os.PathLike) -> pd.DataFrame:
    """The finished rows of a sweep's results.csv; a trial with a damaged row is dropped (warned).

    A row is damaged when it cannot be parsed or leaves a required column empty (a file cut mid-row
    by a crash or a full disk); a trial is finished only when its rows end with its `seconds` row.
    The dropped trials are left out, so a rerun trains (resumes) and measures them again.
    """
    csv_path = Path(csv_path)
    if not csv_path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    text = csv_path.read_text(encoding="utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    if records[0] != RESULT_COLUMNS:
        raise ValueError(f"{csv_path} has columns {records[0]}, not a sweep's {RESULT_COLUMNS}; move it away (a "
                         "rerun then measures every trial again) or give a new --out")
    cut = not text.endswith("\n")  # the file ends inside its last row
    rows, damaged = [], set()
    for number, fields in enumerate(records[1:], start=1):
        if not fields:
            continue
        row = dict(zip(RESULT_COLUMNS, fields))
        if (len(fields) != len(RESULT_COLUMNS) or (cut and number == len(records) - 1)
                or any(not row[c].strip() for c in REQUIRED_COLUMNS) or not _numbers(row)):
            damaged.add(fields[0])
            continue
        rows.append(row)
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    table = table.astype({"seed": int, "value": float})
    table["beta"] = pd.to_numeric(table["beta"].replace("", None), errors="coerce")
    complete = set(table.loc[table["metric"] == LAST_METRIC, "trial"])
    unfinished = (set(table["trial"]) - complete) | damaged
    if unfinished:
        shown = ", ".join(sorted(t or "(unnamed)" for t in unfinished))
        warnings.warn(f"{csv_path} has damaged or incomplete rows (trial(s) {shown}); those trials' rows are dropped "
                      "and they run again", UserWarning, stacklevel=2)
        table = table[~table["trial"].isin(unfinished)].reset_index(drop=True)
    return table


def _numbers(row: dict[str, str]) -> bool:
    """Whether a row's numeric fields read as numbers (a measured NaN is written "nan", never empty)."""
    try:
        float(row["value"])
        seed = float(row["seed"])
        if row["beta"].strip():
            float(row["beta"])
    except ValueError:
        return False
    return seed.is_integer()


def run_grid(trials: Sequence[dict[str, Any]], shared: dict[str, Any], out: str | os.PathLike,
             runner=None, log: Callable[[str], None] = lambda s: None) -> pd.DataFrame:
    """Run the trials not yet in `out/results.csv` on `runner` (an executor); the whole table.

    `shared` holds what every trial shares (data, data_options, model_fields, fit, metrics,
    metric_options); a sweep folder made with other shared options is refused. The folder's
    lock is held throughout: a second sweep into `out` raises FolderInUseError before it starts.
    """
    with folder_lock(out, "sweep folder", "another sweep is running there",
                     "wait for it to finish (a rerun then runs only what is missing), or give this sweep "
                     "another --out"):
        return _run_grid(trials, shared, Path(out), runner, log)


def _run_grid(trials, shared, out: Path, runner, log) -> pd.DataFrame:
    spec_path, csv_path = out / "sweep.json", out / "results.csv"
    shared = json.loads(json.dumps(shared, default=str))
    if spec_path.exists():
        before = json.loads(spec_path.read_text())
        if before != shared:
            changed = sorted(k for k in set(before) | set(shared) if before.get(k) != shared.get(k))
            raise ValueError(f"{out} holds a sweep with other options ({', '.join(changed)} differ); "
                             "rerun with the same options to complete it, or give a new --out")
    else:
        with atomic_path(spec_path) as tmp:
            tmp.write_text(json.dumps(shared, indent=1, sort_keys=True))
    table = read_results(csv_path)
    finished = set(table["trial"].astype(str))
    todo = [t for t in trials if t["trial"] not in finished]
    log(f"{len(trials) - len(todo)} of {len(trials)} trials finished already; running {len(todo)}")
    jobs = [{**shared, **t, "out": str(out / "trials" / t["trial"])} for t in todo]
    failures = []
    for i, rows, error in (runner or LocalExecutor()).run(run_trial, jobs):
        if error is not None:
            failures.append((todo[i]["trial"], error))
            log(f"trial {todo[i]['trial']} failed: {type(error).__name__}: {error}")
            continue
        table = pd.concat([table, pd.DataFrame(rows, columns=RESULT_COLUMNS)], ignore_index=True) if len(table) \
            else pd.DataFrame(rows, columns=RESULT_COLUMNS)
        _write_csv(csv_path, table)
        log(f"trial {todo[i]['trial']} done")
    if failures:
        trial, error = failures[0]
        raise RuntimeError(f"{len(failures)} of {len(todo)} trials failed, first {trial}: {type(error).__name__}: "
                           f"{error}; the finished ones are in {csv_path}, and a rerun runs only the rest") from error
    return table


# -- command line -----------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m facelib sweep`."""
    parser.add_argument("--models", nargs="+", required=True, help="model names, e.g. beta-vae factor-vae")
    parser.add_argument("--betas", nargs="+", type=float, default=[], help="KL weights (default: the model's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data", required=True, help="data set name (see facelib.data.available())")
    parser.add_argument("--data-option", dest="data_options", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="sweep folder (results.csv, trials/, sweep.json)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--fit", dest="fit_options", action="append", default=[], metavar="KEY=VALUE",
                        help="any TrainConfig field, e.g. val_fraction=0.1, precision=bf16")
    parser.add_argument("--set", dest="model_fields", action="append", default=[], metavar="KEY=VALUE",
                        help="any model config field, e.g. latent_dim=10")
    parser.add_argument("--metrics", nargs="*", default=[], help="metrics.evaluate metrics, e.g. beta_vae mig")
    parser.add_argument("--metric-option", dest="metric_options", action="append", default=[], metavar="KEY=VALUE",
                        help="metrics.evaluate option, e.g. n_train=300 or mig='{\"n_train\": 2000}'")
    parser.add_argument("--executor", choices=("auto", "ray", "local"), default="auto",
                        help=f"auto: Ray when installed ({RAY_HINT}), else local processes")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    parser.add_argument("--cpus-per-trial", type=float, default=1)
    parser.add_argument("--gpus-per-trial", type=float, default=0)
    parser.add_argument("--workers", type=int, default=1, help="trials at once on a local executor or local Ray")


def _shared(args: argparse.Namespace) -> dict[str, Any]:

    fit_options = parse_assignments(args.fit_options, "--fit")
    for flag, key in (("epochs", "epochs"), ("max_steps", "max_steps"), ("batch_size", "batch_size"), ("lr", "lr")):
        if getattr(args, flag) is not None:
            fit_options[key] = getattr(args, flag)
    for key in ("seed", "out", "resume"):
        if key in fit_options:
            raise ValueError(f"--fit {key}=... is set by the sweep (seeds: --seeds; folders: --out)")
    if "num_threads" not in fit_options:
        fit_options["num_threads"] = max(1, int(args.cpus_per_trial))
    TrainConfig().replace(**fit_options)  # a bad field or value fails here, before any trial starts
    return {"data": args.data, "data_options": parse_assignments(args.data_options, "--data-option"),
            "model_fields": parse_assignments(args.model_fields, "--set"), "fit": fit_options,
            "metrics": list(args.metrics), "metric_options": parse_assignments(args.metric_options, "--metric-option")}


def main_from_args(args: argparse.Namespace) -> int:
    """Run the sweep; 0 when every trial finished, 1 on failures or bad input (message on stderr)."""
    def log(text: str) -> None:
        print(f"facelib sweep: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_a, **_k: log(f"warning: {message}")
        return _main(args, log)


def _main(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    try:
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        shared = _shared(args)
        trials = grid(args.models, args.betas, args.seeds)
        runner = executor(args.executor, args.workers, args.address, args.cpus_per_trial, args.gpus_per_trial)
        log(f"{len(trials)} trials on {type(runner).__name__}")
        table = run_grid(trials, shared, args.out, runner, log)
    except KeyboardInterrupt:
        log(f"interrupted; finished trials are in {Path(args.out) / 'results.csv'}, a rerun runs the rest")
        return 130
    except (ValueError, TypeError, RuntimeError, OSError, ImportError) as exc:
        log(f"error: {exc}")
        return 1
    print(Path(args.out) / "results.csv")
    print(f"{table['trial'].nunique()} trials, {len(table)} rows", file=sys.stderr)
    return 0
