"""The installed wheel's smoke test (run by .ci/wheel_smoke.sh inside a fresh virtual environment,
from a folder outside the checkout): every zoo model listed and loaded from the package data,
one traversal, a one-epoch training through `experiment.run`, and one notebook through
`python -m facelib run`. Exits non-zero, saying what failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import facelib
from facelib import viz, zoo
from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec, run
from facelib.viz.traversal import DEFAULT_VALUES

VENV = Path(sys.prefix).resolve()
PACKAGE = Path(facelib.__file__).resolve().parent


def step(what: str, t0: float) -> float:
    now = time.perf_counter()
    print(f"  ok  {what} ({now - t0:.1f} s)", flush=True)
    return now


def main() -> int:
    t = time.perf_counter()
    # the wheel, not the checkout: facelib, its zoo and its notebooks are inside this venv
    assert PACKAGE.is_relative_to(VENV), f"facelib imported from {PACKAGE}, not from the venv {VENV}"
    assert not Path.cwd().resolve().is_relative_to(Path(sys.argv[1]).resolve()), "run this outside the checkout"
    assert zoo.zoo_dir() == PACKAGE / "zoo" / "shipped", zoo.zoo_dir()
    t = step(f"facelib {PACKAGE}", t)

    manifest = json.loads((zoo.zoo_dir() / "manifest.json").read_text())["models"]
    names = zoo.available()
    assert names == sorted(manifest) and len(names) == 16, names
    models = {name: zoo.load(name) for name in names}  # sha256 and recipe checked on each
    t = step(f"zoo.load of all {len(models)} models", t)

    model = models["synthetic-vae"]
    grid = viz.traversal_grid(model, torch.zeros(model.config.latent_dim), dims=[0, 1])  # from the prior's mean
    assert grid.shape[:2] == (2, len(DEFAULT_VALUES)) and torch.isfinite(grid).all(), grid.shape
    t = step(f"viz.traversal_grid {tuple(grid.shape)}", t)

    spec = ExperimentSpec(ModelSpec("vae", {"latent_dim": 4}),
                          DataSpec("synthetic", {"n": 64, "size": 32, "channels": 1}),
                          {"epochs": 1, "batch_size": 32, "val_fraction": 0.0})
    result = run(spec, Path.cwd() / "train", device="cpu")
    assert len(result.history) == 1 and result.checkpoint.exists(), result.history
    t = step("one-epoch experiment.run on synthetic faces", t)

    env = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "facelib", "run", "--notebooks", "00_data", "--profile", "quick",
                           "--run-id", "smoke"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"python -m facelib run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    record = json.loads((Path.cwd() / "reports" / "smoke" / "run.json").read_text())
    nb = record["notebooks"][0]
    assert record["status"] == "completed" and Path(nb["input"]).resolve().is_relative_to(PACKAGE), nb
    step(f"python -m facelib run --notebooks 00_data (from {Path(nb['input']).parent}) -> reports/smoke", t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
