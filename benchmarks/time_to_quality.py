"""Time to a good model: facelib's `lfw-vae` recipe against pythae 0.1.2, trained side by side.

    python benchmarks/time_to_quality.py                       # -> benchmarks/results/time_to_quality.csv
    python benchmarks/time_to_quality.py --figure time_to_quality.png
    python benchmarks/time_to_quality.py --quick               # smoke run, a few minutes, writes nothing

Quality target: the held-out per-pixel MSE ([0, 1] scale) of PCA with 32 components fitted on the
same training faces (`metrics.PCAReconstructor`, scored with `metrics.reconstruction_metrics`), on
LFW View 1's test faces (`zoo.recipes.held_out_inputs`: people no training face shows). A system's
time to quality is the training time after which its reconstructions of those faces (decoded
posterior means; an autoencoder's decoded codes) first score at or below it. Training faces: the recipe's
(`zoo.build_data`: the 10,492 LFW images of people outside View 1's test pairs, 64 px colour).

The systems, 32 latents each:

* facelib: the `lfw-vae` recipe's spec as `experiment.run` trains it without a run folder
  (`experiment.prepare`, then `train.fit`): residual networks (the decoder resizes, then convolves),
  Adam at 2e-3 with a 200-step warm-up and a cosine decay over its 8,000 steps, KL warm-up, flips,
  batch 64, a 5 % validation split, under bf16 autocast with channels-last (where the CPU has bf16;
  fp32 weights and losses).
* pythae 0.1.2 as its CelebA benchmark sets up 64 px faces: the ResNet encoder
  (`Encoder_ResNet_VAE_CELEBA`; `Encoder_ResNet_AE_CELEBA` for the AE and RAEs) and decoder
  (`Decoder_ResNet_AE_CELEBA`, sigmoid output) of `pythae.models.nn.benchmarks.celeba`, each model
  with its config's defaults (the VAE's "mse" loss), trained by pythae's own trainer - the one its
  `TrainingPipeline` picks (`BaseTrainer`; `CoupledOptimizerTrainer` for RAE_L2, the decoder's
  Adam with weight decay = reg_weight, as the pipeline sets it) - with its `BaseTrainerConfig`
  defaults: Adam, batch 64, no scheduler, no evaluation set (so it keeps the best model on the
  training loss), seed 8, 100 epochs; only the learning rate varies. Its data are the same faces
  as float [0, 1] tensors, through its `DataProcessor`. Reconstructions: `model.predict(x).recon_x`,
  the decoder's output at the encoder's mean (`model.reconstruct` would decode a sampled code).

Interleaved: every system trains in its own thread, paused at optimizer-step boundaries, and the
systems take turns at chunks of `--chunk-seconds` of training on the same machine and torch
threads, so a change of load falls on all of them alike. After each chunk the paused model is
scored on the held-out faces; only training is timed, never this scoring. pythae's trainer is
paused from its per-step callback (`on_train_step_end`); facelib's `fit` calls its callbacks once
an epoch (about 155 steps, minutes on a CPU), too seldom here, so it is paused from a forward pre-hook on
its encoder at the start of each training step. Neither pause changes what is trained: each
system's torch, NumPy and Python RNG states are swapped in when it resumes and out when it pauses,
so every run draws what it would alone (the scoring draws nothing). Times are those of the first
scoring at or below the target, so they are late by up to one chunk. What each trainer does around
its steps counts as its training: facelib's per-epoch validation on its 5 % split, pythae's
per-epoch copy of its best model.

Learning rates: pythae is run at its best of 1e-4 (its default), 3e-4 and 1e-3, for its VAE and for
its deterministic autoencoders (AE and RAE_L2; `--pythae-models` adds RAE_GP, whose gradient
penalty takes a double backward pass each step). Screen: every (model, lr) candidate trains `--screen-minutes`
interleaved with the others and with facelib; in each family (the VAE; the AE/RAEs) the candidate
that reached the target soonest, else the one with the lowest held-out MSE at the screen's end,
carries on from where it is (its screen time counts), the others stop. A system still short of the
target after 3 x facelib's time to target (`CAP_FACTOR`; after `--budget-minutes` when facelib
does not reach it) stops at its next scoring, reported as not reaching it, with its best held-out
MSE (a reach past the cap does not count).

Output (`benchmarks/results/time_to_quality.csv`, with provenance): `kind` "result", one row per
candidate (`selected` marks facelib and each family's pick; `minutes` and `steps` are the time to
target when `reached`, else where it stopped), and `kind` "curve", every scoring (minutes, steps,
held-out MSE). `--figure` draws the curves. A --quick run (512 faces, 100 held out, 4-second
chunks: about 3 minutes on 1 thread) checks the machinery; it writes only where $FACELIB_RESULTS
points, never over the measured file. A full run's wall time is the screen (1 + 9 systems x
`--screen-minutes`) plus what is left of facelib's time to target and of the two picks' caps, plus
about 10 % for scoring 2,000 faces after every chunk: with facelib near 5 minutes (its zoo run's
validation loss crossed the target's level at 800-900 steps), about 1.25 hours on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import logging
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from facelib import results, zoo  # noqa: E402
from facelib.data.pixels import to_float  # noqa: E402
from facelib.experiment.runner import prepare  # noqa: E402
from facelib.metrics import PCAReconstructor, reconstruction_metrics  # noqa: E402
from facelib.train import TrainingDivergedError, fit, reconstruct  # noqa: E402
from facelib.train.checkpoint import rng_states, set_rng_states  # noqa: E402
from facelib.utils import seed_everything  # noqa: E402
from facelib.zoo.recipes import held_out_inputs  # noqa: E402

RESULT = "time_to_quality"
#: facelib's system, and the size of the PCA whose held-out MSE is the target.
RECIPE = "lfw-vae"
PCA_K = 32
#: A system short of the target after this many times facelib's time to target is stopped.
CAP_FACTOR = 3.0
PYTHAE_VERSION = "0.1.2"
INSTALL = f"pip install 'pythae=={PYTHAE_VERSION}' (or pip install -e '.[bench]')"
#: pythae's learning rates: its default and two larger ones.
LRS = (1e-4, 3e-4, 1e-3)
#: The pythae models the benchmark knows, and the family each competes in for one result.
PYTHAE_FAMILIES = {"vae": "pythae VAE", "ae": "pythae AE/RAE", "rae-l2": "pythae AE/RAE", "rae-gp": "pythae AE/RAE"}
DEFAULT_PYTHAE = ("vae", "ae", "rae-l2")
#: Settings of a full run and of --quick (an argument given on the command line wins).
PROFILES = {
    "full": {"chunk_seconds": 30.0, "screen_minutes": 4.0, "budget_minutes": 60.0, "n_train": None,
             "n_held_out": 2000},
    "quick": {"chunk_seconds": 4.0, "screen_minutes": 0.1, "budget_minutes": 0.4, "n_train": 512,
              "n_held_out": 100},
}


# -- training in chunks -------------------------------------------------------------------------
class Stopped(BaseException):
    """Raised inside a paused training loop to end it: the benchmark is done with that system."""


class TrainingThread:
    """A training loop run in its own thread, one chunk of training time at a time.

    `loop(thread)` trains (facelib's `fit`, pythae's trainer) and calls `thread.step_boundary(steps)`
    between optimizer steps; once the chunk's time is spent, that call pauses the loop until the next
    `train_for`, or ends it by raising `Stopped` (`stop`). Only the time from a release to the next
    pause counts (`train_seconds`). The loop's torch, NumPy and Python RNG states are its own: swapped
    in at each release and out at each pause, so whatever runs in between leaves its draws alone.
    """

    def __init__(self, name: str, loop: Callable[["TrainingThread"], Any], threads: int):
        self.name, self._loop, self._threads = name, loop, threads
        self.train_seconds, self.steps = 0.0, 0
        self.finished, self.error, self.result = False, None, None
        self._go, self._paused = threading.Event(), threading.Event()
        self._chunk, self._start, self._deadline = 0.0, 0.0, 0.0
        self._started, self._stopping, self._rng = False, False, None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def train_for(self, seconds: float) -> None:
        """Let the loop train about `seconds` more (to its first step boundary past them); returns
        when it is paused again, finished or failed (`error`)."""
        if self.finished:
            return
        if self._rng is not None:
            set_rng_states(self._rng)
        else:  # the first chunk starts from a fixed state, whatever ran before
            seed_everything(0)
        self._chunk = seconds
        if not self._started:
            self._started = True
            self._thread.start()
        self._go.set()
        self._paused.wait()
        self._paused.clear()
        self._rng = rng_states()

    def step_boundary(self, steps: int) -> None:
        """Called by the loop, in its thread, between optimizer steps (`steps` done so far)."""
        if threading.current_thread() is not self._thread:
            return
        self.steps = steps
        if time.perf_counter() < self._deadline:
            return
        self.train_seconds += time.perf_counter() - self._start
        self._paused.set()
        self._go.wait()
        self._go.clear()
        if self._stopping:
            raise Stopped
        self._begin_chunk()

    def stop(self) -> None:
        """End a paused loop (its model stays as trained)."""
        if self._started and not self.finished:
            self._stopping = True
            self._go.set()
            self._thread.join()

    def _begin_chunk(self) -> None:
        self._start = time.perf_counter()
        self._deadline = self._start + self._chunk

    def _main(self) -> None:
        torch.set_num_threads(self._threads)
        self._go.wait()
        self._go.clear()
        self._begin_chunk()
        try:
            self.result = self._loop(self)
            self.train_seconds += time.perf_counter() - self._start
        except Stopped:
            pass
        except BaseException as exc:  # handed to the benchmark, which decides (a divergence ends one system)
            self.error = exc
        finally:
            self.finished = True
            self._paused.set()


def facelib_loop(model: torch.nn.Module, dataset: Any, config: Any) -> Callable[[TrainingThread], Any]:
    """facelib's `fit(model, dataset, config)`, pausable at the start of each training step (a
    forward pre-hook on the encoder: it runs once a step, with gradients, in training mode)."""

    def loop(thread: TrainingThread):
        done = [0]

        def before_forward(module, args):
            if module.training and torch.is_grad_enabled():
                thread.step_boundary(done[0])
                done[0] += 1

        handle = model.encoder.register_forward_pre_hook(before_forward)
        try:
            result = fit(model, dataset, config)
        finally:
            handle.remove()
        thread.steps = int(result.last.get("step", done[0]))
        return result

    return loop


# pythae is imported where it is used: it is the optional `bench` extra (parse_args says how to install it)
def pythae_loop(model: Any, dataset: Any, config: Any) -> Callable[[TrainingThread], Any]:
    """pythae's trainer for `config` (what its TrainingPipeline picks), pausable after each step
    from its `on_train_step_end` callback."""
    from pythae.trainers import BaseTrainer, CoupledOptimizerTrainer, CoupledOptimizerTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    class Pause(TrainingCallback):
        def __init__(self, thread: TrainingThread):
            self.thread, self.steps = thread, 0

        def on_train_step_end(self, training_config, **kwargs):
            self.steps += 1
            self.thread.step_boundary(self.steps)

    trainer_class = CoupledOptimizerTrainer if isinstance(config, CoupledOptimizerTrainerConfig) else BaseTrainer

    def loop(thread: TrainingThread):
        trainer_class(model=model, train_dataset=dataset, training_config=config, callbacks=[Pause(thread)]).train()

    return loop


# -- the systems --------------------------------------------------------------------------------
def pythae_model(name: str, seed: int = 8):
    """pythae's `name` model ("vae", "ae", "rae-l2", "rae-gp") on its CelebA ResNet networks, 32
    latents, its config's defaults otherwise; weights drawn under `seed` (its trainer's default)."""
    from pythae.models import AE, RAE_GP, RAE_L2, VAE, AEConfig, RAE_GP_Config, RAE_L2_Config, VAEConfig
    from pythae.models.nn.benchmarks.celeba import (Decoder_ResNet_AE_CELEBA, Encoder_ResNet_AE_CELEBA,
                                                    Encoder_ResNet_VAE_CELEBA)

    model_class, config_class, encoder_class = {
        "vae": (VAE, VAEConfig, Encoder_ResNet_VAE_CELEBA), "ae": (AE, AEConfig, Encoder_ResNet_AE_CELEBA),
        "rae-l2": (RAE_L2, RAE_L2_Config, Encoder_ResNet_AE_CELEBA),
        "rae-gp": (RAE_GP, RAE_GP_Config, Encoder_ResNet_AE_CELEBA)}[name]
    torch.manual_seed(seed)
    config = config_class(input_dim=(3, 64, 64), latent_dim=32)
    return model_class(config, encoder=encoder_class(config), decoder=Decoder_ResNet_AE_CELEBA(config))


def pythae_training_config(model: Any, lr: float, output_dir: str):
    """pythae's trainer defaults at learning rate `lr` (on the CPU, writing into `output_dir`)."""
    from pythae.trainers import BaseTrainerConfig, CoupledOptimizerTrainerConfig

    if model.model_name == "RAE_L2":  # as TrainingPipeline sets it: the decoder's Adam decays by reg_weight
        return CoupledOptimizerTrainerConfig(output_dir=output_dir, encoder_learning_rate=lr, decoder_learning_rate=lr,
                                             decoder_optimizer_params={"weight_decay": model.model_config.reg_weight},
                                             no_cuda=True)
    return BaseTrainerConfig(output_dir=output_dir, learning_rate=lr, no_cuda=True)


def pythae_dataset(images: torch.Tensor):
    """uint8 faces as pythae's training set: float [0, 1] through its `DataProcessor`, as its
    `TrainingPipeline` prepares an array."""
    from pythae.data.preprocessors import DataProcessor

    processor = DataProcessor()
    return processor.to_dataset(processor.process_data(to_float(images)))


def pythae_defaults() -> dict[str, Any]:
    """The `BaseTrainerConfig` fields a default pythae run trains with."""
    from pythae.trainers import BaseTrainerConfig

    c = BaseTrainerConfig(no_cuda=True)
    return {"optimizer": c.optimizer_cls, "optimizer_params": c.optimizer_params, "lr": c.learning_rate,
            "batch_size": c.per_device_train_batch_size, "epochs": c.num_epochs, "scheduler": c.scheduler_cls,
            "seed": c.seed, "amp": c.amp}


def pythae_reconstructor(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 faces -> pythae's `predict(x).recon_x` (the decoded encoder mean), in eval mode."""

    def run(images: torch.Tensor) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                return model.predict(to_float(images)).recon_x
        finally:
            model.train(was_training)

    return run


def held_out_mse(reconstructor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                 batch_size: int = 500) -> float:
    """Per-pixel MSE ([0, 1] scale) of the reconstructions clipped to [0, 1]: the "mse" of
    `metrics.reconstruction_metrics` without its per-image PSNR and SSIM."""
    total = 0.0
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start:start + batch_size]
        r = reconstructor(chunk).detach().float().clamp(0.0, 1.0).double()
        total += float(((r - to_float(chunk).double()) ** 2).sum())
    return total / images.numel()


@dataclass
class Contender:
    """One system in the race: a training thread, how to score its model, what it has scored."""

    system: str  # "facelib" or "pythae"
    model: str  # the recipe, or pythae's model
    family: str  # the candidates one result row is picked from
    lr: float
    batch_size: int
    optimizer: str
    schedule: str
    thread: TrainingThread
    reconstructor: Callable[[torch.Tensor], torch.Tensor]
    curve: list[dict[str, float]] = field(default_factory=list)
    reached: dict[str, float] | None = None
    state: str = "training"  # then: reached, capped, budget, screened out, finished, diverged
    selected: bool = False

    @property
    def label(self) -> str:
        return f"{self.system} {self.model} lr {self.lr:g}"

    @property
    def seconds(self) -> float:
        return self.thread.train_seconds

    @property
    def last_mse(self) -> float:
        return self.curve[-1]["held_out_mse"] if self.curve else math.inf


def first_reach(curve: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first point of a curve (dicts with "held_out_mse") at or below `target`, else None."""
    return next((p for p in curve if p["held_out_mse"] <= target), None)


def pick(candidates: list[Contender]) -> Contender:
    """A family's pick: the candidate that reached the target in the least training time, else the
    one with the lowest held-out MSE at its last scoring (a diverged one never, unless all did)."""
    reached = [c for c in candidates if c.reached is not None]
    if reached:
        return min(reached, key=lambda c: c.reached["minutes"])
    sound = [c for c in candidates if c.state != "diverged"] or candidates
    return min(sound, key=lambda c: c.last_mse)


# -- the race -----------------------------------------------------------------------------------
def train_chunk(c: Contender, seconds: float, faces: torch.Tensor, target: float, quiet: Any = None) -> None:
    """One chunk of `c`'s training, then its held-out MSE (untimed); updates its state. pythae's
    chunks write their stderr (its progress bars) to `quiet` (kept open: the bars keep the stream)."""
    with contextlib.redirect_stderr(quiet) if quiet is not None and c.system == "pythae" else contextlib.nullcontext():
        c.thread.train_for(seconds)
    error = c.thread.error
    if error is not None:
        if not isinstance(error, (ArithmeticError, TrainingDivergedError)):
            raise RuntimeError(f"{c.label} failed while training: {error!r}") from error
        c.state = "diverged"
        print(f"{c.label}: diverged after {c.seconds / 60:.2f} min ({error})", flush=True)
        return
    t0 = time.perf_counter()
    mse = held_out_mse(c.reconstructor, faces)
    scored = time.perf_counter() - t0
    point = {"minutes": c.seconds / 60, "steps": c.thread.steps, "held_out_mse": mse}
    c.curve.append(point)
    if c.reached is None and mse <= target:
        c.reached = point
    if c.thread.finished and c.state == "training":
        c.state = "finished"
    print(f"{c.label:28s} {point['minutes']:6.2f} min {point['steps']:6d} steps  held-out MSE {mse:.5f}"
          f"{' <= target' if mse <= target else '':10s} (scored in {scored:.1f} s)", flush=True)


def race(facelib: Contender, candidates: list[Contender], faces: torch.Tensor, target: float,
         chunk_seconds: float, screen_seconds: float, budget_seconds: float, quiet: Any = None) -> float:
    """Train everyone in turns until each has reached the target or stopped; the cap (seconds).
    `quiet`: where pythae's stderr goes (`train_chunk`)."""
    families: dict[str, list[Contender]] = {}
    for c in candidates:
        families.setdefault(c.family, []).append(c)
    picked: dict[str, Contender] = {}
    cap = None
    while True:
        screen = min(screen_seconds, cap if cap is not None else math.inf)
        turn = [c for c in [facelib, *candidates] if c.state == "training"
                and (c is facelib or c.family in picked or c.seconds < screen)]
        if not turn:
            break
        for c in turn:
            train_chunk(c, chunk_seconds, faces, target, quiet)
        if facelib.state == "training":
            if facelib.reached is not None:
                facelib.state = "reached"
            elif facelib.seconds >= budget_seconds:
                facelib.state = "budget"
        if facelib.state != "training" and cap is None:
            reached = facelib.reached
            cap = min(CAP_FACTOR * reached["minutes"] * 60, budget_seconds) if reached else budget_seconds
            print(f"facelib: {'reached the target' if facelib.reached else 'stopped short of the target'}; "
                  f"pythae's cap is {cap / 60:.2f} min of training", flush=True)
        for family, members in families.items():
            if family in picked:
                continue
            screened = all(c.state != "training" or c.seconds >= screen for c in members)
            if any(c.reached is not None for c in members) or screened:
                best = picked[family] = pick(members)
                best.selected = True
                for c in members:
                    if c is not best and c.state == "training":
                        c.state = "screened out"
                print(f"{family}: the screen picks {best.label}", flush=True)
        for c in picked.values():
            if c.state != "training":
                continue
            if c.reached is not None and c.reached["minutes"] * 60 <= (cap if cap is not None else math.inf):
                c.state = "reached"
            elif c.seconds >= (cap if cap is not None else budget_seconds):
                c.state = "capped"
        for c in [facelib, *candidates]:
            if c.state != "training":
                c.thread.stop()
    for c in [facelib, *candidates]:
        c.thread.stop()
    return cap if cap is not None else budget_seconds


# -- the table and figure -----------------------------------------------------------------------
def tables(contenders: list[Contender], target: float, cap_seconds: float, settings: dict[str, Any]) -> pd.DataFrame:
    """The result rows (one per contender) and the curve rows, in one table with a `kind` column."""
    facelib_minutes = contenders[0].reached["minutes"] if contenders[0].reached else math.nan
    cap = cap_seconds / 60
    rows, curve = [], []
    for c in contenders:
        reached = c.reached if c.reached is not None and c.reached["minutes"] <= cap + 1e-9 else None
        at = reached or (c.curve[-1] if c.curve else {"minutes": c.seconds / 60, "steps": c.thread.steps,
                                                       "held_out_mse": math.nan})
        same = {"system": c.system, "model": c.model, "family": c.family, "lr": c.lr, "batch_size": c.batch_size,
                "target": target, **settings}
        rows.append({"kind": "result", **same, "selected": c.selected, "reached": reached is not None,
                     "minutes": at["minutes"], "steps": at["steps"], "held_out_mse": at["held_out_mse"],
                     "best_held_out_mse": min((p["held_out_mse"] for p in c.curve), default=math.nan),
                     "x_facelib_minutes": at["minutes"] / facelib_minutes if reached else math.nan,
                     "stopped": c.state, "train_minutes": c.seconds / 60, "cap_minutes": cap,
                     "images_per_s": c.thread.steps * c.batch_size / c.seconds if c.seconds else math.nan,
                     "optimizer": c.optimizer, "schedule": c.schedule})
        curve += [{"kind": "curve", **same, "selected": c.selected, "reached": p["held_out_mse"] <= target, **p}
                  for p in c.curve]
    return pd.DataFrame(rows + curve)


def draw(table: pd.DataFrame, path: str) -> None:
    """Held-out MSE against training minutes for every contender, the target dashed."""
    fig, ax = plt.subplots(figsize=(8.5, 4.3))
    curves = table[table.kind == "curve"]
    target = float(table.target.iloc[0])
    for (system, model, lr), rows in curves.groupby(["system", "model", "lr"], sort=False):
        chosen = bool(rows.selected.iloc[0])
        line, = ax.plot(rows.minutes, rows.held_out_mse, lw=2 if chosen else 0.8, alpha=1 if chosen else 0.4,
                        marker="o" if chosen else None, ms=3,
                        label=f"{system} {model}, lr {lr:g}" + ("" if chosen else " (screened out)"))
        reached = rows[rows.reached]
        if chosen and len(reached):
            ax.plot(reached.minutes.iloc[0], reached.held_out_mse.iloc[0], "*", ms=12, color=line.get_color())
    ax.axhline(target, color="0.3", ls="--", lw=1)
    ax.text(0.01, target, f"target: PCA-{PCA_K}", ha="left", va="bottom", fontsize=8,
            transform=ax.get_yaxis_transform())
    ax.set_yscale("log")
    ax.set_xlabel("training minutes (interleaved, same machine and threads; * reaches the target)")
    ax.set_ylabel("held-out per-pixel MSE (View 1 test faces)")
    ax.set_title(f"Time to PCA-{PCA_K} quality: facelib {RECIPE} and pythae {PYTHAE_VERSION}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


# -- the command --------------------------------------------------------------------------------
def positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few faces, seconds-long chunks, a few "
                        "minutes in all; writes only under $FACELIB_RESULTS")
    parser.add_argument("--budget-minutes", type=positive(float), default=None,
                        help="most training minutes of any one system (full run 60)")
    parser.add_argument("--screen-minutes", type=positive(float), default=None,
                        help="training minutes of each pythae (model, lr) candidate before a family's pick (full 4)")
    parser.add_argument("--chunk-seconds", type=positive(float), default=None,
                        help="training seconds of one turn, between scorings (full 30)")
    parser.add_argument("--n-train", type=positive(int), default=None, help="training faces (full: all 10,492)")
    parser.add_argument("--n-held-out", type=positive(int), default=None, help="View 1 test faces scored (full 2000)")
    parser.add_argument("--pythae-models", nargs="+", choices=list(PYTHAE_FAMILIES), default=list(DEFAULT_PYTHAE),
                        help="pythae models to screen (default: vae ae rae-l2)")
    parser.add_argument("--lrs", nargs="+", type=positive(float), default=list(LRS),
                        help="pythae learning rates to screen (default: 1e-4 3e-4 1e-3)")
    parser.add_argument("--threads", type=positive(int), default=None, help="torch threads of every system "
                        "(default: torch's, one per core)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file as it is")
    parser.add_argument("--figure", default=None, help="also draw the curves to this PNG")
    args = parser.parse_args(argv)
    for key, value in PROFILES["quick" if args.quick else "full"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.screen_minutes > args.budget_minutes:
        parser.error(f"--screen-minutes {args.screen_minutes:g} exceeds --budget-minutes {args.budget_minutes:g}")
    if args.chunk_seconds > 60 * args.budget_minutes:
        parser.error(f"--chunk-seconds {args.chunk_seconds:g} exceeds the budget of {args.budget_minutes:g} min")
    if importlib.util.find_spec("pythae") is None:
        parser.error(f"pythae is not installed; the peer of this benchmark is pythae {PYTHAE_VERSION}: {INSTALL}")
    if args.figure and not args.figure.lower().endswith(".png"):
        parser.error(f"--figure names a PNG file, got {args.figure!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = importlib.metadata.version("pythae")
    if version != PYTHAE_VERSION:
        print(f"warning: pythae {version} is installed; this benchmark is written for {PYTHAE_VERSION} ({INSTALL})")
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)

    recipe = zoo.recipes.RECIPES[RECIPE]
    train = zoo.build_data(recipe)
    if args.n_train and args.n_train < len(train):
        keep = np.sort(np.random.default_rng(0).choice(len(train), args.n_train, replace=False))
        train = train.subset(keep, name=f"{train.name}[{args.n_train} of {len(train)}]")
    faces = held_out_inputs(recipe, args.n_held_out).images
    pca = PCAReconstructor(PCA_K).fit(train.images)
    target = reconstruction_metrics(pca, faces)["mse"]
    assert abs(held_out_mse(pca, faces) - target) <= 1e-9 * target, "held_out_mse must be reconstruction_metrics' mse"
    print(f"training faces: {train.name} ({len(train)}); held out: {len(faces)} View 1 test faces; target: "
          f"PCA-{PCA_K} held-out MSE {target:.5f}; {threads} torch thread(s); chunks of {args.chunk_seconds:g} s, "
          f"screen {args.screen_minutes:g} min, budget {args.budget_minutes:g} min", flush=True)
    defaults = pythae_defaults()
    print(f"pythae {version} trainer defaults (BaseTrainerConfig): {defaults}", flush=True)

    spec = recipe.spec()
    model, config, dataset = prepare(spec, train, device="cpu", num_threads=threads)
    schedule = (f"warm-up {config.warmup_steps} steps, {config.lr_schedule} to {config.min_lr_ratio:g} x lr at step "
                f"{config.max_steps}; KL warm-up {config.kl_warmup_steps} steps")
    facelib = Contender("facelib", RECIPE, "facelib", config.lr, config.batch_size, "Adam", schedule,
                        TrainingThread("facelib", facelib_loop(model, dataset, config), threads),
                        lambda images: reconstruct(model, images, device="cpu"), selected=True)
    pythae_data = pythae_dataset(train.images)
    candidates = []
    with tempfile.TemporaryDirectory(prefix="time_to_quality_") as out:
        for name in args.pythae_models:
            for lr in args.lrs:
                peer = pythae_model(name)
                tc = pythae_training_config(peer, lr, out)
                optimizer = (f"Adam; the decoder's with weight decay {peer.model_config.reg_weight:g}"
                             if name == "rae-l2" else tc.optimizer_cls)
                candidates.append(Contender(
                    "pythae", name, PYTHAE_FAMILIES[name], lr, tc.per_device_train_batch_size, optimizer,
                    "constant" if tc.scheduler_cls is None else tc.scheduler_cls,
                    TrainingThread(f"pythae {name} {lr:g}", pythae_loop(peer, pythae_data, tc), threads),
                    pythae_reconstructor(peer)))
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("pythae")]:
            logging.getLogger(name).setLevel(logging.ERROR)  # its per-epoch reports (its modules set INFO)
        quiet = open(os.devnull, "w")  # left open: pythae's progress bars hold it until they are collected
        cap = race(facelib, candidates, faces, target, args.chunk_seconds, 60 * args.screen_minutes,
                   60 * args.budget_minutes, quiet)
    settings = {"threads": threads, "chunk_seconds": args.chunk_seconds, "screen_minutes": args.screen_minutes,
                "budget_minutes": args.budget_minutes, "n_train": len(train), "n_held_out": len(faces),
                "pythae_version": version, "quick": args.quick}
    table = tables([facelib, *candidates], target, cap, settings)
    shown = ["system", "model", "lr", "selected", "reached", "minutes", "steps", "held_out_mse", "best_held_out_mse",
             "x_facelib_minutes", "stopped"]
    print(table[table.kind == "result"][shown].to_string(index=False))
    if args.no_write or (args.quick and not os.environ.get(results.ENV)):
        stamp = results.stamped(RESULT, table).iloc[0]
        why = "--no-write" if args.no_write else f"a --quick run writes only where ${results.ENV} points"
        print(f"not written ({why}); provenance: " + ", ".join(f"{k} {stamp[k]}" for k in results.PROVENANCE))
    else:
        print(f"wrote {results.write(RESULT, table)}")
    if args.figure:
        draw(table, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
