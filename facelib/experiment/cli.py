"""`python -m facelib train`: the experiment a command line (or `--spec FILE`) describes, run by
`experiment.run`, with a summary.

Example: ``python -m facelib train --model beta-vae --beta 4 --data olivetti --epochs 30
--out runs/b4``; data-parallel: ``torchrun --nproc-per-node 2 -m facelib train ...`` or
``--nproc 2`` (the processes share every global batch; rank 0 prints and writes). It is a
thin layer over `experiment.run` (same code path as the notebooks, sweeps and the zoo).

Every `TrainConfig` field has its flag, made from the dataclass (`TRAIN_FLAGS`,
`facelib.options.add_dataclass_flags`: ``--batch-size``, ``--kl-warmup-steps``, ``--hflip /
--no-hflip``, ``--max-steps none``; typed by the field, its help the field's doc); ``--layout`` and
``--no-best`` are kept as other spellings of ``--channels-last`` and ``--no-keep-best``. Model
config fields without their own flag go through ``--set key=value`` and loader options through
``--data-option key=value``, read by `facelib.options.parse_assignments` (YAML values:
``--set learn_scale=True``, ``--set blocks='{"identity": 16}'``; a model field's value is checked
against its declared type). ``--dump-spec`` prints the spec the command line makes, and
``--spec FILE`` reads one back (the other flags then change only what they name), so
``train ... --dump-spec > s.yaml; train --spec s.yaml`` trains the same run. ``--snapshots`` /
``--tensorboard`` add the shipped callbacks (PNGs of reconstructions and samples, TensorBoard
logs) to OUT.

Errors rise to `facelib.cli.main` (one line; exit 2 for a bad value, 1 for a failure at run
time); Ctrl-C re-raises KeyboardInterrupt with the state of the run folder
(`train.engine.describe_checkpoint`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from facelib.data import dataset_info, translate_options
from facelib.models import MODELS, units
from facelib.options import UsageError, add_dataclass_flags, field_types, given_fields, parse_assignments
from facelib.train import Snapshots, TensorBoard, TrainConfig, distributed
from facelib.train.config import LR_SCHEDULES, PRECISIONS
from facelib.train.engine import describe_checkpoint

from .runner import run
from .spec import RUN_FIELDS, DataSpec, ExperimentSpec, ModelSpec, load_spec

__all__ = ["configure_parser", "main_from_args", "spec_from_args", "add_training_flags", "TRAIN_FLAGS"]

#: `--layout` values -> TrainConfig.channels_last (the older spelling of --channels-last).
LAYOUTS = {"auto": "auto", "channels-last": True, "nchw": False}


def _layout(text: str) -> Any:
    if text not in LAYOUTS:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(LAYOUTS)}, got {text!r}")
    return LAYOUTS[text]


def add_training_flags(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> list[str]:
    """One flag per `TrainConfig` field but the run fields (out, resume, overwrite) and `exclude`,
    in a group of `parser`; the fields flagged (`options.given_fields` reads what was given)."""
    group = parser.add_argument_group("training (TrainConfig fields; not given: the spec's or the default)")
    return add_dataclass_flags(group, TrainConfig, exclude=RUN_FIELDS + tuple(exclude),
                               choices={"precision": PRECISIONS, "lr_schedule": LR_SCHEDULES})


#: The TrainConfig fields `train` has flags for: all but the run fields.
TRAIN_FLAGS: list[str] = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RUN_FIELDS]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the `train` options to `parser`."""
    parser.add_argument("--spec", default=None, metavar="FILE",
                        help="an experiment spec (YAML or JSON, e.g. from --dump-spec); other flags change only what "
                             "they name")
    parser.add_argument("--dump-spec", action="store_true",
                        help="print the spec this command line makes (YAML) and exit without training")
    parser.add_argument("--model", default=None, help=f"model name: {MODELS.known()}")
    parser.add_argument("--data", default=None, help="data set name (see facelib.data.available())")
    parser.add_argument("--out", default=None, help="run folder for checkpoint.pt and history.csv (none: nothing saved)")
    parser.add_argument("--resume", action="store_true",
                        help="(kept for older scripts) an unfinished run of the same spec in --out always continues")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --out (its files stay until the new run's first checkpoint)")
    parser.add_argument("--change", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                        help="continue the unfinished run in --out with a training field changed, e.g. lr=0.005 "
                             "(recorded in its history); a resume with other changed options is refused")
    parser.add_argument("--snapshots", action="store_true",
                        help="each epoch, reconstructions and prior samples of 8 fixed faces as PNGs in OUT/snapshots")
    parser.add_argument("--tensorboard", action="store_true",
                        help="log every loss term and those images to OUT/tensorboard "
                             "(needs pip install 'facelib[tensorboard]')")
    model = parser.add_argument_group("model (config fields; any other through --set)")
    model.add_argument("--architecture", default=None,
                       help="encoder/decoder pair: small (default) or resnet (set its options with "
                            "--set architecture_options='{\"width\": 32}')")
    model.add_argument("--latent-dim", type=int, default=None, help="number of latents (model default: 32)")
    model.add_argument("--beta", type=float, default=None, help="KL weight (beta-vae, modvae, beta-tcvae)")
    model.add_argument("--image-size", type=int, default=None,
                       help="image side; the data set is loaded at this size when its loader can resize")
    model.add_argument("--channels", type=int, default=None, choices=(1, 3), help="1 grey, 3 colour")
    model.add_argument("--set", dest="model_fields", action="append", default=[], metavar="KEY=VALUE",
                       help="any model config field, e.g. gamma=10, learn_scale=True, blocks='{\"identity\": 16}'")
    parser.add_argument("--data-option", dest="data_options", action="append", default=[], metavar="KEY=VALUE",
                        help="loader option passed to facelib.data.load, e.g. size=64, min_faces_per_person=20")
    add_training_flags(parser)
    parser.add_argument("--layout", dest="channels_last", type=_layout, default=argparse.SUPPRESS,
                        metavar="{auto,channels-last,nchw}",
                        help="memory layout of the convolutions: --channels-last auto / true / false by another name")
    parser.add_argument("--no-best", dest="keep_best", action="store_false", default=argparse.SUPPRESS,
                        help="same as --no-keep-best: do not keep best.pt")


def _fmt(value: Any, spec: str = ".4g") -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


def main_from_args(args: argparse.Namespace) -> int:
    """Run the command (0); errors rise to `cli.main`, and Ctrl-C rises with what the run folder holds."""
    started = time.time()
    try:
        return _train(args)
    except KeyboardInterrupt as err:
        raise KeyboardInterrupt(describe_checkpoint(args.out, started if args.overwrite else None)) from err


def _callbacks(args: argparse.Namespace) -> list:
    """--snapshots / --tensorboard as fit's callbacks (both write into --out)."""
    asked = [flag for flag, on in (("--snapshots", args.snapshots), ("--tensorboard", args.tensorboard)) if on]
    if asked and args.out is None:
        raise UsageError(f"{' and '.join(asked)} write into the run folder: give --out")
    return ([Snapshots()] if args.snapshots else []) + ([TensorBoard()] if args.tensorboard else [])


def spec_from_args(args: argparse.Namespace) -> ExperimentSpec:
    """The experiment a command line describes: `--spec FILE` as the base (the flags then change
    only what they name), else `--model` and `--data` with their options. `--set` values are
    checked against the model's config fields' types."""
    data_options = parse_assignments(args.data_options, "--data-option", what="loader option")
    if args.spec is not None:
        if not Path(args.spec).is_file():
            raise UsageError(f"--spec {args.spec}: no such file; write one with `python -m facelib train ... "
                             "--dump-spec > FILE`")
        spec = load_spec(args.spec)
        if args.model is not None or args.data is not None:
            spec = spec.updated({**({"model.name": args.model} if args.model else {}),
                                 **({"data.name": args.data} if args.data else {})})
    else:
        missing = [flag for flag, value in (("--model", args.model), ("--data", args.data)) if value is None]
        if missing:
            raise UsageError(f"give {' and '.join(missing)} (or --spec FILE)")
        spec = ExperimentSpec(model=ModelSpec(args.model), data=DataSpec(args.data))
    if spec.data is None:
        raise UsageError("the spec names no data set; give --data")
    model_fields = parse_assignments(args.model_fields, "--set", field_types(MODELS[spec.model.name].config_class),
                                     what="model field")
    data_options = translate_options(spec.data.name, {**spec.data.options, **data_options})
    info = dataset_info(spec.data.name)  # every data set takes size and channels (facelib.data's contract)
    for key, value in (("size", args.image_size), ("channels", args.channels)):
        if value is not None and info.takes(key) and key not in data_options:
            data_options[key] = value
    fields = dict(spec.model.options)
    for key, value in (("latent_dim", args.latent_dim), ("beta", args.beta), ("architecture", args.architecture),
                       ("image_size", args.image_size), ("channels", args.channels)):
        if value is not None:
            fields[key] = value
    fields.update(model_fields)
    training = {**spec.to_dict()["training"], **given_fields(args, TRAIN_FLAGS)}
    return ExperimentSpec(data=DataSpec(spec.data.name, data_options, spec.data.patches),
                          model=ModelSpec(spec.model.name, fields), training=training)


def _train(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    if args.dump_spec:
        print(spec.to_yaml(), end="")
        return 0
    callbacks = _callbacks(args)
    t0 = time.perf_counter()
    dataset = spec.make_dataset()
    h, w = dataset.image_size
    if args.image_size is not None and (h, w) != (args.image_size, args.image_size):
        raise UsageError(
            f"--image-size {args.image_size} asked for, but data set {spec.data.name!r} has {h}x{w} images (its data "
            "options ask for that); drop --image-size or the size given with --data-option / in the spec"
        )
    if args.channels is not None and args.channels != dataset.channels:
        raise UsageError(f"--channels {args.channels} asked for, but data set {spec.data.name!r} has {dataset.channels}")
    main_rank = distributed.from_environment().is_main
    if args.out is None and main_rank:
        print("facelib train: no --out given, so no checkpoint is written", file=sys.stderr)
    change = parse_assignments(args.changes, "--change", field_types(TrainConfig), what="training field")
    if change and args.out is None:
        raise UsageError("--change continues the unfinished run in --out: give --out")
    result = run(spec, args.out, dataset=dataset, overwrite=args.overwrite, callbacks=callbacks, change=change)
    model = result.model
    if result.reused:
        print(f"{args.out} holds this very run, finished: nothing to train ({result.checkpoint}; --overwrite "
              "trains it again)")
        return 0
    fitted = result.fit
    if fitted.rank:
        return 0  # rank 0 reports for every process

    last = fitted.last
    print(f"trained {model.name} on {dataset.name} (n={len(dataset)}, {dataset.channels}x{h}x{w}) "
          f"on {fitted.device} in {fitted.precision}"
          f"{f' ({fitted.world_size} processes)' if fitted.world_size > 1 else ''}, {time.perf_counter() - t0:.1f} s")
    print(f"  epochs {_fmt(last.get('epoch'), 'g')}, steps {_fmt(last.get('step'), 'g')}, "
          f"stopped by {fitted.stopped}, {_fmt(last.get('images_per_s'), '.0f')} images/s")
    print(f"  train loss {_fmt(last.get('train_loss'))} (minimised, lower is better), "
          f"elbo {_fmt(last.get('train_elbo_nats'))} nats/image (higher is better)")
    if "val_loss" in last:
        print(f"  val   loss {_fmt(last.get('val_loss'))}, elbo {_fmt(last.get('val_elbo_nats'))} nats/image, "
              f"{_fmt(last.get('val_bits_per_dim'))} bits/dim (lower is better)")
    print(f"  {units.scale_note(model.config.likelihood)}")
    print(f"  checkpoint: {fitted.checkpoint if fitted.checkpoint else 'none (no --out)'}")
    if fitted.best_checkpoint:
        print(f"  best validation loss at epoch {_fmt(fitted.best.get('epoch'), 'g')}: {fitted.best_checkpoint}")
    return 0
