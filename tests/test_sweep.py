"""`python -m facelib sweep` (facelib.study.sweep): a 2-trial grid on a local Ray, re-runs, bad input."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from facelib import cli
from facelib.data import load
from facelib.models import build_model
from facelib.study import sweep
from facelib.train import fit, load_model
from facelib.utils import seed_everything

DATA = ["--data", "synthetic", "--data-option", "n=64", "--data-option", "size=32"]
MODEL = ["--set", "latent_dim=4", "--set", "hidden_channels=8", "--set", "hidden_dim=32"]
FIT = ["--max-steps", "3", "--batch-size", "16"]


def _args(out, *extra):
    return ["sweep", "--models", "beta-vae", "--betas", "1", "4", "--seeds", "0", *DATA, *MODEL, *FIT,
            "--out", str(out), *extra]


def _direct(beta: float) -> float:
    """The trial trained by hand: what the sweep's row must say."""
    data = load("synthetic", n=64, size=32)
    seed_everything(0)
    model = build_model("beta-vae", image_size=32, channels=1, latent_dim=4, hidden_channels=8, hidden_dim=32,
                        beta=beta)
    return fit(model, data, max_steps=3, batch_size=16, seed=0, progress=False, num_threads=1).last["val_loss"]


def test_a_two_trial_sweep_on_a_local_ray_and_its_rerun(tmp_path, capsys):
    ray = pytest.importorskip("ray", reason=f"Ray is the optional extra: {sweep.RAY_HINT}")
    try:
        assert cli.main(_args(tmp_path, "--executor", "ray")) == 0
        table = pd.read_csv(tmp_path / "results.csv")
        assert list(table.columns) == sweep.RESULT_COLUMNS
        assert sorted(table["trial"].unique()) == ["beta-vae_beta=1_seed=0", "beta-vae_beta=4_seed=0"]
        val = table[table.metric == "val_loss"].set_index("beta")["value"]
        assert val[4.0] == pytest.approx(_direct(4.0), rel=1e-6)
        for path in table["checkpoint"].unique():
            assert load_model(path).config.latent_dim == 4
        # a rerun skips both trials and leaves every file as it was
        before = {p: p.read_bytes() for p in tmp_path.rglob("*.pt")} | {tmp_path / "results.csv":
                                                                        (tmp_path / "results.csv").read_bytes()}
        capsys.readouterr()
        assert cli.main(_args(tmp_path, "--executor", "ray")) == 0
        assert "2 of 2 trials finished already; running 0" in capsys.readouterr().err
        assert all(p.read_bytes() == b for p, b in before.items())
        # other shared options for the same folder are refused
        assert cli.main(_args(tmp_path, "--executor", "ray", "--lr", "0.01")) == 1
        assert "holds a sweep with other options (fit differ)" in capsys.readouterr().err
    finally:
        ray.shutdown()


def test_without_ray_the_ray_executor_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[cluster\]'"):
        sweep.executor("ray")
    assert isinstance(sweep.executor("auto", max_workers=2), sweep.LocalExecutor)
    with pytest.raises(ImportError, match="cluster"):
        sweep.executor("auto", address="ray://head:10001")


def test_grid_and_bad_input(tmp_path, capsys):
    trials = sweep.grid(["vae", "beta-vae"], [1.0, 4.0], [0, 1])
    assert len(trials) == 8 and trials[0] == {"trial": "vae_beta=1_seed=0", "model": "vae", "beta": 1.0, "seed": 0}
    with pytest.raises(ValueError, match="repeats trials"):
        sweep.grid(["vae"], [1.0], [0, 0])
    assert cli.main(["sweep", "--models", "no-such", *DATA, "--out", str(tmp_path)]) == 1
    assert "unknown model 'no-such'; known models:" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "vae", *DATA, "--fit", "seed=3", "--out", str(tmp_path)]) == 1
    assert "--fit seed=... is set by the sweep" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "vae", *DATA, "--fit", "bogus=1", "--out", str(tmp_path)]) == 1
    assert "unknown TrainConfig field(s) ['bogus']" in capsys.readouterr().err


def test_the_local_executor_returns_results_and_errors_by_job():
    out = sorted(sweep.LocalExecutor(2, processes=False).run(lambda x: 10 // x, [1, 0, 5]), key=lambda r: r[0])
    assert [(i, r) for i, r, _ in out] == [(0, 10), (1, None), (2, 2)]
    assert isinstance(out[1][2], ZeroDivisionError)
