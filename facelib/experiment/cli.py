"""`python -m facelib train`: the experiment a command line (or `--spec FILE`) describes, run by
`experiment.run`, with a summary.

Example: ``python -m facelib train --model beta-vae --beta 4 --data olivetti --epochs 30
--out runs/b4``; data-parallel: ``torchrun --nproc-per-node 2 -m facelib train ...`` or
``--nproc 2`` (the processes share every global batch; rank 0 prints and writes). It is a
thin layer over `experiment.run` (same code path as the notebooks, sweeps and the zoo); model config fields without their
own flag go through ``--set key=value`` (values parsed as JSON when they parse, e.g.
``--set blocks='{"identity": 16}'``), loader options through ``--data-option key=value``. ``--snapshots`` / ``--tensorboard``
add the shipped callbacks (PNGs of reconstructions and samples, TensorBoard logs) to OUT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from facelib.data import dataset_info, translate_options
from facelib.models import MODELS, units
from facelib.train import Snapshots, TensorBoard, distributed
from facelib.train.config import LR_SCHEDULES, PRECISIONS
from facelib.train.engine import describe_checkpoint

from .runner import run
from .spec import DataSpec, ExperimentSpec, ModelSpec, load_spec

__all__ = ["configure_parser", "main_from_args", "parse_assignments"]


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
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="auto: fp16 mixed precision on CUDA, fp32 elsewhere; bf16 for CPUs with AVX512-BF16")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (quick runs)")
    parser.add_argument("--val-fraction", type=float, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None, help="epochs between checkpoints")
    parser.add_argument("--resume", action="store_true",
                        help="(kept for older scripts) an unfinished run of the same spec in --out always continues")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint in --out")
    parser.add_argument("--group-batches", choices=("auto", "yes", "no"), default=None,
                        help="batches of whole groups: auto (when the data has groups or the model is modvae)")
    parser.add_argument("--group-size", type=int, default=None, help="images per group in grouped (modvae) batches")
    parser.add_argument("--groups-per-batch", type=int, default=None)
    parser.add_argument("--num-threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--layout", choices=("auto", "channels-last", "nchw"), default=None,
                        help="memory layout of the convolutions (auto: channels-last on CUDA and under bf16)")
    parser.add_argument("--nproc", type=int, default=None,
                        help="train data-parallel in this many local processes (or start under torchrun)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--warmup-steps", type=int, default=None, help="linear lr warm-up steps")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                        help="constant, or cosine decay to --min-lr-ratio x lr at the last step")
    parser.add_argument("--min-lr-ratio", type=float, default=None)
    parser.add_argument("--max-grad-norm", type=float, default=None, help="clip the gradient norm to this")
    parser.add_argument("--kl-warmup-steps", type=int, default=None,
                        help="KL warm-up: the weight of the KL (and extra) terms rises from 0 to 1 over these steps")
    parser.add_argument("--hflip", action="store_true", help="random horizontal flips of the training faces")
    parser.add_argument("--max-shift", type=int, default=None,
                        help="random translations of the training faces by up to this many pixels")
    parser.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay")
    parser.add_argument("--no-best", action="store_true", help="do not keep best.pt (lowest validation loss)")
    parser.add_argument("--snapshots", action="store_true",
                        help="each epoch, reconstructions and prior samples of 8 fixed faces as PNGs in OUT/snapshots")
    parser.add_argument("--tensorboard", action="store_true",
                        help="log every loss term and those images to OUT/tensorboard "
                             "(needs pip install 'facelib[tensorboard]')")
    parser.add_argument("--architecture", default=None,
                        help="encoder/decoder pair: small (default) or resnet (set its options with "
                             "--set architecture_options='{\"width\": 32}')")
    parser.add_argument("--latent-dim", type=int, default=None, help="number of latents (model default: 32)")
    parser.add_argument("--beta", type=float, default=None, help="KL weight (beta-vae, modvae, beta-tcvae)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image side; the data set is loaded at this size when its loader can resize")
    parser.add_argument("--channels", type=int, default=None, choices=(1, 3), help="1 grey, 3 colour")
    parser.add_argument("--set", dest="model_fields", action="append", default=[], metavar="KEY=VALUE",
                        help="any model config field, e.g. gamma=10, c_max=25, lam=1, blocks='{\"identity\": 16}'")
    parser.add_argument("--data-option", dest="data_options", action="append", default=[], metavar="KEY=VALUE",
                        help="loader option passed to facelib.data.load, e.g. size=64, min_faces_per_person=20")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str], flag: str) -> dict[str, Any]:
    """`["a=1", "b=x"]` -> {"a": 1, "b": "x"} (values parsed as JSON when possible)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = _parse_value(value)
    return out


def _fmt(value: Any, spec: str = ".4g") -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


def main_from_args(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 1 on errors (with a message on stderr), 2 on bad usage."""
    try:
        data_options = parse_assignments(args.data_options, "--data-option")
        model_fields = parse_assignments(args.model_fields, "--set")
    except ValueError as exc:
        print(f"facelib train: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _train(args, data_options, model_fields)
    except KeyboardInterrupt:
        print(f"facelib train: interrupted; {describe_checkpoint(args.out)}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError, OSError, ImportError) as exc:
        print(f"facelib train: error: {exc}", file=sys.stderr)
        return 1


def _callbacks(args: argparse.Namespace) -> list:
    """--snapshots / --tensorboard as fit's callbacks (both write into --out)."""
    asked = [flag for flag, on in (("--snapshots", args.snapshots), ("--tensorboard", args.tensorboard)) if on]
    if asked and args.out is None:
        raise ValueError(f"{' and '.join(asked)} write into the run folder: give --out")
    return ([Snapshots()] if args.snapshots else []) + ([TensorBoard()] if args.tensorboard else [])


def spec_from_args(args: argparse.Namespace, data_options: dict[str, Any],
                   model_fields: dict[str, Any]) -> ExperimentSpec:
    """The experiment a command line describes: `--spec FILE` as the base (the flags then change
    only what they name), else `--model` and `--data` with their options."""
    if args.spec is not None:
        spec = load_spec(args.spec)
        if args.model is not None or args.data is not None:
            spec = spec.updated({**({"model.name": args.model} if args.model else {}),
                                 **({"data.name": args.data} if args.data else {})})
    else:
        missing = [flag for flag, value in (("--model", args.model), ("--data", args.data)) if value is None]
        if missing:
            raise ValueError(f"give {' and '.join(missing)} (or --spec FILE)")
        spec = ExperimentSpec(model=ModelSpec(args.model), data=DataSpec(args.data))
    if spec.data is None:
        raise ValueError("the spec names no data set; give --data")
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
    training = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "precision": args.precision, "val_fraction": args.val_fraction, "max_steps": args.max_steps,
        "group_size": args.group_size, "groups_per_batch": args.groups_per_batch,
        "group_batches": None if args.group_batches is None else {"auto": "auto", "yes": True, "no": False}[args.group_batches],
        "warmup_steps": args.warmup_steps, "lr_schedule": args.lr_schedule, "min_lr_ratio": args.min_lr_ratio,
        "max_grad_norm": args.max_grad_norm, "kl_warmup_steps": args.kl_warmup_steps,
        "hflip": True if args.hflip else None, "max_shift": args.max_shift, "weight_decay": args.weight_decay,
        "keep_best": False if args.no_best else None,
        "channels_last": None if args.layout is None else {"auto": "auto", "channels-last": True, "nchw": False}[args.layout],
        "checkpoint_every": args.checkpoint_every, "num_threads": args.num_threads, "nproc": args.nproc,
        "device": args.device, "progress": False if args.no_progress else None,
    }
    training = {**spec.to_dict()["training"], **{k: v for k, v in training.items() if v is not None}}
    return ExperimentSpec(data=DataSpec(spec.data.name, data_options, spec.data.patches),
                          model=ModelSpec(spec.model.name, fields), training=training)


def _train(args: argparse.Namespace, data_options: dict[str, Any], model_fields: dict[str, Any]) -> int:
    spec = spec_from_args(args, data_options, model_fields)
    if args.dump_spec:
        print(spec.to_yaml(), end="")
        return 0
    callbacks = _callbacks(args)
    t0 = time.perf_counter()
    dataset = spec.make_dataset()
    h, w = dataset.image_size
    if args.image_size is not None and (h, w) != (args.image_size, args.image_size):
        raise ValueError(
            f"--image-size {args.image_size} asked for, but data set {spec.data.name!r} has {h}x{w} images (its data "
            "options ask for that); drop --image-size or the size given with --data-option / in the spec"
        )
    if args.channels is not None and args.channels != dataset.channels:
        raise ValueError(f"--channels {args.channels} asked for, but data set {spec.data.name!r} has {dataset.channels}")
    main_rank = distributed.from_environment().is_main
    if args.out is None and main_rank:
        print("facelib train: no --out given, so no checkpoint is written", file=sys.stderr)
    result = run(spec, args.out, dataset=dataset, overwrite=args.overwrite, callbacks=callbacks)
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
