"""`python -m facelib sweep` (facelib.study.sweep): a 2-trial grid on a local Ray, re-runs, bad input."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from facelib import cli
from facelib.data import load
from facelib.models import build_model
from facelib.study import sweep
from facelib.train import fit, load_checkpoint, load_model
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
        assert cli.main(_args(tmp_path, "--executor", "ray", "--lr", "0.01")) == 2
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
    assert cli.main(["sweep", "--models", "no-such", *DATA, "--out", str(tmp_path)]) == 2  # bad values: exit 2
    assert "unknown model 'no-such'" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "vae", *DATA, "--fit", "seed=3", "--out", str(tmp_path)]) == 2
    assert "--fit seed=... is set by the sweep" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "vae", *DATA, "--fit", "bogus=1", "--out", str(tmp_path)]) == 2
    assert "unknown TrainConfig field(s) ['bogus']" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "vae", *DATA, "--fit", "hflip=maybe", "--out", str(tmp_path)]) == 2
    assert "--fit hflip expects true/false, got maybe" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "vae", "--betas", "4", *DATA, "--out", str(tmp_path)]) == 2
    assert "model vae: unknown config field(s) ['beta']" in capsys.readouterr().err  # before any trial
    assert cli.main(["sweep", "--models", "beta-vae", *DATA, "--grid", "training.lr=1,x", "--out",
                     str(tmp_path)]) == 2
    assert "lr must be a positive number, got 'x'" in capsys.readouterr().err
    assert cli.main(["sweep", "--models", "beta-vae", "--betas", "1", *DATA, "--grid", "model.options.beta=2,3",
                     "--out", str(tmp_path)]) == 2
    assert "--grid model.options.beta=... and --betas both give the betas" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists() and not (tmp_path / "trials").exists()


def test_grid_over_any_spec_field_names_its_values_in_the_trial_id():
    trials = sweep.grid(["beta-vae"], [4.0], [0, 1], {"training.lr": [1e-3, 5e-4], "model.options.gamma": [10]})
    assert len(trials) == 4
    assert trials[0] == {"trial": "beta-vae_beta=4_training.lr=0.001_model.options.gamma=10_seed=0",
                         "model": "beta-vae", "beta": 4.0, "seed": 0,
                         "grid": {"training.lr": 1e-3, "model.options.gamma": 10}}
    with pytest.raises(ValueError, match="own axes: give them as --seeds"):
        sweep.grid(["vae"], [], [0], {"training.seed": [1, 2]})
    shared = {"data": "synthetic", "data_options": {"n": 64}, "model_fields": {"latent_dim": 4}, "fit": {"epochs": 2}}
    spec = sweep.trial_spec({**shared, **trials[3]})
    assert spec.training.lr == 5e-4 and spec.training.seed == 1 and spec.training.epochs == 2
    assert spec.model.options == {"latent_dim": 4, "beta": 4.0, "gamma": 10} and spec.training.progress is False


def test_a_spec_file_is_every_trials_base_and_grid_fields_sweep_it(tmp_path, capsys):
    """`sweep --spec FILE --grid training.lr=...`: the trials are the spec with the grid's values,
    trained (a local executor, threads) into results.csv with its usual columns."""
    base = tmp_path / "base.yaml"
    assert cli.main(["train", "--model", "beta-vae", "--beta", "2", *DATA, *MODEL, *FIT, "--dump-spec"]) == 0
    base.write_text(capsys.readouterr().out)
    out = tmp_path / "sweep"
    argv = ["sweep", "--spec", str(base), "--grid", "training.lr=1e-3,5e-4", "--executor", "local", "--out", str(out)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == sweep.RESULT_COLUMNS
    assert sorted(table.trial.unique()) == ["beta-vae_beta=2_training.lr=0.0005_seed=0",
                                            "beta-vae_beta=2_training.lr=0.001_seed=0"]
    assert set(table.beta) == {2.0} and set(table.model) == {"beta-vae"}
    ckpt = load_checkpoint(out / "trials" / "beta-vae_beta=2_training.lr=0.0005_seed=0" / "checkpoint.pt")
    assert ckpt["train_config"]["lr"] == 5e-4 and ckpt["train_config"]["max_steps"] == 3
    assert ckpt["model_config"]["latent_dim"] == 4 and ckpt["model_config"]["beta"] == 2.0


def test_the_local_executor_returns_results_and_errors_by_job():
    out = sorted(sweep.LocalExecutor(2, processes=False).run(lambda x: 10 // x, [1, 0, 5]), key=lambda r: r[0])
    assert [(i, r) for i, r, _ in out] == [(0, 10), (1, None), (2, 2)]
    assert isinstance(out[1][2], ZeroDivisionError)


def test_model_names_are_the_registrys_so_one_model_is_not_run_twice():
    """#41: `--models vae VAE` (or beta-vae beta_vae) named one model twice; the grid refuses it."""
    with pytest.raises(ValueError, match="repeats trials"):
        sweep.grid(["vae", "VAE"], [], [0])
    with pytest.raises(ValueError, match="repeats trials"):
        sweep.grid(["beta-vae", "beta_vae"], [4.0], [0])
    assert [t["model"] for t in sweep.grid(["Beta_VAE"], [4.0], [0])] == ["beta-vae"]
