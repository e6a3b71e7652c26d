"""Sweeps: a grid of trainings (models x betas x seeds x any spec field) run as tasks, into one tidy CSV.

``python -m facelib sweep --models beta-vae factor-vae --betas 1 4 --seeds 0 1 --data synthetic
--data-option n=2000 --epochs 20 --metrics beta_vae mig --out runs/sweep1`` trains every
combination (any `fit` option through its own flag, as on `train`, or ``--fit key=value``, any
model field through ``--set``, any `metrics.evaluate` option through ``--metric-option``; values
read by `facelib.options.parse_assignments`). ``--spec FILE`` makes an experiment spec (from
``facelib train ... --dump-spec``) every trial's base, and ``--grid FIELD=V1,V2,...`` (repeatable;
FIELD a dotted spec path, `ExperimentSpec.updated`: ``training.lr=1e-3,5e-4``,
``model.options.gamma=10,40``) sweeps any field: the trials are the product, and a trial's id
names its grid values (``beta-vae_beta=4_training.lr=0.001_seed=0``; results.csv keeps its
columns). `trial_spec(job)` is each trial's spec. The sweep writes:

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
from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec, load_spec, run
from facelib.experiment.cli import add_training_flags
from facelib.files import atomic_path, folder_lock
from facelib.metrics import evaluate
from facelib.models import MODELS
from facelib.options import (UsageError, check_names, convert, field_types, given_fields, parse_assignments,
                             parse_list)
from facelib.train import TrainConfig

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
#: Grid fields that are the sweep's own axes (--models, --betas, --seeds) under their spec paths.
AXES = {"model.name": "models", "model.options.beta": "betas", "training.seed": "seeds"}


def _tag(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else json.dumps(value, sort_keys=True) \
        if isinstance(value, (dict, list)) else str(value)


def trial_id(model: str, beta: float | None, seed: int, fields: dict[str, Any] | None = None) -> str:
    """``beta-vae_beta=4_seed=0``; grid fields go before the seed by their spec path
    (``beta-vae_beta=4_training.lr=0.001_seed=0``)."""
    tag = "" if beta is None else f"_beta={beta:g}"
    more = "".join(f"_{path}={_tag(value)}" for path, value in (fields or {}).items())
    return re.sub(r"[^A-Za-z0-9.=_+-]+", "_", f"{model}{tag}{more}_seed={seed}")


def grid(models: Sequence[str], betas: Sequence[float | None], seeds: Sequence[int],
         fields: dict[str, Sequence[Any]] | None = None) -> list[dict[str, Any]]:
    """Every (model, beta, seed, grid point), with its trial id; beta None keeps the model's
    default. Model names are the registry's ("VAE" and "vae" are one model). `fields` maps a
    dotted spec path (`ExperimentSpec.updated`: "training.lr", "model.options.gamma") to its
    values; a trial with grid fields carries them as ``grid`` ({path: value})."""
    models = [MODELS.canonical(m) for m in models]
    fields = dict(fields or {})
    own = sorted(set(fields) & set(AXES))
    if own:
        raise ValueError(f"grid field(s) {own} are the sweep's own axes: give them as "
                         f"{', '.join('--' + AXES[p] for p in own)}")
    paths = list(fields)
    trials = []
    for m, b, s, *point in itertools.product(models, betas or [None], seeds, *(fields[p] for p in paths)):
        trial = {"trial": trial_id(m, b, s, dict(zip(paths, point))), "model": m, "beta": b, "seed": int(s)}
        if paths:
            trial["grid"] = dict(zip(paths, point))
        trials.append(trial)
    ids = [t["trial"] for t in trials]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the grid repeats trials ({', '.join(sorted({i for i in ids if ids.count(i) > 1}))}); "
                         "give each model, beta, seed and grid value once")
    return trials


def _metric_source(data: str, options: dict[str, Any]):
    if data != "synthetic":
        raise ValueError(f"disentanglement metrics need a factor source; data {data!r} has none here - "
                         "use --data synthetic, or no --metrics")
    return SyntheticFaces(size=int(options.get("size", 64)), channels=int(options.get("channels", 1)),
                          n_identities=int(options.get("n_identities", 100)), seed=int(options.get("seed", 0)))


def trial_spec(job: dict[str, Any]) -> ExperimentSpec:
    """The experiment of one trial: the shared base (a whole spec under ``spec``, or the data set,
    model fields and `fit` options), with the trial's model, beta, seed and grid values set."""
    if job.get("spec") is not None:
        base = ExperimentSpec.from_dict(job["spec"])
    else:
        base = ExperimentSpec(data=DataSpec(job["data"], job.get("data_options", {})),
                              model=ModelSpec(job["model"], job.get("model_fields", {})),
                              training={"progress": False, **job.get("fit", {})})
    changes = {"model.name": job["model"], "training.seed": job["seed"],
               **({} if job.get("beta") is None else {"model.options.beta": job["beta"]}), **job.get("grid", {})}
    return base.updated(changes)


def run_trial(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Train one trial into its folder (`experiment.run`: an unfinished one resumes) and measure
    it: its rows."""
    t0 = time.perf_counter()
    spec = trial_spec(job)
    result = run(spec, job["out"])
    rows = [{"metric": k, "value": float(result.last[k])} for k in HISTORY_TERMS if k in result.last]
    if job.get("metrics"):
        table = evaluate(result.model, _metric_source(spec.data.name, spec.data.options),
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
#: TrainConfig fields the sweep sets itself (seeds: --seeds; folders: --out).
SWEEP_SETS = ("seed",)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m facelib sweep`."""
    parser.add_argument("--spec", default=None, metavar="FILE",
                        help="an experiment spec as every trial's base (e.g. from `facelib train ... --dump-spec`); "
                             "the other flags change only what they name")
    parser.add_argument("--models", nargs="+", default=None,
                        help="model names, e.g. beta-vae factor-vae (default: the --spec's model)")
    parser.add_argument("--betas", nargs="+", type=float, default=[], help="KL weights (default: the model's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="training seeds (default: the --spec's, or 0)")
    parser.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                        help="sweep any spec field too (a dotted path, e.g. training.lr=1e-3,5e-4 or "
                             "model.options.gamma=[10, 40]); repeatable: trials are the product")
    parser.add_argument("--data", default=None,
                        help="data set name (see facelib.data.available(); default: the --spec's)")
    parser.add_argument("--data-option", dest="data_options", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="sweep folder (results.csv, trials/, sweep.json)")
    parser.add_argument("--fit", dest="fit_options", action="append", default=[], metavar="KEY=VALUE",
                        help="any TrainConfig field, e.g. val_fraction=0.1, precision=bf16 (or its own flag below)")
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
    add_training_flags(parser, exclude=SWEEP_SETS)


#: TrainConfig fields with a sweep flag.
_FIT_FLAGS = [name for name in field_types(TrainConfig) if name not in ("out", "resume", "overwrite", *SWEEP_SETS)]


def _fit_options(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """`base` (a spec's training fields) with --fit and the TrainConfig flags applied; without a
    base only what was given, with the trial's CPU threads. Checked by TrainConfig now."""
    given = {**parse_assignments(args.fit_options, "--fit", field_types(TrainConfig), what="TrainConfig field"),
             **given_fields(args, _FIT_FLAGS)}
    for key in ("seed", "out", "resume", "overwrite"):
        if key in given:
            raise UsageError(f"--fit {key}=... is set by the sweep (seeds: --seeds; folders: --out)")
    fit_options = {**(base or {}), **given}
    if base is not None and "progress" not in given:
        fit_options["progress"] = False  # trials run as tasks: no progress bars
    if fit_options.get("num_threads") is None:
        fit_options["num_threads"] = max(1, int(args.cpus_per_trial))
    TrainConfig().replace(**fit_options)  # a bad field or value fails here, before any trial starts
    return fit_options


def _shared(args: argparse.Namespace) -> dict[str, Any]:
    """What every trial shares: without --spec the data set, its options, model fields and `fit`
    options; with --spec the whole base spec (those flags applied to it) under ``spec``."""
    metrics = {"metrics": list(args.metrics),
               "metric_options": parse_assignments(args.metric_options, "--metric-option", what="metric option")}
    data_options = parse_assignments(args.data_options, "--data-option", what="loader option")
    model_fields = parse_assignments(args.model_fields, "--set", what="model field")
    if args.spec is None:
        if args.data is None or not args.models:
            raise UsageError("give --models and --data (or --spec FILE as every trial's base)")
        return {"data": args.data, "data_options": data_options, "model_fields": model_fields,
                "fit": _fit_options(args), **metrics}
    if not Path(args.spec).is_file():
        raise UsageError(f"--spec {args.spec}: no such file; write one with `python -m facelib train ... "
                         "--dump-spec > FILE`")
    spec = load_spec(args.spec)
    if spec.data is None and args.data is None:
        raise UsageError(f"{args.spec} names no data set; give --data")
    training = {k: v for k, v in spec.to_dict()["training"].items() if k != "seed"}
    data = DataSpec(args.data or spec.data.name, {**({} if spec.data is None else spec.data.options), **data_options},
                    None if spec.data is None else spec.data.patches)
    base = ExperimentSpec(data=data, model=ModelSpec(spec.model.name, {**spec.model.options, **model_fields}),
                          training={**_fit_options(args, training), "seed": spec.training.seed})
    return {"spec": base.to_dict(), **metrics}


def _grid_fields(items: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        path, sep, values = item.partition("=")
        path = path.strip()
        if not sep or not path or not values.strip():
            raise UsageError(f"--grid expects FIELD=V1,V2,... (a dotted spec path such as training.lr), got {item!r}")
        if path in out:
            raise UsageError(f"--grid {path} is given twice; give each field once, with all its values")
        out[path] = parse_list(values)
    return out


def _trials(args: argparse.Namespace, shared: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid of the command line: --models x --betas x --seeds x every --grid field; a grid
    field that is one of those axes (model.name, model.options.beta, training.seed) is that axis,
    and a --spec's model, beta and seed are the axes' defaults."""
    fields = _grid_fields(args.grid)
    spec = shared.get("spec")
    spec_beta = (spec["model"]["options"].get("beta") if spec else None)
    axes = {"models": args.models or ([spec["model"]["name"]] if spec else []),
            "betas": list(args.betas) or ([spec_beta] if spec_beta is not None else []),
            "seeds": args.seeds or [spec["training"]["seed"] if spec else 0]}
    for path, name in AXES.items():
        if path in fields:
            if {"models": args.models, "betas": args.betas, "seeds": args.seeds}[name]:
                raise UsageError(f"--grid {path}=... and --{name} both give the {name}; give them once")
            axes[name] = fields.pop(path)
    trials = grid(axes["models"], axes["betas"], axes["seeds"], fields)
    for trial in trials:  # every trial makes a valid spec with known, well-typed model fields: checked now
        check_model_fields(trial_spec({**shared, **trial}))
    return trials


def check_model_fields(spec: ExperimentSpec) -> None:
    """`UsageError` when the spec's model options name a field its model's config lacks, or give
    a value of another type than the field's."""
    name = spec.model.name
    types = field_types(MODELS[name].config_class)
    check_names(spec.model.options, types, f"model {name}", "config field")
    for key, value in spec.model.options.items():
        convert(value, types[key], f"model {name}'s {key}")


def main_from_args(args: argparse.Namespace) -> int:
    """Run the sweep (0 when every trial finished); errors rise to `cli.main`, Ctrl-C with where
    the finished trials are."""
    def log(text: str) -> None:
        print(f"facelib sweep: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_a, **_k: log(f"warning: {message}")
        try:
            return _main(args, log)
        except KeyboardInterrupt as err:
            raise KeyboardInterrupt(f"finished trials are in {Path(args.out) / 'results.csv'}, a rerun runs the "
                                    "rest") from err


def _main(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    shared = _shared(args)
    trials = _trials(args, shared)
    runner = executor(args.executor, args.workers, args.address, args.cpus_per_trial, args.gpus_per_trial)
    log(f"{len(trials)} trials on {type(runner).__name__}")
    table = run_grid(trials, shared, args.out, runner, log)
    print(Path(args.out) / "results.csv")
    print(f"{table['trial'].nunique()} trials, {len(table)} rows", file=sys.stderr)
    return 0
